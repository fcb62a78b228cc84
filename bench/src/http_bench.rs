//! HTTP: `tools/call` throughput and latency against the fixture directly and through
//! `steward serve` (the fixture as an HTTP upstream, and as a stdio upstream), at several
//! concurrencies; plus the trivial route that shows the load generator is not the limit.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

use crate::Env;
use crate::loadgen::{self, Case, CaseResult};
use crate::procs::{Proc, free_port, log_file, spawn_http_fixture, wait_ready};

#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub concurrency: Vec<usize>,
    pub max_requests: usize,
    pub max_duration: Duration,
    pub warmup_per_worker: usize,
}

#[derive(Debug, Serialize)]
pub struct HttpResult {
    pub max_requests_per_case: usize,
    pub max_seconds_per_case: f64,
    pub cases: Vec<CaseResult>,
    /// Decision rows in the gateway's audit log after the run, and how many calls it was sent.
    pub gateway_audited_decisions: u64,
    pub gateway_calls_sent: u64,
    pub gateway_audit_chain_ok: bool,
}

/// The labels of the cases, as the table and JSON name them.
pub const TRIVIAL: &str = "trivial /ok (fixture)";
pub const DIRECT: &str = "direct fixture (HTTP)";
pub const GW_HTTP: &str = "steward serve → HTTP upstream";
pub const GW_STDIO: &str = "steward serve → stdio upstream";

/// A `steward serve` process on a free port with its config and database under `dir`.
pub struct Gateway {
    pub proc: Proc,
    pub base: String,
    pub db: std::path::PathBuf,
}

/// Starts `steward serve` with `servers_yaml` (may be empty: the built-in demo).
pub async fn start_gateway(env: &Env, name: &str, servers_yaml: &str, with_policy: bool) -> anyhow::Result<Gateway> {
    let dir = env.dir.join(name);
    std::fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let db = dir.join("steward.db");
    let policy = if with_policy {
        format!("policy: {}\n", env.policy.display())
    } else {
        String::new()
    };
    let config = format!(
        "listen: 127.0.0.1:{port}\nstore:\n  sqlite: {}\n{policy}auth: {{ none: true }}\n{servers_yaml}",
        db.display()
    );
    let config_path = dir.join("steward.yaml");
    std::fs::write(&config_path, config)?;
    let (log, log_path) = log_file(&dir, "serve")?;
    let mut cmd = Command::new(&env.steward);
    cmd.arg("serve")
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    let mut proc = Proc::spawn("steward serve", &mut cmd)?;
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/healthz"), Duration::from_secs(20), &mut proc)
        .await
        .with_context(|| format!("gateway log: {}", log_path.display()))?;
    Ok(Gateway { proc, base, db })
}

pub async fn run(env: &Env, opts: &HttpOptions) -> anyhow::Result<HttpResult> {
    let (fixture, fixture_url) = spawn_http_fixture(&env.bench_exe)?;
    let servers = format!(
        // Each load worker opens its own session, and each stdio session its own child.
        "limits:\n  children_per_principal: 256\n  max_children: 256\n  sessions_per_principal: 1024\n\
         servers:\n  bench:\n    url: {fixture_url}/mcp\n  bench-stdio:\n    command: {}\n    args: [fixture, --stdio]\n",
        env.bench_exe.display()
    );
    let mut gw = start_gateway(env, "serve-http", &servers, true).await?;
    let (f, g) = (fixture.pid(), gw.proc.pid());

    let mut cases = Vec::new();
    let mut calls_sent = 0u64;
    // Cases at one concurrency run back to back, so they see the same machine.
    for &c in &opts.concurrency {
        let case = |label: &str, url: String, mcp: bool, pids: Vec<u32>| Case {
            label: label.to_string(),
            url,
            mcp,
            concurrency: c,
            max_requests: opts.max_requests,
            max_duration: opts.max_duration,
            warmup_per_worker: opts.warmup_per_worker,
            server_pids: pids,
        };
        for case in [
            case(TRIVIAL, format!("{fixture_url}/ok"), false, vec![f]),
            case(DIRECT, format!("{fixture_url}/mcp"), true, vec![f]),
            case(GW_HTTP, format!("{}/mcp/bench", gw.base), true, vec![g, f]),
            case(GW_STDIO, format!("{}/mcp/bench-stdio", gw.base), true, vec![g]),
        ] {
            eprintln!("  http: {} at concurrency {c} ...", case.label);
            let r = loadgen::run(&case).await?;
            eprintln!(
                "    {:.0} req/s, p50 {:.0} µs, p99 {:.0} µs, errors {}",
                r.requests_per_s, r.latency.p50_us, r.latency.p99_us, r.errors
            );
            if case.label.starts_with("steward") {
                calls_sent += (r.requests + r.errors + c * opts.warmup_per_worker) as u64;
            }
            cases.push(r);
        }
    }
    gw.proc.stop(Duration::from_secs(20));
    drop(fixture);
    let (decisions, chain_ok) = audited(&gw.db)?;
    Ok(HttpResult {
        max_requests_per_case: opts.max_requests,
        max_seconds_per_case: opts.max_duration.as_secs_f64(),
        cases,
        gateway_audited_decisions: decisions,
        gateway_calls_sent: calls_sent,
        gateway_audit_chain_ok: chain_ok,
    })
}

