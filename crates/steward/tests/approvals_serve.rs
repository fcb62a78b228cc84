//! Hold mode through `steward serve` (streamable HTTP): the held call's SSE stream carries
//! progress notifications, then the upstream's real result once an approver acts from another
//! process; a JSON-only client waits for one answer, here a denial with its reason.

mod approvals_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{Receiver, channel};

use approvals_support::{Env, WAIT, key, policy, start_gateway, stderr};
use serde_json::{Value, json};

const SUDO: &str = "sudo systemctl restart nginx";

/// An HTTP response read in a thread of its own: status, headers, then each JSON-RPC message
/// (one for a JSON body, one per SSE event for a stream).
struct Streamed {
    head_rx: Receiver<(u16, Vec<(String, String)>)>,
    head: Option<(u16, Vec<(String, String)>)>,
    messages: Receiver<Value>,
}

impl Streamed {
    /// Waits for the status line and headers (a JSON answer sends them only when it is ready).
    fn head(&mut self) -> &(u16, Vec<(String, String)>) {
        if self.head.is_none() {
            self.head = Some(self.head_rx.recv_timeout(WAIT).expect("response headers"));
        }
        self.head.as_ref().expect("just set")
    }

    fn status(&mut self) -> u16 {
        self.head().0
    }

    fn header(&mut self, name: &str) -> Option<String> {
        self.head()
            .1
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    fn next(&self, what: &str) -> Value {
        self.messages
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
    }
}

fn post_mcp(port: u16, key: &str, session: Option<&str>, body: &Value, sse: bool) -> Streamed {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let body = body.to_string();
    let accept = if sse {
        "application/json, text/event-stream"
    } else {
        "application/json"
    };
    let mut req = format!(
        "POST /mcp/ops HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nAccept: {accept}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(s) = session {
        req.push_str(&format!("Mcp-Session-Id: {s}\r\nMCP-Protocol-Version: 2025-11-25\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes()).expect("send");

    let (head_tx, head_rx) = channel();
    let (tx, messages) = channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        let get = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        let chunked = get("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let is_sse = get("content-type").is_some_and(|v| v.contains("text/event-stream"));
        let length: usize = get("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
        let _ = head_tx.send((status, headers));
        let mut pending = String::new();
        let emit = |text: &str, pending: &mut String| {
            if !is_sse {
                pending.push_str(text);
                return;
            }
            pending.push_str(text);
            while let Some(end) = pending.find("\n\n") {
                let event: String = pending.drain(..end + 2).collect();
                let data: Vec<&str> = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if let Ok(v) = serde_json::from_str::<Value>(&data.join("\n")) {
                    let _ = tx.send(v);
                }
            }
        };
        if chunked {
            loop {
                let mut size = String::new();
                if r.read_line(&mut size).unwrap_or(0) == 0 {
                    break;
                }
                let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
                if n == 0 {
                    break;
                }
                let mut chunk = vec![0; n + 2];
                if r.read_exact(&mut chunk).is_err() {
                    break;
                }
                emit(&String::from_utf8_lossy(&chunk[..n]), &mut pending);
            }
        } else {
            let mut body = vec![0; length];
            if r.read_exact(&mut body).is_ok() {
                emit(&String::from_utf8_lossy(&body), &mut pending);
            }
        }
        if !is_sse && let Ok(v) = serde_json::from_str::<Value>(&pending) {
            let _ = tx.send(v);
        }
    });
    Streamed {
        head_rx,
        head: None,
        messages,
    }
}

/// Opens a legacy-era MCP session as the key's principal; returns its id.
fn initialize(port: u16, key: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "approvals-test", "version": "1"}}});
    let mut r = post_mcp(port, key, None, &init, true);
    assert_eq!(r.status(), 200);
    let session = r.header("mcp-session-id").expect("a session id");
    r.next("the initialize result");
    let mut done = post_mcp(
        port,
        key,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        true,
    );
    assert_eq!(done.status(), 202);
    session
}

fn call(id: u64, command: &str, token: Option<&str>) -> Value {
    let mut params = json!({"name": "run", "arguments": {"command": command}});
    if let Some(t) = token {
        params["_meta"] = json!({"progressToken": t});
    }
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params})
}

fn text(v: &Value) -> (String, bool) {
    let r = &v["result"];
    (
        r["content"][0]["text"].as_str().unwrap_or_default().to_string(),
        r["isError"] == json!(true),
    )
}

#[test]
fn a_held_call_streams_progress_then_the_real_result() {
    let env = Env::new(&policy(
        "{ roles: [admin], count: 1 }",
        "approvals: { mode: hold, hold_timeout: 2m }",
    ));
    let (gw, config) = start_gateway(&env);
    let config = config.to_str().expect("utf-8").to_string();
    let alice = key(&env, std::path::Path::new(&config), "alice");
    let session = initialize(gw.port, &alice);

    let mut held = post_mcp(gw.port, &alice, Some(&session), &call(1, SUDO, Some("tok-7")), true);
    assert_eq!(held.status(), 200);
    assert!(
        held.header("content-type")
            .is_some_and(|c| c.contains("text/event-stream"))
    );
    let progress = held.next("a progress notification");
    assert_eq!(progress["method"], "notifications/progress", "{progress}");
    assert_eq!(progress["params"]["progressToken"], "tok-7");

    // The approver acts from another process, against the gateway's config.
    let listed = env.steward(&["approvals", "list", "--config", &config, "--state", "pending", "--json"]);
    let line = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .next()
        .map(str::to_string)
        .expect("a pending approval");
    let id = serde_json::from_str::<Value>(&line).expect("json")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let out = env.steward(&["approvals", "approve", &id, "--as", "bob", "--config", &config]);
    assert!(out.status.success(), "{}", stderr(&out));

    let answer = loop {
        let m = held.next("the tool result");
        if m.get("id") == Some(&json!(1)) {
            break m;
        }
    };
    assert_eq!(text(&answer), (format!("ran: {SUDO}"), false), "{answer}");
    assert_eq!(env.executions(), vec![SUDO.to_string()]);

    // A JSON-only client waits for one answer: here a denial, with its reason.
    let mut waiting = post_mcp(gw.port, &alice, Some(&session), &call(2, "sudo reboot", None), false);
    let deadline = std::time::Instant::now() + WAIT;
    let id2 = loop {
        let out = env.steward(&["approvals", "list", "--config", &config, "--state", "pending", "--json"]);
        if let Some(l) = String::from_utf8_lossy(&out.stdout).lines().next() {
            break serde_json::from_str::<Value>(l).expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string();
        }
        assert!(std::time::Instant::now() < deadline, "no second pending approval");
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let out = env.steward(&[
        "approvals",
        "deny",
        &id2,
        "--as",
        "bob",
        "--config",
        &config,
        "--reason",
        "not today",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(waiting.status(), 200);
    let (t, is_error) = text(&waiting.next("the denial"));
    assert!(is_error && t.contains(&id2) && t.contains("not today"), "{t}");
    assert_eq!(env.executions().len(), 1);
    drop(gw);
    let db = env.dir.path().join("gw.db");
    assert!(
        env.steward(&["audit", "verify", "--db", db.to_str().expect("utf-8")])
            .status
            .success()
    );
}
