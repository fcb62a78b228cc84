//! The HTTP load generator: N workers, each with its own keep-alive connection and (for MCP
//! targets) its own legacy session: `initialize` once, then `tools/call` after `tools/call`
//! carrying `Mcp-Session-Id`, each timed, until a request count or a deadline is reached.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use serde::Serialize;
use tokio::sync::Barrier;

use crate::procs::{context_switches, cpu_seconds_tree};
use crate::stats::{Latency, nanos};
use crate::stdio_bench::ECHO_TEXT;

const SESSION_HEADER: &str = "mcp-session-id";
const PROTOCOL: &str = "2025-06-18";

/// What is being loaded.
#[derive(Debug, Clone)]
pub struct Case {
    pub label: String,
    pub url: String,
    /// An MCP endpoint (session + tools/call) or a plain route answering "ok".
    pub mcp: bool,
    pub concurrency: usize,
    pub max_requests: usize,
    pub max_duration: Duration,
    /// Untimed calls each worker makes first.
    pub warmup_per_worker: usize,
    /// Processes whose CPU time is charged to this case (the server side).
    pub server_pids: Vec<u32>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    pub label: String,
    pub concurrency: usize,
    pub requests: usize,
    pub errors: usize,
    pub seconds: f64,
    pub requests_per_s: f64,
    pub latency: Latency,
    /// CPU the server-side processes used per request (user + system).
    pub server_cpu_us_per_req: f64,
    /// Context switches over the server-side processes' threads per request.
    pub server_context_switches_per_req: f64,
    /// CPU this process (the load generator) used per request.
    pub loadgen_cpu_us_per_req: f64,
}

struct Worker {
    client: reqwest::Client,
    url: String,
    session: Option<String>,
    next_id: u64,
    /// The call's arguments as JSON, built once.
    args: String,
}

impl Worker {
    async fn open(case: &Case) -> anyhow::Result<Worker> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .http1_only()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(30))
            .build()?;
        let args = serde_json::json!({ "text": ECHO_TEXT }).to_string();
        let mut w = Worker {
            client,
            url: case.url.clone(),
            session: None,
            next_id: 1,
            args,
        };
        if case.mcp {
            let body = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"steward-bench","version":"1"}}}"#;
            let resp = w.post(body.as_bytes().to_vec()).await?;
            let status = resp.status();
            let sid = resp
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let text = resp.text().await?;
            if !status.is_success() || !text.contains("\"result\"") {
                bail!("initialize at {} answered {status}: {text}", w.url);
            }
            w.session = Some(sid.with_context(|| format!("initialize at {} gave no session id", w.url))?);
            let resp = w
                .post(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_vec())
                .await?;
            if !resp.status().is_success() {
                bail!("notifications/initialized at {} answered {}", w.url, resp.status());
            }
        }
        Ok(w)
    }

    async fn post(&self, body: Vec<u8>) -> reqwest::Result<reqwest::Response> {
        let mut req = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .body(body);
        if let Some(s) = &self.session {
            req = req.header(SESSION_HEADER, s).header("mcp-protocol-version", PROTOCOL);
        }
        req.send().await
    }

    /// One call; Ok(false) when it was answered but not with a successful result.
    async fn call(&mut self, mcp: bool) -> anyhow::Result<bool> {
        if !mcp {
            let resp = self.post(b"{}".to_vec()).await?;
            let ok = resp.status().is_success();
            let _ = resp.bytes().await?;
            return Ok(ok);
        }
        let id = self.next_id;
        self.next_id += 1;
        let body = format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{}}}}}"#,
            self.args
        );
        let resp = self.post(body.into_bytes()).await?;
        let ok = resp.status().is_success();
        let bytes = resp.bytes().await?;
        const SUCCESS: &[u8] = b"\"isError\":false";
        Ok(ok && bytes.windows(SUCCESS.len()).any(|w| w == SUCCESS))
    }

    async fn close(&self) {
        if self.session.is_some() {
            let mut req = self.client.delete(&self.url);
            if let Some(s) = &self.session {
                req = req.header(SESSION_HEADER, s);
            }
            let _ = req.send().await;
        }
    }
}

/// Runs one case to completion.
pub async fn run(case: &Case) -> anyhow::Result<CaseResult> {
    let barrier = Arc::new(Barrier::new(case.concurrency + 1));
    let issued = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(case.concurrency);
    for _ in 0..case.concurrency {
        let (case, barrier, issued) = (case.clone(), barrier.clone(), issued.clone());
        tasks.push(tokio::spawn(async move {
            // Every worker reaches the barrier, failed or not, or the others would wait forever.
            let opened = async {
                let mut w = Worker::open(&case).await?;
                for _ in 0..case.warmup_per_worker {
                    w.call(case.mcp).await?;
                }
                anyhow::Ok(w)
            }
            .await;
            barrier.wait().await;
            let mut w = opened?;
            let deadline = Instant::now() + case.max_duration;
            let mut latencies = Vec::with_capacity(case.max_requests / case.concurrency + 1);
            let mut errors = 0usize;
            while issued.fetch_add(1, Ordering::Relaxed) < case.max_requests && Instant::now() < deadline {
                let start = Instant::now();
                match w.call(case.mcp).await {
                    Ok(true) => latencies.push(nanos(start.elapsed())),
                    Ok(false) | Err(_) => errors += 1,
                }
            }
            let done = Instant::now();
            w.close().await;
            anyhow::Ok((latencies, errors, done))
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let server_cpu: f64 = case.server_pids.iter().map(|&p| cpu_seconds_tree(p)).sum();
    let own_cpu = crate::procs::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let switches: u64 = case.server_pids.iter().map(|&p| context_switches(p)).sum();
    let mut all = Vec::with_capacity(case.max_requests);
    let mut errors = 0;
    let mut end = start;
    let mut first_error = None;
    for t in tasks {
        match t.await.context("a load worker panicked")? {
            Ok((lat, err, done)) => {
                all.extend(lat);
                errors += err;
                end = end.max(done);
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.context(format!("case {} at concurrency {}", case.label, case.concurrency)));
    }
    let seconds = (end - start).as_secs_f64();
    let server_cpu = case.server_pids.iter().map(|&p| cpu_seconds_tree(p)).sum::<f64>() - server_cpu;
    let own_cpu = crate::procs::cpu_seconds(std::process::id()).unwrap_or(0.0) - own_cpu;
    let switches = case
        .server_pids
        .iter()
        .map(|&p| context_switches(p))
        .sum::<u64>()
        .saturating_sub(switches);
    let requests = all.len();
    let per_req = |cpu: f64| {
        if requests + errors > 0 {
            cpu * 1e6 / (requests + errors) as f64
        } else {
            0.0
        }
    };
    Ok(CaseResult {
        label: case.label.clone(),
        concurrency: case.concurrency,
        requests,
        errors,
        seconds,
        requests_per_s: requests as f64 / seconds.max(1e-9),
        latency: Latency::of(&mut all),
        server_cpu_us_per_req: per_req(server_cpu),
        server_context_switches_per_req: if requests + errors > 0 {
            switches as f64 / (requests + errors) as f64
        } else {
            0.0
        },
        loadgen_cpu_us_per_req: per_req(own_cpu),
    })
}
