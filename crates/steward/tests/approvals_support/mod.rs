//! Shared helpers for the approval tests: a real `steward proxy` around the Python fixture
//! server, driven over stdio, and the `steward` CLI in other processes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Every wait in these tests ends after this long, with a failure that says what was awaited.
pub const WAIT: Duration = Duration::from_secs(30);

pub const STEWARD: &str = env!("CARGO_BIN_EXE_steward");

pub fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ops_server.py")
}

/// A policy in the it-ops style: `run` is MEDIUM, a sudo command is CRITICAL and needs an
/// admin's approval; `extra` is appended (an `approvals:` block, say) and `approvers` replaces
/// the sudo operation's approvers.
pub fn policy(approvers: &str, extra: &str) -> String {
    format!(
        r#"version: 1
default: allow
roles:
  operator: [ops]
  admin: [ops, local-sudo]
  auditor: [read]
principals:
  alice: {{ roles: [operator] }}
  bob:   {{ roles: [admin] }}
  carol: {{ roles: [admin] }}
  dave:  {{ roles: [auditor] }}
tools:
  - match: ops/run
    risk: MEDIUM
    operations:
      - name: sudo
        when: '"privilege-escalation" in call.flags'
        risk: CRITICAL
        approval: always
        approvers: {approvers}
risk_effects:
  LOW: allow
  MEDIUM: allow
  HIGH: approve_if_dangerous
  CRITICAL: approve
{extra}
"#
    )
}

/// A test's files: policy, audit database, the fixture's execution log.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub policy: PathBuf,
    pub db: PathBuf,
    pub log: PathBuf,
}

