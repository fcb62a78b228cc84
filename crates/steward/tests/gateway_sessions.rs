//! Sessions of a real `steward serve`: bound to the principal and the credential that opened
//! them, ended when that credential is refused, capped per principal and in all (children
//! too), federated ones expiring; strict envelopes (duplicate keys, non-ASCII Authorization).

mod approvals_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use approvals_support::{Env, Gateway, STEWARD, dechunk, fixture, stderr};
use serde_json::Value;

fn start(env: &Env, yaml: &str) -> Gateway {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = env.dir.path().join("steward.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:{port}\nstore: {{ sqlite: ./gw.db }}\n{yaml}"),
    )
    .unwrap();
    let child = Command::new(STEWARD)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the gateway did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    Gateway { child, port }
}

struct Answer {
    status: u16,
    session: Option<String>,
    body: Value,
}

/// POSTs one JSON-RPC message; `auth` is the raw Authorization value.
fn post(port: u16, path: &str, auth: Option<&[u8]>, session: Option<&str>, body: &str) -> Answer {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    )
    .into_bytes();
    if let Some(a) = auth {
        req.extend_from_slice(b"Authorization: ");
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    if let Some(sid) = session {
        req.extend_from_slice(format!("Mcp-Session-Id: {sid}\r\nMCP-Protocol-Version: 2025-11-25\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(body.as_bytes());
    s.write_all(&req).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    let session = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("mcp-session-id").then(|| v.trim().to_string())
    });
    let mut body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    // An SSE answer: its last data line.
    if let Some(data) = body.lines().filter_map(|l| l.strip_prefix("data:")).next_back() {
        body = data.trim().to_string();
    }
    Answer {
        status,
        session,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    }
}

fn bearer(key: &str) -> Vec<u8> {
    format!("Bearer {key}").into_bytes()
}

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
const LIST: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;

fn key(env: &Env, principal: &str, roles: &str) -> String {
    let config = env.dir.path().join("steward.yaml");
    let mut args = vec![
        "keys",
        "create",
        "--config",
        config.to_str().unwrap(),
        "--principal",
        principal,
    ];
    if !roles.is_empty() {
        args.extend(["--roles", roles]);
    }
    let out = env.steward(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Processes the gateway started (its direct children).
fn children(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
        .filter(|stat| {
            // pid (comm) state ppid ...: comm may hold spaces, so read after the last ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .is_some_and(|ppid| ppid == pid.to_string())
        })
        .count()
}

fn active_sessions(port: u16) -> u64 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.lines()
        .find_map(|l| l.strip_prefix("steward_active_sessions "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

#[test]
fn sessions_follow_their_credential_and_are_capped() {
    let env = Env::new("version: 1\n");
    let ops = format!(
        "auth: {{ api_keys: true }}\nlimits: {{ sessions_per_principal: 3, children_per_principal: 2 }}\n\
         servers:\n  ops: {{ command: python3, args: [{0:?}] }}\n  shared: {{ command: python3, args: [{0:?}], mode: shared }}\n",
        fixture().display().to_string()
    );
    let gw = start(&env, &ops);
    let (port, pid) = (gw.port, gw.child.id());
    let admin = key(&env, "alice", "admin");
    let plain = key(&env, "alice", "");

    let opened = post(port, "/mcp/ops", Some(&bearer(&admin)), None, INITIALIZE);
    assert_eq!(opened.status, 200, "{}", opened.body);
    let sid = opened.session.expect("a session id");
    assert_eq!(
        post(port, "/mcp/ops", Some(&bearer(&admin)), Some(&sid), LIST).status,
        200
    );
    // Another credential of the same principal cannot use the admin key's session.
    let other = post(port, "/mcp/ops", Some(&bearer(&plain)), Some(&sid), LIST);
    assert_eq!(other.status, 404, "{}", other.body);
    assert!(other.body.to_string().contains("another credential"), "{}", other.body);

    // Revoked, the key is refused and ends the session it names, child and all.
    assert_eq!(children(pid), 1);
    let sessions = active_sessions(port);
    let out = env.steward(&[
        "keys",
        "revoke",
        "--config",
        env.dir.path().join("steward.yaml").to_str().unwrap(),
        &admin,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        post(port, "/mcp/ops", Some(&bearer(&admin)), Some(&sid), LIST).status,
        401
    );
    assert_eq!(
        active_sessions(port),
        sessions - 1,
        "the session outlived its credential"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while children(pid) != 0 {
        assert!(
            Instant::now() < deadline,
            "the session's server process is still running"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Caps: two children per principal, three sessions per principal.
    let mallory = key(&env, "mallory", "");
    for _ in 0..2 {
        assert_eq!(
            post(port, "/mcp/ops", Some(&bearer(&mallory)), None, INITIALIZE).status,
            200
        );
    }
    let refused = post(port, "/mcp/ops", Some(&bearer(&mallory)), None, INITIALIZE);
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("children_per_principal")),
        "{}",
        refused.body
    );
    assert_eq!(children(pid), 2, "no more children start");
    let third = post(port, "/mcp/shared", Some(&bearer(&mallory)), None, INITIALIZE);
    assert_eq!(
        third.status, 200,
        "a session without a child of its own: {}",
        third.body
    );
    let refused = post(port, "/mcp/shared", Some(&bearer(&mallory)), None, INITIALIZE);
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("sessions_per_principal")),
        "{}",
        refused.body
    );
    drop(gw);
}

#[test]
fn federated_sessions_expire_and_envelopes_are_strict() {
    let env = Env::new("version: 1\n");
    let gw = start(&env, "auth: { none: true, api_keys: true }\nsession_idle_timeout: 1s\n");
    let port = gw.port;

    let opened = post(port, "/mcp", None, None, INITIALIZE);
    assert_eq!(opened.status, 200, "{}", opened.body);
    let sid = opened.session.expect("a federated session id");
    assert_eq!(post(port, "/mcp", None, Some(&sid), LIST).status, 200);
    std::thread::sleep(Duration::from_millis(2500));
    let gone = post(port, "/mcp", None, Some(&sid), LIST);
    assert_eq!(gone.status, 404, "an idle federated session lives on: {}", gone.body);

    // Duplicate keys in a governed request are refused, never forwarded.
    let twice = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"run_command","arguments":{"command":"ls","command":"rm -rf /"}}}"#;
    let opened = post(port, "/mcp/demo", None, None, INITIALIZE);
    let demo = opened.session.expect("a demo session");
    let answer = post(port, "/mcp/demo", None, Some(&demo), twice);
    let text = answer.body.to_string();
    assert!(text.contains("duplicate"), "{text}");
    assert!(!text.contains("simulated"), "the call ran: {text}");

    // An Authorization header that is not visible ASCII is a bad request, not anonymous.
    let answer = post(port, "/mcp/demo", Some(b"Bearer caf\xc3\xa9"), None, INITIALIZE);
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.body.to_string().contains("visible ASCII"), "{}", answer.body);
    drop(gw);
}
