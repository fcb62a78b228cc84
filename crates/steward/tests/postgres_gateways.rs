//! Two real `steward serve` processes on one throwaway PostgreSQL cluster: a call held on
//! gateway A is released by `steward approvals approve ID --config b.yaml` and the client gets
//! the upstream's real result; the one audit chain verifies and names both instances; under a
//! bounded load through both, B is killed (SIGKILL) and every answered call has its decision
//! row while A keeps serving; with
//! PostgreSQL stopped calls fail closed and `/readyz` answers 503; started again, service comes
//! back without restarting the gateways; one queue-mode grant retried through both gateways at
//! once runs exactly once. Skipped (with a message) when PostgreSQL is not
//! installed; scripts/test-all installs it.

mod approvals_support;
#[path = "../../steward-store/tests/support/pg_cluster.rs"]
mod pg_cluster;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use approvals_support::{Env, Gateway, STEWARD, WAIT, fixture, http, policy, stderr};
use serde_json::{Value, json};

const SUDO: &str = "sudo systemctl restart nginx";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `steward ARGS` with the database URL in the environment (a.yaml reads it from there).
fn steward(url: &str, args: &[&str]) -> Output {
    Command::new(STEWARD)
        .args(args)
        .env("RUST_LOG", "warn")
        .env("STEWARD_PG_URL", url)
        .output()
        .expect("run steward")
}

/// A gateway config on the shared database; `url_yaml` is the `url:` value.
fn config(env: &Env, name: &str, port: u16, url_yaml: &str) -> PathBuf {
    let path = env.dir.path().join(format!("{name}.yaml"));
    std::fs::write(
        &path,
        format!(
            "listen: 127.0.0.1:{port}\nstore: {{ postgres: {{ url: {url_yaml}, pool: 4 }}, instance: gw-{name} }}\npolicy: ./policy.yaml\nauth: {{ api_keys: true }}\nservers:\n  ops: {{ command: python3, args: [{:?}], env: {{ OPS_LOG: {:?} }} }}\n",
            fixture().display().to_string(),
            env.log.display().to_string()
        ),
    )
    .expect("config");
    path
}

fn serve(url: &str, config: &Path, port: u16) -> Gateway {
    let child = Command::new(STEWARD)
        .args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .env("STEWARD_PG_URL", url)
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
    gw
}

/// One POST to `/mcp/ops`; the status, the session header, and every JSON-RPC message in the
/// answer (a JSON body or SSE events). Reads until the gateway closes the connection.
fn post(port: u16, key: &str, session: Option<&str>, body: &Value) -> (u16, Option<String>, Vec<Value>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(WAIT * 2)).expect("timeout");
    let body = body.to_string();
    let mut req = format!(
        "POST /mcp/ops HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(s) = session {
        req.push_str(&format!("Mcp-Session-Id: {s}\r\nMCP-Protocol-Version: 2025-11-25\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(&body);
    stream.write_all(req.as_bytes()).expect("send");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let session = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("mcp-session-id").then(|| v.trim().to_string())
    });
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        approvals_support::dechunk(rest)
    } else {
        rest.to_string()
    };
    let mut messages: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str(d.trim()).ok())
        .collect();
    if messages.is_empty()
        && let Ok(v) = serde_json::from_str(&body)
    {
        messages.push(v);
    }
    (status, session, messages)
}

fn initialize(port: u16, key: &str) -> String {
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "pg-test", "version": "1"}}});
    let (status, session, _) = post(port, key, None, &init);
    assert_eq!(status, 200);
    let session = session.expect("a session id");
    let (status, _, _) = post(
        port,
        key,
        Some(&session),
        &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    );
    assert_eq!(status, 202);
    session
}

fn call(id: u64, command: &str) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": "run", "arguments": {"command": command}}})
}