/// `tools/call` decision rows in an audit log, and whether its chain verifies.
pub fn audited(db: &Path) -> anyhow::Result<(u64, bool)> {
    let reader = steward_store::AuditReader::open(db)?;
    let rows = reader.query(&steward_store::QueryFilter {
        kind: Some("decision".into()),
        ..Default::default()
    })?;
    let n = rows
        .iter()
        .filter(|r| r.method.as_deref() == Some("tools/call"))
        .count() as u64;
    Ok((n, reader.verify()?.ok()))
}

#[derive(Debug, Serialize)]
pub struct MemoryResult {
    pub idle_rss_kib: u64,
    pub sessions: usize,
    pub rss_with_sessions_kib: u64,
    pub per_session_bytes: f64,
}

/// RSS of `steward serve` idle, and with `sessions` open legacy sessions on the built-in demo
/// upstream (shared and in-process, so no child is counted).
pub async fn memory(env: &Env, sessions: usize) -> anyhow::Result<MemoryResult> {
    // One principal (anonymous) opens every session: lift the per-principal cap for it.
    let limits = format!(
        "limits:\n  sessions_per_principal: {n}\n  max_sessions: {n}\n",
        n = sessions.max(1)
    );
    let mut gw = start_gateway(env, "serve-memory", &limits, false).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle = gw.proc.rss_kib()?;
    let client = reqwest::Client::builder().no_proxy().http1_only().build()?;
    let url = format!("{}/mcp/demo", gw.base);
    let mut opened = 0;
    // A few connections at a time, like clients arriving; sessions outlive their requests.
    let mut pending = Vec::new();
    for i in 0..sessions {
        let (client, url) = (client.clone(), url.clone());
        pending.push(tokio::spawn(async move {
            let body = format!(
                r#"{{"jsonrpc":"2.0","id":{i},"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"steward-bench","version":"1"}}}}}}"#
            );
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(body)
                .send()
                .await?;
            let sid = resp.headers().get("mcp-session-id").and_then(|v| v.to_str().ok()).map(str::to_string);
            let _ = resp.bytes().await?;
            let sid = sid.context("no session id")?;
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .header("mcp-session-id", sid)
                .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
                .send()
                .await?;
            anyhow::ensure!(resp.status().is_success(), "notifications/initialized: {}", resp.status());
            anyhow::Ok(())
        }));
        if pending.len() == 16 {
            for p in pending.drain(..) {
                p.await??;
                opened += 1;
            }
        }
    }
    for p in pending {
        p.await??;
        opened += 1;
    }
    drop(client);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with_sessions = gw.proc.rss_kib()?;
    gw.proc.stop(Duration::from_secs(10));
    Ok(MemoryResult {
        idle_rss_kib: idle,
        sessions: opened,
        rss_with_sessions_kib: with_sessions,
        per_session_bytes: (with_sessions as f64 - idle as f64) * 1024.0 / opened.max(1) as f64,
    })
}
