//! Defences through `steward proxy` with a misbehaving real server process: a rug pull is
//! hidden and denied until `steward pins approve`, secrets in results are redacted (kinds
//! audited, never values), the repeat breaker stops the 6th identical call under a limit of 5,
//! and a canary call is denied at CRITICAL and fires the webhook.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{Value, json};

struct Proxy {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    next: u64,
}

impl Proxy {
    fn start(dir: &Path, webhook: &str) -> Proxy {
        let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rug_server.py");
        let mut child = Command::new(env!("CARGO_BIN_EXE_steward"))
            .args([
                "proxy",
                "--server",
                "rug",
                "--principal",
                "alice",
                "--webhook",
                webhook,
                "--policy",
            ])
            .arg(dir.join("policy.yaml"))
            .arg("--audit-db")
            .arg(dir.join("audit.db"))
            .args(["--", "python3"])
            .arg(server)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut p = Proxy {
            child,
            stdin,
            lines,
            next: 0,
        };
        p.request(
            "initialize",
            json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
        );
        p
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        writeln!(
            self.stdin,
            "{}",
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
        )
        .unwrap();
        self.stdin.flush().unwrap();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(20))
                .expect("no answer from the proxy");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["id"] == json!(id) {
                return v;
            }
        }
    }

    fn tools(&mut self) -> Vec<String> {
        let r = self.request("tools/list", json!({}));
        r["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_string())
            .collect()
    }

    fn call(&mut self, tool: &str, args: Value) -> (bool, String) {
        let r = self.request("tools/call", json!({"name": tool, "arguments": args}));
        let text = r["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (r["result"]["isError"] == json!(true), text)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn steward(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_steward")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Accepts one HTTP POST and hands its body over.
fn webhook_listener() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = s.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                        let _ = tx.send(body.to_string());
                        break;
                    }
                }
            }
        }
    });
    (url, rx)
}

#[test]
fn rug_pull_secrets_breaker_and_canary() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        "version: 1\ndefault: allow\nbreaker: { repeats: 5 }\ncanaries: [{ name: export_all_credentials }]\n",
    )
    .unwrap();
    let db = dir.path().join("audit.db");
    let db_s = db.to_str().unwrap();
    let (hook, posts) = webhook_listener();
    let mut p = Proxy::start(dir.path(), &hook);

    // First sight pins every tool; the canary is offered beside them.
    let first = p.tools();
    assert!(
        first.contains(&"fetch".to_string()) && first.contains(&"export_all_credentials".to_string()),
        "{first:?}"
    );
    // The description changes: the tool is hidden and its calls denied, naming the change.
    let second = p.tools();
    assert!(!second.contains(&"fetch".to_string()), "{second:?}");
    let (err, text) = p.call("fetch", json!({"url": "https://example.com"}));
    assert!(
        err && text.contains("description changed") && text.contains("steward pins approve rug/fetch"),
        "{text}"
    );

    let (code, out) = steward(&["pins", "approve", "rug/fetch", "--by", "bob", "--db", db_s]);
    assert_eq!(code, 0, "{out}");
    assert!(p.tools().contains(&"fetch".to_string()));
    let (err, text) = p.call("fetch", json!({"url": "https://example.com"}));
    assert!(!err, "{text}");

    // Secrets in results are redacted; the audit names the kinds, never the values.
    let (err, text) = p.call("leak", json!({}));
    assert!(
        !err && !text.contains("AKIA") && !text.contains("ghp_") && text.contains("REGION=eu-west-1"),
        "{text}"
    );
    assert!(text.contains("[REDACTED:"), "{text}");

    // The breaker: five identical calls in a row run, the sixth is refused.
    for i in 1..=5 {
        let (err, text) = p.call("fetch", json!({"url": "https://loop.example"}));
        assert!(!err, "call {i}: {text}");
    }
    let (err, text) = p.call("fetch", json!({"url": "https://loop.example"}));
    assert!(err, "the 6th identical call ran: {text}");

    // A canary is denied, audited at CRITICAL, and fires the webhook.
    let (err, text) = p.call("export_all_credentials", json!({}));
    assert!(err && text.contains("canary"), "{text}");
    let body = posts
        .recv_timeout(Duration::from_secs(20))
        .expect("no webhook for the canary call");
    assert!(
        body.contains("export_all_credentials") && body.contains("alice"),
        "{body}"
    );
    drop(p);

    let (code, out) = steward(&["audit", "query", "--db", db_s, "--json"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        !out.contains("AKIAZ7QK4M2XW9PL3RTB") && !out.contains("ghp_0123"),
        "a secret reached the audit log"
    );
    assert!(
        out.contains("aws_access_key") && out.contains("github_token"),
        "finding kinds missing from the audit log"
    );
    let canary: Vec<Value> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["tool"] == json!("export_all_credentials") && v["kind"] == json!("decision"))
        .collect();
    assert!(
        canary
            .iter()
            .any(|v| v["risk"] == json!("CRITICAL") && v["effect"] == json!("deny")),
        "{canary:?}"
    );
    let (code, out) = steward(&["audit", "verify", "--db", db_s]);
    assert_eq!(code, 0, "{out}");
}
