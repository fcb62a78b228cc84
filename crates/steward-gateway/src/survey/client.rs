//! A small MCP client for `steward scan`: stdio (a child process) or streamable HTTP, only
//! what listing a server needs (initialize, the list methods with pagination). Every wait has
//! a deadline and every read a size limit; a server that says more is an error, not a hang.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio as ProcStdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// The protocol revision asked for at `initialize`.
pub const PROTOCOL_VERSION: &str = "2025-11-25";

/// Why talking to a server failed. Messages never carry header or environment values.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot start `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the server closed its output")]
    Closed,
    #[error("i/o error talking to the server: {0}")]
    Io(#[from] std::io::Error),
    #[error("a message from the server exceeds {0} bytes")]
    TooLarge(usize),
    #[error("the server sent something that is not JSON-RPC: {0}")]
    Protocol(String),
    #[error("the server answered {method} with error {code}: {message}")]
    Rpc { method: String, code: i64, message: String },
    #[error("HTTP request failed: {0}")]
    Http(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// How to reach one server.
#[derive(Debug, Clone)]
pub enum Endpoint {
    Stdio {
        command: String,
        args: Vec<String>,
        /// The whole environment of the child (nothing else is inherited).
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// A connection to one server.
pub struct Client {
    conn: Conn,
    next_id: i64,
    max_message: usize,
    /// Each request's own deadline (the caller also bounds the whole exchange).
    request_timeout: Duration,
}

enum Conn {
    Stdio {
        child: Child,
        stdin: ChildStdin,
        out: BufReader<ChildStdout>,
    },
    Http {
        http: reqwest::Client,
        url: String,
        headers: reqwest::header::HeaderMap,
        session: Option<String>,
        protocol: Option<String>,
    },
}

impl Client {
    /// Starts or connects to `endpoint`. Nothing is sent yet.
    pub fn open(endpoint: &Endpoint, request_timeout: Duration, max_message: usize) -> Result<Client, ClientError> {
        let conn = match endpoint {
            Endpoint::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let mut cmd = Command::new(command);
                cmd.args(args)
                    .env_clear()
                    .envs(env)
                    .stdin(ProcStdio::piped())
                    .stdout(ProcStdio::piped())
                    .stderr(ProcStdio::null())
                    .kill_on_drop(true);
                if let Some(dir) = cwd {
                    cmd.current_dir(dir);
                }
                let mut child = cmd.spawn().map_err(|source| ClientError::Spawn {
                    command: command.clone(),
                    source,
                })?;
                let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                    return Err(ClientError::Closed);
                };
                Conn::Stdio {
                    child,
                    stdin,
                    out: BufReader::new(stdout),
                }
            }
            Endpoint::Http { url, headers } => {
                let mut map = reqwest::header::HeaderMap::new();
                for (k, v) in headers {
                    if let (Ok(name), Ok(value)) = (
                        reqwest::header::HeaderName::from_bytes(k.as_bytes()),
                        reqwest::header::HeaderValue::from_str(v),
                    ) {
                        map.insert(name, value);
                    }
                }
                let http = reqwest::Client::builder()
                    .timeout(request_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| ClientError::Http(e.to_string()))?;
                Conn::Http {
                    http,
                    url: url.clone(),
                    headers: map,
                    session: None,
                    protocol: None,
                }
            }
        };
        Ok(Client {
            conn,
            next_id: 1,
            max_message,
            request_timeout,
        })
    }

    /// `initialize` then `notifications/initialized`; returns the server's result.
    pub async fn initialize(&mut self) -> Result<Value, ClientError> {
        let result = self
            .request(
                "initialize",
                json!({
                    "protocolVersion": PROTOCOL_VERSION,
                    "capabilities": {},
                    "clientInfo": {"name": "steward-scan", "version": env!("CARGO_PKG_VERSION")},
                }),
            )
            .await?;
        if let Conn::Http { protocol, .. } = &mut self.conn {
            *protocol = result
                .get("protocolVersion")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        self.notify("notifications/initialized", json!({})).await?;
        Ok(result)
    }

    /// One request and its result (a JSON-RPC error is [`ClientError::Rpc`]).
    pub async fn request(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let deadline = self.request_timeout;
        let answer = tokio::time::timeout(deadline, self.exchange(msg, id))
            .await
            .map_err(|_| ClientError::Timeout(deadline))??;
        if let Some(err) = answer.get("error") {
            return Err(ClientError::Rpc {
                method: method.to_string(),
                code: err.get("code").and_then(Value::as_i64).unwrap_or(0),
                message: err
                    .get("message")
                    .and_then(Value::as_str)
                    .map(|m| m.chars().take(200).collect())
                    .unwrap_or_default(),
            });
        }
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    async fn notify(&mut self, method: &str, params: Value) -> Result<(), ClientError> {
        let msg = json!({"jsonrpc": "2.0", "method": method, "params": params});
        match &mut self.conn {
            Conn::Stdio { stdin, .. } => write_line(stdin, &msg).await,
            Conn::Http { .. } => {
                let deadline = self.request_timeout;
                tokio::time::timeout(deadline, self.post(&msg, None))
                    .await
                    .map_err(|_| ClientError::Timeout(deadline))?
                    .map(|_| ())
            }
        }
    }

    async fn exchange(&mut self, msg: Value, id: i64) -> Result<Value, ClientError> {
        match &mut self.conn {
            Conn::Stdio { stdin, out, .. } => {
                write_line(stdin, &msg).await?;
                loop {
                    let line = read_line(out, self.max_message).await?;
                    let Ok(v) = serde_json::from_slice::<Value>(&line) else {
                        // Some servers log to stdout; what is not JSON is not an answer.
                        continue;
                    };
                    if v.get("id").and_then(Value::as_i64) == Some(id)
                        && (v.get("result").is_some() || v.get("error").is_some())
                    {
                        return Ok(v);
                    }
                    if v.get("method").is_some()
                        && let Some(req_id) = v.get("id")
                    {
                        // A request from the server (roots, sampling): this client offers none.
                        let no = json!({"jsonrpc": "2.0", "id": req_id, "error": {"code": -32601, "message": "not supported by steward scan"}});
                        write_line(stdin, &no).await?;
                    }
                }
            }
            Conn::Http { .. } => self.post(&msg, Some(id)).await?.ok_or(ClientError::Closed),
        }
    }

    /// POSTs one message; with `want`, returns the answer with that id (JSON or SSE body).
    async fn post(&mut self, msg: &Value, want: Option<i64>) -> Result<Option<Value>, ClientError> {
        let max = self.max_message;
        let Conn::Http {
            http,
            url,
            headers,
            session,
            protocol,
        } = &mut self.conn
        else {
            return Err(ClientError::Closed);
        };
        let mut req = http
            .post(url.as_str())
            .headers(headers.clone())
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(msg.to_string());
        if let Some(s) = session {
            req = req.header("mcp-session-id", s.as_str());
        }
        if let Some(p) = protocol {
            req = req.header("mcp-protocol-version", p.as_str());
        }
        let mut resp = req.send().await.map_err(|e| ClientError::Http(without_url(&e)))?;
        if let Some(s) = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()) {
            *session = Some(s.to_string());
        }
        let status = resp.status();
        if !status.is_success() {
            return Err(ClientError::Status(status.as_u16()));
        }
        let Some(want) = want else { return Ok(None) };
        let sse = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|c| c.starts_with("text/event-stream"));
        let mut body: Vec<u8> = Vec::new();
        loop {
            let chunk = resp.chunk().await.map_err(|e| ClientError::Http(without_url(&e)))?;
            let Some(chunk) = chunk else { break };
            if body.len() + chunk.len() > max {
                return Err(ClientError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
            if sse && let Some(v) = find_in_sse(&body, want) {
                return Ok(Some(v));
            }
        }
        if sse {
            return find_in_sse(&body, want).map(Some).ok_or(ClientError::Closed);
        }
        let v: Value = serde_json::from_slice(&body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        // A batch answer: pick ours.
        match v {
            Value::Array(items) => Ok(items
                .into_iter()
                .find(|m| m.get("id").and_then(Value::as_i64) == Some(want))),
            other => Ok(Some(other)),
        }
    }

    /// Ends the session: the child is killed (after closing its input), an HTTP session deleted.
    pub async fn close(self) {
        match self.conn {
            Conn::Stdio { mut child, stdin, .. } => {
                drop(stdin);
                if tokio::time::timeout(Duration::from_millis(500), child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.start_kill();
                    let _ = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                }
            }
            Conn::Http {
                http,
                url,
                headers,
                session: Some(s),
                ..
            } => {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    http.delete(url.as_str())
                        .headers(headers)
                        .header("mcp-session-id", s)
                        .send(),
                )
                .await;
            }
            Conn::Http { .. } => {}
        }
    }
}

/// reqwest's error text without the URL (it may carry credentials in its user info).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "<url>");
    }
    s
}

async fn write_line(stdin: &mut ChildStdin, msg: &Value) -> Result<(), ClientError> {
    let mut line = msg.to_string().into_bytes();
    line.push(b'\n');
    stdin.write_all(&line).await?;
    stdin.flush().await?;
    Ok(())
}

/// One line of at most `max` bytes (without the newline).
async fn read_line(out: &mut BufReader<ChildStdout>, max: usize) -> Result<Vec<u8>, ClientError> {
    let mut line = Vec::new();
    loop {
        let buf = out.fill_buf().await?;
        if buf.is_empty() {
            return Err(ClientError::Closed);
        }
        let (take, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        if line.len() + take > max + 1 {
            return Err(ClientError::TooLarge(max));
        }
        line.extend_from_slice(&buf[..take]);
        out.consume(take);
        if done {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
    }
}

/// The JSON-RPC answer with id `want` among the complete events of an SSE body.
fn find_in_sse(body: &[u8], want: i64) -> Option<Value> {
    let text = String::from_utf8_lossy(body);
    let text = text.replace("\r\n", "\n");
    for event in text.split("\n\n") {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&data.join("\n"))
            && v.get("id").and_then(Value::as_i64) == Some(want)
        {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_answers_are_found_by_id() {
        let body = b"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":3,\"result\":{\"tools\":[]}}\n\n";
        assert_eq!(find_in_sse(body, 3).unwrap()["result"]["tools"], json!([]));
        assert!(find_in_sse(body, 4).is_none());
    }
}