/// The answer to request `id`: its text and whether it is an error.
fn answer(messages: &[Value], id: u64) -> (String, bool) {
    let Some(m) = messages.iter().find(|m| m.get("id") == Some(&json!(id))) else {
        return (format!("no answer to {id} in {messages:?}"), true);
    };
    if let Some(e) = m.get("error") {
        return (e.to_string(), true);
    }
    let r = &m["result"];
    (
        r["content"][0]["text"].as_str().unwrap_or_default().to_string(),
        r["isError"] == json!(true),
    )
}

fn pending_id(url: &str, config: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let out = steward(
            url,
            &["approvals", "list", "--config", config, "--state", "pending", "--json"],
        );
        if let Some(line) = String::from_utf8_lossy(&out.stdout).lines().next() {
            return serde_json::from_str::<Value>(line).expect("json")["id"]
                .as_str()
                .expect("id")
                .to_string();
        }
        assert!(Instant::now() < deadline, "no pending approval: {}", stderr(&out));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn ready(port: u16) -> u16 {
    http(port, "GET", "/readyz", None, None, None).0
}

#[test]
fn two_gateways_share_approvals_one_chain_and_fail_closed_without_postgres() {
    if !pg_cluster::installed("two_gateways_share_approvals_one_chain_and_fail_closed_without_postgres") {
        return;
    }
    // A cluster of its own: this test stops and starts it.
    let cluster = pg_cluster::Cluster::start();
    let url = cluster.database();
    let env = Env::new(&policy(
        "{ roles: [admin], count: 1 }",
        "approvals: { mode: hold, hold_timeout: 2m }",
    ));
    let (port_a, port_b) = (free_port(), free_port());
    let a = config(&env, "a", port_a, "{ env: STEWARD_PG_URL }");
    let b = config(&env, "b", port_b, &format!("{url:?}"));
    let (a_cfg, b_cfg) = (a.to_str().expect("utf-8"), b.to_str().expect("utf-8"));
    let gw_a = serve(&url, &a, port_a);
    let gw_b = serve(&url, &b, port_b);
    assert_eq!(ready(port_a), 200);
    assert_eq!(ready(port_b), 200);

    // A key made against B's config works on A: one key store.
    let out = steward(&url, &["keys", "create", "--config", b_cfg, "--principal", "alice"]);
    assert!(out.status.success(), "keys create: {}", stderr(&out));
    let alice = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let session = initialize(port_a, &alice);

    // Held on A, approved with B's config: the client on A gets the real result.
    let held = {
        let (alice, session) = (alice.clone(), session.clone());
        std::thread::spawn(move || post(port_a, &alice, Some(&session), &call(1, SUDO)))
    };
    let id = pending_id(&url, b_cfg);
    let out = steward(&url, &["approvals", "approve", &id, "--as", "bob", "--config", b_cfg]);
    assert!(out.status.success(), "approve: {}", stderr(&out));
    let (status, _, messages) = held.join().expect("held call");
    assert_eq!(status, 200);
    assert_eq!(answer(&messages, 1), (format!("ran: {SUDO}"), false));
    assert_eq!(env.executions(), vec![SUDO.to_string()]);

    // A plain call through B lands in the same chain.
    let session_b = initialize(port_b, &alice);
    let (_, _, messages) = post(port_b, &alice, Some(&session_b), &call(2, "echo from-b"));
    assert_eq!(answer(&messages, 2), ("ran: echo from-b".to_string(), false));

    let out = steward(&url, &["audit", "verify", "--config", a_cfg]);
    assert!(
        out.status.success(),
        "verify: {}{}",
        stderr(&out),
        String::from_utf8_lossy(&out.stdout)
    );
    let out = steward(&url, &["audit", "query", "--config", a_cfg, "--json"]);
    assert!(out.status.success(), "query: {}", stderr(&out));
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let instance_of = |pred: &dyn Fn(&Value) -> bool| -> Vec<String> {
        rows.iter()
            .filter(|r| pred(r))
            .filter_map(|r| r["instance"].as_str().map(str::to_string))
            .collect()
    };
    let sudo_decisions = instance_of(&|r| r["kind"] == "decision" && r["args"].to_string().contains("systemctl"));
    assert!(
        sudo_decisions.iter().all(|i| i == "gw-a") && !sudo_decisions.is_empty(),
        "{rows:?}"
    );
    let approvals = instance_of(&|r| r["kind"] == "approval" && r["approval_id"] == json!(id));
    assert!(approvals.contains(&"gw-b".to_string()), "approval rows: {approvals:?}");
    assert!(approvals.contains(&"gw-a".to_string()), "approval rows: {approvals:?}");
    let outcomes = instance_of(&|r| r["kind"] == "outcome");
    assert!(
        outcomes.contains(&"gw-a".to_string()) && outcomes.contains(&"gw-b".to_string()),
        "{outcomes:?}"
    );
    let out = steward(&url, &["audit", "stats", "--config", a_cfg]);
    assert!(out.status.success(), "stats: {}", stderr(&out));

    // Bounded load through both gateways; B is killed (SIGKILL) half-way. Every call a client
    // saw answered has its decision row, the chain verifies, and A kept serving.
    let mut gw_b = gw_b;
    let workers: Vec<_> = (0..4u64)
        .map(|w| {
            let (alice, port) = (alice.clone(), if w % 2 == 0 { port_a } else { port_b });
            std::thread::spawn(move || {
                let Some(session) = std::panic::catch_unwind(|| initialize(port, &alice)).ok() else {
                    return Vec::new();
                };
                let mut answered = Vec::new();
                for i in 0..10u64 {
                    let command = format!("echo load-{w}-{i}");
                    let id = 100 + w * 100 + i;
                    // A gateway killed under the client: connecting fails, the worker stops.
                    let Ok((_, _, messages)) =
                        std::panic::catch_unwind(|| post(port, &alice, Some(&session), &call(id, &command)))
                    else {
                        break;
                    };
                    if answer(&messages, id) == (format!("ran: {command}"), false) {
                        answered.push(command);
                    }
                }
                answered
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    gw_b.child.kill().expect("kill -9 gateway B");
    let _ = gw_b.child.wait();
    let answered: Vec<String> = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
    assert!(
        answered.iter().any(|c| c.starts_with("echo load-0-")),
        "A served: {answered:?}"
    );
    let out = steward(
        &url,
        &["audit", "query", "--config", a_cfg, "--kind", "decision", "--json"],
    );
    let decided = String::from_utf8_lossy(&out.stdout).to_string();
    for command in &answered {
        assert!(
            decided.contains(command.as_str()),
            "no decision row for the answered call {command}"
        );
    }
    let out = steward(&url, &["audit", "verify", "--config", a_cfg]);
    assert!(out.status.success(), "verify after kill -9: {}", stderr(&out));

    // PostgreSQL goes away: calls fail closed, saying why, and /readyz fails.
    cluster.stop();
    let (status, _, messages) = post(port_a, &alice, Some(&session), &call(3, "echo while-down"));
    let (text, is_error) = answer(&messages, 3);
    assert!(status >= 400 || is_error, "a call without the store: {status} {text}");
    eprintln!("refused while PostgreSQL is down: {status} {text}");
    assert!(!env.executions().iter().any(|e| e.contains("while-down")));
    assert_eq!(ready(port_a), 503);

    // Back again: A serves without a restart.
    cluster.restart();
    let deadline = Instant::now() + WAIT;
    while ready(port_a) != 200 {
        assert!(Instant::now() < deadline, "gateway A did not become ready again");
        std::thread::sleep(Duration::from_millis(250));
    }
    // The session was ended when its credential could not be checked: the client opens a new one.
    let session = initialize(port_a, &alice);
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, _, messages) = post(port_a, &alice, Some(&session), &call(4, "echo after"));
        if answer(&messages, 4) == ("ran: echo after".to_string(), false) {
            break;
        }
        assert!(Instant::now() < deadline, "no service after recovery: {messages:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    drop(gw_a);
    let out = steward(&url, &["audit", "verify", "--config", b_cfg]);
    assert!(out.status.success(), "verify after the outage: {}", stderr(&out));
}

#[test]
fn store_migrate_copies_a_sqlite_store_and_refuses_a_non_empty_target() {
    if !pg_cluster::installed("store_migrate_copies_a_sqlite_store_and_refuses_a_non_empty_target") {
        return;
    }
    let url = pg_cluster::shared().database();
    let dir = tempfile::tempdir().expect("temp dir");
    let lite = dir.path().join("lite.yaml");
    std::fs::write(&lite, "store: { sqlite: ./s.db }\n").expect("config");
    let lite_cfg = lite.to_str().expect("utf-8");
    // Two keys: two key rows and two audit rows to carry over.
    for p in ["alice", "bob"] {
        let out = steward(&url, &["keys", "create", "--config", lite_cfg, "--principal", p]);
        assert!(out.status.success(), "keys create: {}", stderr(&out));
    }
    let from = format!("sqlite:{}", dir.path().join("s.db").display());
    let to = format!("postgres:{url}");
    let out = steward(&url, &["store", "migrate", "--from", &from, "--to", &to]);
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "migrate: {}{printed}", stderr(&out));
    assert!(printed.contains("audit_events: 2 rows copied"), "{printed}");
    assert!(printed.contains("api_keys: 2 rows copied"), "{printed}");
    assert!(printed.contains("OK"), "{printed}");

    // The target now holds a store: a second migration is refused and changes nothing.
    let again = steward(&url, &["store", "migrate", "--from", &from, "--to", &to]);
    assert!(!again.status.success(), "a non-empty target must be refused");

    let pg = dir.path().join("pg.yaml");
    std::fs::write(&pg, "store: { postgres: { url: { env: STEWARD_PG_URL } } }\n").expect("config");
    let pg_cfg = pg.to_str().expect("utf-8");
    let out = steward(&url, &["audit", "verify", "--config", pg_cfg]);
    assert!(out.status.success(), "verify on the target: {}", stderr(&out));
    let out = steward(&url, &["keys", "list", "--config", pg_cfg, "--json"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        2,
        "{}",
        stderr(&out)
    );
}

/// Gateways A and B on the database at `url`, and an API key of alice made on A.
struct Pair {
    a: PathBuf,
    b: PathBuf,
    port_a: u16,
    port_b: u16,
    alice: String,
    _gateways: (Gateway, Gateway),
}

fn two_gateways(url: &str, env: &Env) -> Pair {
    let (port_a, port_b) = (free_port(), free_port());
    let a = config(env, "a", port_a, "{ env: STEWARD_PG_URL }");
    let b = config(env, "b", port_b, "{ env: STEWARD_PG_URL }");
    let gateways = (serve(url, &a, port_a), serve(url, &b, port_b));
    let out = steward(
        url,
        &[
            "keys",
            "create",
            "--config",
            a.to_str().expect("utf-8"),
            "--principal",
            "alice",
        ],
    );
    assert!(out.status.success(), "keys create: {}", stderr(&out));
    let alice = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Pair {
        a,
        b,
        port_a,
        port_b,
        alice,
        _gateways: gateways,
    }
}

#[test]
fn one_queue_grant_runs_once_whichever_gateway_sees_the_retries() {
    if !pg_cluster::installed("one_queue_grant_runs_once_whichever_gateway_sees_the_retries") {
        return;
    }
    let cluster = pg_cluster::Cluster::start();
    let url = cluster.database();
    let env = Env::new(&policy("{ roles: [admin], count: 1 }", "approvals: { mode: queue }"));
    let pair = two_gateways(&url, &env);
    let (b, port_a, port_b, alice) = (&pair.b, pair.port_a, pair.port_b, pair.alice.clone());
    let (session_a, session_b) = (initialize(port_a, &alice), initialize(port_b, &alice));

    // Queue mode: the first call is answered at once with its approval, and does not run.
    let (_, _, messages) = post(port_a, &alice, Some(&session_a), &call(1, SUDO));
    let (text, is_error) = answer(&messages, 1);
    assert!(is_error && text.contains("apr-"), "{text}");
    let id = pending_id(&url, b.to_str().expect("utf-8"));
    let out = steward(
        &url,
        &[
            "approvals",
            "approve",
            &id,
            "--as",
            "bob",
            "--config",
            b.to_str().expect("utf-8"),
        ],
    );
    assert!(out.status.success(), "approve: {}", stderr(&out));

    // The identical retry, through both gateways at once: exactly one runs.
    let retries: Vec<_> = [(port_a, session_a, 2u64), (port_b, session_b, 3u64)]
        .into_iter()
        .map(|(port, session, n)| {
            let alice = alice.clone();
            std::thread::spawn(move || (n, post(port, &alice, Some(&session), &call(n, SUDO)).2))
        })
        .collect();
    let ran: Vec<bool> = retries
        .into_iter()
        .map(|t| {
            let (n, messages) = t.join().expect("retry");
            let (text, is_error) = answer(&messages, n);
            !is_error && text == format!("ran: {SUDO}")
        })
        .collect();
    assert_eq!(ran.iter().filter(|r| **r).count(), 1, "{ran:?}");
    assert_eq!(env.executions(), vec![SUDO.to_string()], "the grant ran once");
}

#[test]
fn budgets_and_the_repeat_breaker_count_calls_through_both_gateways() {
    if !pg_cluster::installed("budgets_and_the_repeat_breaker_count_calls_through_both_gateways") {
        return;
    }
    let cluster = pg_cluster::Cluster::start();
    let url = cluster.database();
    let env = Env::new(&policy(
        "{ roles: [admin], count: 1 }",
        "breaker: { repeats: 2 }\nbudgets:\n  - { per: principal, window: 1h, calls: 5 }",
    ));
    let pair = two_gateways(&url, &env);
    let (a, port_a, port_b, alice) = (&pair.a, pair.port_a, pair.port_b, pair.alice.clone());
    let sessions = [
        (port_a, initialize(port_a, &alice)),
        (port_b, initialize(port_b, &alice)),
    ];
    // Call n goes through gateway A when n is even, B when it is odd.
    let through = |n: u64, command: &str| {
        let (port, session) = &sessions[(n % 2) as usize];
        answer(&post(*port, &alice, Some(session), &call(n, command)).2, n)
    };

    // The same call twice, once per gateway, is within `repeats: 2`; the third in a row is
    // refused, wherever it goes.
    for n in 0..2 {
        let (text, is_error) = through(n, "echo same");
        assert!(!is_error && text == "ran: echo same", "{text}");
    }
    let (text, is_error) = through(2, "echo same");
    assert!(is_error && text.contains("3 times in a row"), "{text}");

    // Two calls are counted in the budget of 5 (the breaker's refusal is not): three more run,
    // alternating gateways, and the sixth is refused by whichever gateway sees it.
    for n in 3..6 {
        let (text, is_error) = through(n, &format!("echo {n}"));
        assert!(!is_error, "{text}");
    }
    let (text, is_error) = through(6, "echo 6");
    assert!(
        is_error && text.contains("budget of 5 calls per 1h for principal 'alice' is used up"),
        "{text}"
    );
    assert_eq!(
        env.executions(),
        vec!["echo same", "echo same", "echo 3", "echo 4", "echo 5"],
        "what ran"
    );
    let out = steward(&url, &["audit", "verify", "--config", a.to_str().expect("utf-8")]);
    assert!(out.status.success(), "audit verify: {}", stderr(&out));
}
