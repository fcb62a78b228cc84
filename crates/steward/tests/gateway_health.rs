//! Truthful health and metrics of a real `steward serve`: `/readyz` fails, with the reason,
//! while the audit log cannot be written and recovers by itself; the refused calls count as
//! denied; `/metrics` can require credentials, negotiates OpenMetrics and never makes a label of
//! what a client sent.

mod approvals_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use approvals_support::{Env, Gateway, STEWARD, stderr};
use serde_json::{Value, json};

fn start(env: &Env) -> (Gateway, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = env.dir.path().join("steward.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:{port}\nstore: {{ sqlite: ./gw.db }}\nauth: {{ api_keys: true }}\nmetrics: {{ auth: true }}\n"),
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
    (Gateway { child, port }, config)
}

/// One request; the status, the headers (lower-case) and the body.
fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        approvals_support::dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, head.to_ascii_lowercase(), body)
}

fn call(port: u16, key: &str, method: &str, command: &str) -> Value {
    let bearer = format!("Bearer {key}");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method,
        "params": {"name": "run_command", "arguments": {"command": command}}})
    .to_string();
    let (_, _, answer) = request(
        port,
        "POST",
        "/mcp/demo",
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2026-07-28"),
            ("Mcp-Method", method),
            ("Mcp-Name", "run_command"),
        ],
        &body,
    );
    serde_json::from_str(&answer).unwrap_or(Value::Null)
}

#[test]
fn readiness_follows_the_audit_log_and_metrics_tell_the_truth() {
    let env = Env::new("version: 1\n");
    let (gw, config) = start(&env);
    let port = gw.port;
    let out = env.steward(&[
        "keys",
        "create",
        "--config",
        config.to_str().unwrap(),
        "--principal",
        "alice",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let key = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let (status, _, body) = request(port, "GET", "/readyz", &[], "");
    assert_eq!(status, 200, "{body}");
    let answer = call(port, &key, "tools/call", "ls");
    assert_eq!(answer["result"]["isError"], Value::Null, "{answer}");

    // The disk "fills up": every audit insert fails.
    let db = env.dir.path().join("gw.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("CREATE TRIGGER full BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;")
        .unwrap();
    let answer = call(port, &key, "tools/call", "ls");
    assert_eq!(
        answer["result"]["isError"], true,
        "a call that cannot be audited runs: {answer}"
    );
    let (status, _, body) = request(port, "GET", "/readyz", &[], "");
    assert_eq!(status, 503, "{body}");
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert!(
        detail["audit"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("disk is full")),
        "{detail}"
    );
    assert!(detail["audit"]["since"].is_string(), "{detail}");

    // Metrics: credentials required; the refused call counted as a deny, not an allow.
    assert_eq!(request(port, "GET", "/metrics", &[], "").0, 401);
    let bearer = format!("Bearer {key}");
    let (status, head, text) = request(port, "GET", "/metrics", &[("Authorization", &bearer)], "");
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/plain; version=0.0.4"), "{head}");
    assert!(text.contains("steward_build_info{version="), "{text}");
    let decisions: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("steward_decisions_total{"))
        .collect();
    assert!(
        decisions
            .iter()
            .any(|l| l.contains("effect=\"allow\"") && l.ends_with(" 1")),
        "{decisions:?}"
    );
    assert!(
        decisions
            .iter()
            .any(|l| l.contains("effect=\"deny\"") && l.ends_with(" 1")),
        "the refused call is a deny: {decisions:?}"
    );

    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("DROP TRIGGER full;")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) = request(port, "GET", "/readyz", &[], "");
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "readiness never came back: {body}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // Methods a client invents are `other`, never labels of their own.
    for i in 0..30 {
        let _ = call(port, &key, &format!("made/up{i}"), "ls");
    }
    let (_, head, text) = request(
        port,
        "GET",
        "/metrics",
        &[
            ("Authorization", &bearer),
            ("Accept", "application/openmetrics-text; version=1.0.0"),
        ],
        "",
    );
    assert!(head.contains("content-type: application/openmetrics-text"), "{head}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert!(!text.contains("made/up"), "a client's method became a label");
    assert!(
        text.lines()
            .any(|l| l.starts_with("steward_requests_total{") && l.contains("method=\"other\"")),
        "{text}"
    );
    drop(gw);
}