impl Env {
    pub fn new(policy_yaml: &str) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, policy_yaml).expect("write policy");
        let db = dir.path().join("audit.db");
        let log = dir.path().join("executions.log");
        Env { dir, policy, db, log }
    }

    pub fn db(&self) -> &str {
        self.db.to_str().expect("utf-8 path")
    }

    pub fn policy_path(&self) -> &str {
        self.policy.to_str().expect("utf-8 path")
    }

    /// The commands the fixture ran, in order.
    pub fn executions(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Runs `steward ARGS` to completion.
    pub fn steward(&self, args: &[&str]) -> Output {
        Command::new(STEWARD)
            .args(args)
            .env("RUST_LOG", "warn")
            .output()
            .expect("run steward")
    }

    /// `steward approvals SUB ID --as NAME --db DB --policy POLICY [more]`.
    pub fn approvals(&self, sub: &str, id: &str, actor: &str, more: &[&str]) -> Output {
        let mut args = vec![
            "approvals",
            sub,
            id,
            "--as",
            actor,
            "--db",
            self.db(),
            "--policy",
            self.policy_path(),
        ];
        args.extend_from_slice(more);
        self.steward(&args)
    }

    /// Approvals as `approvals list --json` prints them.
    pub fn list(&self, state: Option<&str>) -> Vec<Value> {
        let mut args = vec!["approvals", "list", "--db", self.db(), "--json"];
        if let Some(s) = state {
            args.extend_from_slice(&["--state", s]);
        }
        let out = self.steward(&args);
        assert!(
            out.status.success(),
            "approvals list failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    /// Waits for a pending approval to appear and returns its id.
    pub fn wait_pending(&self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            if self.db.exists()
                && let Some(a) = self.list(Some("pending")).first()
            {
                return a["id"].as_str().expect("id").to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no pending approval appeared within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The audit log as `audit query --json` prints it.
    pub fn audit(&self) -> Vec<Value> {
        let out = self.steward(&["audit", "query", "--db", self.db(), "--json"]);
        assert!(
            out.status.success(),
            "audit query failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    pub fn verify(&self) {
        let out = self.steward(&["audit", "verify", "--db", self.db()]);
        assert!(
            out.status.success(),
            "audit verify failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `steward proxy` as `alice` around the fixture, with extra proxy flags.
    pub fn proxy(&self, extra: &[&str]) -> Proxy {
        self.proxy_with(extra, json!({}))
    }

    /// [`Env::proxy`] for a client that declares `capabilities`.
    pub fn proxy_with(&self, extra: &[&str], capabilities: Value) -> Proxy {
        let mut cmd = Command::new(STEWARD);
        cmd.args([
            "proxy",
            "--policy",
            self.policy_path(),
            "--server",
            "ops",
            "--principal",
            "alice",
            "--audit-db",
            self.db(),
        ])
        .args(extra)
        .arg("--")
        .arg("python3")
        .arg(fixture())
        .env("OPS_LOG", &self.log)
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn steward proxy");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let mut p = Proxy {
            child,
            stdin: Some(stdin),
            rx,
            notes: Vec::new(),
        };
        p.send(json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities, "clientInfo": {"name": "approvals-test", "version": "1"}}}));
        p.response(0);
        p.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        p
    }
}

/// A running proxy and the client side of its stdio.
pub struct Proxy {
    child: Child,
    stdin: Option<ChildStdin>,
    rx: Receiver<Value>,
    /// Notifications received while waiting for responses.
    pub notes: Vec<Value>,
}

impl Proxy {
    pub fn send(&mut self, v: Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{v}").expect("write to proxy");
        stdin.flush().expect("flush");
    }

    /// Sends `tools/call TOOL ARGS` with request id `id` (and a progress token when given).
    pub fn call(&mut self, id: u64, tool: &str, args: Value, progress_token: Option<&str>) {
        let mut params = json!({"name": tool, "arguments": args});
        if let Some(t) = progress_token {
            params["_meta"] = json!({"progressToken": t});
        }
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": params}));
    }

    /// The next message of any kind.
    pub fn next(&mut self, what: &str) -> Value {
        match self.rx.recv_timeout(WAIT) {
            Ok(v) => v,
            Err(RecvTimeoutError::Timeout) => {
                panic!("no message from the proxy within {WAIT:?} while waiting for {what}")
            }
            Err(RecvTimeoutError::Disconnected) => panic!("the proxy closed its output while waiting for {what}"),
        }
    }

    /// The response to request `id`; notifications on the way are kept in `notes`.
    pub fn response(&mut self, id: u64) -> Value {
        loop {
            let v = self.next(&format!("the response to request {id}"));
            if v.get("id") == Some(&json!(id)) && (v.get("result").is_some() || v.get("error").is_some()) {
                return v;
            }
            self.notes.push(v);
        }
    }

    /// Whether the response to `id` has already arrived (without waiting).
    pub fn try_response(&mut self, id: u64) -> Option<Value> {
        while let Ok(v) = self.rx.try_recv() {
            if v.get("id") == Some(&json!(id)) {
                return Some(v);
            }
            self.notes.push(v);
        }
        None
    }

    /// Closes the client side (stdin) and waits for the proxy to exit.
    pub fn close(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + WAIT;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the proxy did not exit within {WAIT:?} after its input closed");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The text of a tool result, and whether it is an error.
pub fn result_text(response: &Value) -> (String, bool) {
    let result = &response["result"];
    let text = result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n");
    (text, result["isError"] == json!(true))
}

/// Audit rows about one approval, in order.
pub fn approval_rows<'a>(rows: &'a [Value], id: &str) -> Vec<&'a Value> {
    rows.iter().filter(|r| r["approval_id"] == json!(id)).collect()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---- the HTTP gateway -------------------------------------------------------------------------

/// A running `steward serve`.
pub struct Gateway {
    pub child: Child,
    pub port: u16,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request to the gateway; the status and the JSON body (Null when it is not JSON).
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
    origin: Option<&str>,
) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the gateway");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    if let Some(o) = origin {
        req.push_str(&format!("Origin: {o}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn start_gateway(env: &Env) -> (Gateway, std::path::PathBuf) {
    let port = TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let config = env.dir.path().join("steward.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nstore: {{ sqlite: ./gw.db }}\npolicy: ./policy.yaml\nauth: {{ api_keys: true }}\nservers:\n  ops: {{ command: python3, args: [{:?}], env: {{ OPS_LOG: {:?} }} }}\n",
            fixture().display().to_string(),
            env.log.display().to_string()
        ),
    )
    .expect("config");
    let child = Command::new(STEWARD)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn steward serve");
    let gw = Gateway { child, port };
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the gateway did not listen within {WAIT:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    (gw, config)
}

pub fn key(env: &Env, config: &std::path::Path, principal: &str) -> String {
    let out = env.steward(&[
        "keys",
        "create",
        "--config",
        config.to_str().expect("utf-8"),
        "--principal",
        principal,
    ]);
    assert!(out.status.success(), "keys create: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}
