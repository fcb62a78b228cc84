//! `steward serve` with `registry:` set: approved servers are served, expired, pending, denied
//! and unlisted ones are refused with a message naming the registry entry.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Gateway(Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(dir: &Path) -> (Gateway, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["serve", "--config"])
        .arg(dir.join("steward.yaml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let gw = Gateway(child);
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if reqwest::blocking_get_ok(&format!("{base}/healthz")) {
            return (gw, base);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("gateway did not start");
}

/// Minimal blocking helpers over reqwest's async client.
mod reqwest {
    pub use ::reqwest::*;

    pub fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    pub fn blocking_get_ok(url: &str) -> bool {
        rt().block_on(async {
            Client::new()
                .get(url)
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        })
    }

    pub fn post(url: &str, body: &str) -> (u16, String) {
        rt().block_on(async {
            let r = Client::new()
                .post(url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    }
}

const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"test","version":"1"}}}"#;

#[test]
fn registry_decides_what_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let server = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/servers/fake_server.py");
    let entry = |name: &str, expires: &str| {
        format!(
            "  - name: {name}\n    version: \"1.0.0\"\n    approved_by: sec@example.com\n    approved_date: 2026-01-01\n    expires: {expires}\n    data_scope: INTERNAL\n    risk: LOW\n    rationale: test\n    config:\n      command: python3\n      args: [\"{}\"]\n",
            server.display()
        )
    };
    let mut registry = String::from("metadata:\n  organization: Test\napproved:\n");
    registry += &entry("fresh", "2099-01-01");
    registry += &entry("stale", "2020-01-01");
    registry += "pending_review:\n  - name: waiting\n    requested_by: dev@example.com\n    requested_date: 2026-11-01\ndenied:\n  - name: banned\n    reason: exfiltrates data\n    alternative: fresh\n";
    std::fs::write(dir.path().join("registry.yaml"), registry).unwrap();
    let mut cfg = std::fs::File::create(dir.path().join("steward.yaml")).unwrap();
    writeln!(
        cfg,
        "auth: {{ none: true }}\nstore: {{ sqlite: ./s.db }}\nregistry: ./registry.yaml"
    )
    .unwrap();
    drop(cfg);

    let (_gw, base) = start(dir.path());
    let (status, body) = reqwest::post(&format!("{base}/mcp/fresh"), INIT);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("protocolVersion"), "{body}");

    for (name, word) in [
        ("stale", "EXPIRED"),
        ("waiting", "PENDING"),
        ("banned", "DENIED"),
        ("nobody", "UNAPPROVED"),
    ] {
        let (status, body) = reqwest::post(&format!("{base}/mcp/{name}"), INIT);
        assert_eq!(status, 403, "{name}: {body}");
        assert!(body.contains(word) && body.contains(name), "{name}: {body}");
    }
}
