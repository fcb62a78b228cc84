//! A streamable-HTTP MCP server as an upstream. The gateway is its client: it keeps the
//! upstream's session id, sends the credentials configured for it, and never the client's.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::{Message, sse};
use tokio::sync::mpsc;

use super::{Forward, Replies, UpstreamError};

const MAX_MESSAGE: usize = 64 * 1024 * 1024;
const SESSION_HEADER: &str = "mcp-session-id";

pub struct HttpConn {
    server: String,
    url: String,
    client: reqwest::Client,
    headers: HeaderMap,
    session: Mutex<Option<String>>,
    protocol_version: Mutex<Option<String>>,
}

impl HttpConn {
    pub fn new(
        server: &str,
        url: &str,
        configured: &BTreeMap<String, String>,
        client: reqwest::Client,
    ) -> Result<HttpConn, UpstreamError> {
        let mut headers = HeaderMap::new();
        for (k, v) in configured {
            let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| UpstreamError::Start {
                server: server.into(),
                message: format!("header {k}: {e}"),
            })?;
            let mut value = HeaderValue::from_str(v).map_err(|e| UpstreamError::Start {
                server: server.into(),
                message: format!("header {k}: {e}"),
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(HttpConn {
            server: server.into(),
            url: url.into(),
            client,
            headers,
            session: Mutex::new(None),
            protocol_version: Mutex::new(None),
        })
    }

    fn build(&self, method: reqwest::Method, forward: &Forward) -> reqwest::RequestBuilder {
        let mut req = self.client.request(method, &self.url).headers(self.headers.clone());
        if let Some(s) = self.session.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            req = req.header(SESSION_HEADER, s);
        }
        let version = forward
            .protocol_version
            .clone()
            .or_else(|| self.protocol_version.lock().unwrap_or_else(|e| e.into_inner()).clone());
        if let Some(v) = version {
            req = req.header("mcp-protocol-version", v);
        }
        if let Some(m) = &forward.method {
            req = req.header("mcp-method", m);
        }
        if let Some(n) = &forward.name {
            req = req.header("mcp-name", n);
        }
        req
    }

    pub async fn request(&self, line: &[u8], forward: &Forward) -> Result<Replies, UpstreamError> {
        let msg = Message::parse(line).map_err(|e| self.failed(e.to_string()))?;
        let id = msg.id.map(|i| i.get().to_string());
        let is_initialize = msg.method() == Some("initialize");
        if is_initialize {
            // A new session starts: remember the version the client asks for until the server answers.
            *self.session.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        let resp = self
            .build(reqwest::Method::POST, forward)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(line.to_vec())
            .send()
            .await
            .map_err(|e| self.failed(format!("request failed: {e}")))?;
        if let Some(s) = resp.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok()) {
            *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.to_string());
        }
        let (tx, rx) = mpsc::channel(64);
        let status = resp.status();
        let is_sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let server = self.server.clone();
        if is_sse {
            let mut stream = resp.bytes_stream();
            tokio::spawn(async move {
                let mut decoder = sse::Decoder::new(MAX_MESSAGE);
                while let Some(chunk) = stream.next().await {
                    let Ok(chunk) = chunk else { break };
                    match decoder.push(&chunk) {
                        Ok(events) => {
                            for e in events {
                                if !e.data.is_empty() && tx.send(e.data).await.is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e) => {
                            tracing::warn!(%server, error = %e, "bad SSE from upstream");
                            break;
                        }
                    }
                }
            });
            return Ok(rx);
        }
        let body = read_limited(resp).await.map_err(|e| self.failed(e))?;
        let message = if Message::parse(&body).is_ok() {
            body
        } else {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
            error_response(
                id.as_deref(),
                ErrorCode::UpstreamUnavailable,
                &format!("upstream server '{}' answered HTTP {status}: {text}", self.server),
                None,
            )
        };
        if is_initialize
            && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&message)
            && let Some(pv) = v.pointer("/result/protocolVersion").and_then(|p| p.as_str())
        {
            *self.protocol_version.lock().unwrap_or_else(|e| e.into_inner()) = Some(pv.to_string());
        }
        let _ = tx.send(message).await;
        Ok(rx)
    }

    pub async fn send(&self, line: &[u8], forward: &Forward) -> Result<(), UpstreamError> {
        let resp = self
            .build(reqwest::Method::POST, forward)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(line.to_vec())
            .send()
            .await
            .map_err(|e| self.failed(format!("request failed: {e}")))?;
        if !resp.status().is_success() {
            return Err(self.failed(format!("HTTP {}", resp.status())));
        }
        Ok(())
    }

    /// Opens the upstream's GET stream (if it offers one) and relays its messages.
    pub fn server_messages(&self) -> Option<mpsc::Receiver<Vec<u8>>> {
        let req = self
            .build(reqwest::Method::GET, &Forward::default())
            .header(ACCEPT, "text/event-stream");
        let (tx, rx) = mpsc::channel(64);
        let server = self.server.clone();
        tokio::spawn(async move {
            let Ok(resp) = req.send().await else { return };
            if !resp.status().is_success() {
                tracing::debug!(%server, status = %resp.status(), "upstream offers no GET stream");
                return;
            }
            let mut stream = resp.bytes_stream();
            let mut decoder = sse::Decoder::new(MAX_MESSAGE);
            while let Some(Ok(chunk)) = stream.next().await {
                let Ok(events) = decoder.push(&chunk) else { break };
                for e in events {
                    if !e.data.is_empty() && tx.send(e.data).await.is_err() {
                        return;
                    }
                }
            }
        });
        Some(rx)
    }

    pub async fn close(&self) {
        if self.session.lock().unwrap_or_else(|e| e.into_inner()).is_none() {
            return;
        }
        let req = self.build(reqwest::Method::DELETE, &Forward::default());
        let _ = tokio::time::timeout(Duration::from_secs(5), req.send()).await;
    }

    fn failed(&self, message: String) -> UpstreamError {
        UpstreamError::Failed {
            server: self.server.clone(),
            message,
        }
    }
}

async fn read_limited(resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("reading the answer: {e}"))?;
        if body.len() + chunk.len() > MAX_MESSAGE {
            return Err(format!("answer exceeds {MAX_MESSAGE} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
