//! The fixture MCP server: answers `initialize`, `tools/list` and `tools/call echo` at once, over
//! newline-delimited stdio or streamable HTTP. It does as little as a server can, so what the
//! harness measures around it is the transport and whatever sits in between.

use std::borrow::Cow;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Largest line or body the fixture reads; the harness never sends more.
const MAX_MESSAGE: usize = 1024 * 1024;
const SESSION_HEADER: &str = "mcp-session-id";

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CallParams<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EchoArgs<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct InitParams<'a> {
    #[serde(borrow, rename = "protocolVersion", default)]
    protocol_version: Option<Cow<'a, str>>,
}

/// What one incoming message asks for.
pub enum Answer {
    /// A JSON-RPC response line (no trailing newline).
    Reply(Vec<u8>),
    /// A notification or a response: nothing to say.
    Nothing,
}

/// Answers one JSON-RPC message.
pub fn answer(line: &[u8]) -> Answer {
    let Ok(req) = serde_json::from_slice::<Request<'_>>(line) else {
        return Answer::Reply(error("null", -32700, "parse error"));
    };
    let (Some(id), Some(method)) = (req.id, req.method.as_deref()) else {
        return Answer::Nothing;
    };
    let id = id.get();
    Answer::Reply(match method {
        "initialize" => {
            let asked = req
                .params
                .and_then(|p| serde_json::from_str::<InitParams<'_>>(p.get()).ok())
                .and_then(|p| p.protocol_version.map(Cow::into_owned))
                .unwrap_or_else(|| "2025-06-18".into());
            let version = serde_json::to_string(&asked).unwrap_or_else(|_| "\"2025-06-18\"".into());
            result(
                id,
                &format!(
                    r#"{{"protocolVersion":{version},"capabilities":{{"tools":{{"listChanged":false}}}},"serverInfo":{{"name":"steward-bench-fixture","version":"{}"}}}}"#,
                    env!("CARGO_PKG_VERSION")
                ),
            )
        }
        "ping" => result(id, "{}"),
        "tools/list" => result(
            id,
            r#"{"tools":[{"name":"echo","description":"Returns its text argument.","inputSchema":{"type":"object","properties":{"text":{"type":"string"}},"required":["text"]},"annotations":{"readOnlyHint":true}}]}"#,
        ),
        "tools/call" => match req
            .params
            .and_then(|p| serde_json::from_str::<CallParams<'_>>(p.get()).ok())
        {
            Some(call) if call.name == "echo" => {
                let text = call
                    .arguments
                    .and_then(|a| serde_json::from_str::<EchoArgs<'_>>(a.get()).ok())
                    .and_then(|a| a.text)
                    .unwrap_or_default();
                let text = serde_json::to_string(&text).unwrap_or_else(|_| "\"\"".into());
                result(
                    id,
                    &format!(r#"{{"content":[{{"type":"text","text":{text}}}],"isError":false}}"#),
                )
            }
            Some(call) => error(id, -32602, &format!("unknown tool {}", call.name)),
            None => error(id, -32602, "invalid tools/call params"),
        },
        _ => error(id, -32601, "method not found"),
    })
}

fn result(id: &str, result: &str) -> Vec<u8> {
    format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#).into_bytes()
}

fn error(id: &str, code: i32, message: &str) -> Vec<u8> {
    let message = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    format!(r#"{{"jsonrpc":"2.0","id":{id},"error":{{"code":{code},"message":{message}}}}}"#).into_bytes()
}

/// Serves newline-delimited JSON-RPC on stdin/stdout until stdin closes. Blocking I/O on one
/// thread: the cheapest server loop there is.
pub fn serve_stdio() -> anyhow::Result<()> {
    let mut input = std::io::stdin().lock();
    let mut output = std::io::BufWriter::new(std::io::stdout().lock());
    let mut line = Vec::with_capacity(4096);
    loop {
        line.clear();
        let n = std::io::Read::take(&mut input, MAX_MESSAGE as u64).read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        let trimmed = line.strip_suffix(b"\n").unwrap_or(&line);
        if trimmed.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Answer::Reply(bytes) = answer(trimmed) {
            output.write_all(&bytes)?;
            output.write_all(b"\n")?;
            output.flush()?;
        }
    }
}

struct HttpState {
    next_session: AtomicU64,
}

/// The fixture's HTTP routes: `/mcp` (streamable HTTP, JSON answers) and `/ok` (a plain "ok",
/// the trivial server the load generator is checked against).
pub fn router() -> Router {
    let st = Arc::new(HttpState {
        next_session: AtomicU64::new(1),
    });
    Router::new()
        .route(
            "/mcp",
            post({
                let st = st.clone();
                move |headers: HeaderMap, body: Bytes| mcp_post(st.clone(), headers, body)
            })
            .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
            .delete(|| async { StatusCode::OK }),
        )
        .route("/ok", get(|| async { "ok" }).post(|| async { "ok" }))
}

async fn mcp_post(st: Arc<HttpState>, _headers: HeaderMap, body: Bytes) -> Response {
    if body.len() > MAX_MESSAGE {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let is_initialize = memchr_initialize(&body);
    match answer(&body) {
        Answer::Nothing => StatusCode::ACCEPTED.into_response(),
        Answer::Reply(bytes) => {
            let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
            if is_initialize {
                let n = st.next_session.fetch_add(1, Ordering::Relaxed);
                if let Ok(v) = HeaderValue::from_str(&format!("fixture-{n}")) {
                    resp.headers_mut().insert(SESSION_HEADER, v);
                }
            }
            resp
        }
    }
}

/// Whether a body is an `initialize` request (it gets a session id), without a second parse.
fn memchr_initialize(body: &[u8]) -> bool {
    body.windows(b"\"initialize\"".len()).any(|w| w == b"\"initialize\"")
}

/// Serves HTTP on `addr` (port 0 picks one) and prints `listening on ADDR` once bound, so the
/// harness knows where to go.
pub async fn serve_http(addr: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    println!("listening on {local}");
    std::io::stdout().flush()?;
    axum::serve(listener, router()).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(line: &str) -> serde_json::Value {
        match answer(line.as_bytes()) {
            Answer::Reply(b) => serde_json::from_slice(&b).expect("valid JSON"),
            Answer::Nothing => panic!("no reply to {line}"),
        }
    }

    #[test]
    fn echoes_text() {
        let r = reply(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hé \"x\""}}}"#,
        );
        assert_eq!(r["id"], 7);
        assert_eq!(r["result"]["content"][0]["text"], "hé \"x\"");
        assert_eq!(r["result"]["isError"], false);
    }

    #[test]
    fn initialize_echoes_the_version_and_notifications_get_nothing() {
        let r = reply(r#"{"jsonrpc":"2.0","id":"a","method":"initialize","params":{"protocolVersion":"2025-03-26"}}"#);
        assert_eq!(r["id"], "a");
        assert_eq!(r["result"]["protocolVersion"], "2025-03-26");
        assert!(matches!(
            answer(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Answer::Nothing
        ));
    }

    #[test]
    fn unknown_methods_and_tools_are_errors() {
        assert_eq!(
            reply(r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#)["error"]["code"],
            -32601
        );
        assert_eq!(
            reply(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"rm"}}"#)["error"]["code"],
            -32602
        );
        assert_eq!(reply("not json")["error"]["code"], -32700);
    }
}
