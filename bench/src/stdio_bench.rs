//! stdio: sequential `tools/call` round trips, client → fixture directly and client →
//! `steward proxy` → the same fixture, interleaved in blocks so machine noise hits both alike.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::Serialize;

use crate::Env;
use crate::procs::{Proc, context_switches, cpu_seconds, log_file};
use crate::stats::{Latency, nanos};

/// The argument every benchmarked call carries: a realistic few hundred bytes of text.
pub const ECHO_TEXT: &str = "Summarise the deployment log for web-01 between 10:00 and 10:15 UTC: \
    list every service restart, every failed health check and the git revision that was live, \
    then compare the p95 latency of /api/orders before and after the restart window and say \
    whether the rollback at 10:09 was needed.";

#[derive(Debug, Serialize)]
pub struct StdioResult {
    pub calls: usize,
    pub warmup: usize,
    pub arg_bytes: usize,
    pub direct: Latency,
    pub proxy: Latency,
    /// proxy minus direct, per percentile.
    pub added_p50_us: f64,
    pub added_p99_us: f64,
    pub added_mean_us: f64,
    /// CPU the proxy process used per call (user + system).
    pub proxy_cpu_us_per_call: f64,
    /// Context switches over the proxy's threads per call: thread hand-offs on the path.
    pub proxy_context_switches_per_call: f64,
    /// Decision rows the proxy's audit log holds after the run (every call, warm-up included).
    pub audited_decisions: u64,
    pub audited_outcomes: u64,
    pub audit_chain_ok: bool,
}

struct Client {
    proc: Proc,
    input: BufWriter<ChildStdin>,
    output: BufReader<ChildStdout>,
    line: Vec<u8>,
    next_id: u64,
}

impl Client {
    fn spawn(name: &str, cmd: &mut Command) -> anyhow::Result<Client> {
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut proc = Proc::spawn(name, cmd)?;
        let input = BufWriter::new(proc.child.stdin.take().context("stdin")?);
        let output = BufReader::new(proc.child.stdout.take().context("stdout")?);
        let mut c = Client {
            proc,
            input,
            output,
            line: Vec::with_capacity(4096),
            next_id: 1,
        };
        let init = c.request(
            "initialize",
            r#"{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"steward-bench","version":"1"}}"#,
        )?;
        ensure!(init.contains("\"result\""), "{name}: initialize failed: {init}");
        c.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)?;
        let list = c.request("tools/list", "{}")?;
        ensure!(list.contains("\"echo\""), "{name}: tools/list has no echo tool: {list}");
        Ok(c)
    }

    fn send(&mut self, line: &[u8]) -> anyhow::Result<()> {
        self.input.write_all(line)?;
        self.input.write_all(b"\n")?;
        self.input.flush()?;
        Ok(())
    }

    fn request(&mut self, method: &str, params: &str) -> anyhow::Result<String> {
        let id = self.next_id;
        self.next_id += 1;
        self.send(format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#).as_bytes())?;
        self.read()?;
        Ok(String::from_utf8_lossy(&self.line).into_owned())
    }

    fn read(&mut self) -> anyhow::Result<()> {
        self.line.clear();
        if self.output.read_until(b'\n', &mut self.line)? == 0 {
            bail!("{} closed its output", self.proc.name);
        }
        Ok(())
    }

    /// One timed `tools/call echo` round trip; checks the answer is a successful result.
    fn echo(&mut self, request: &[u8]) -> anyhow::Result<u64> {
        let start = Instant::now();
        self.input.write_all(request)?;
        self.input.flush()?;
        self.read()?;
        let took = nanos(start.elapsed());
        if !contains(&self.line, b"\"isError\":false") {
            bail!(
                "{}: the call failed: {}",
                self.proc.name,
                String::from_utf8_lossy(&self.line)
            );
        }
        Ok(took)
    }

    /// Closes stdin and waits for a clean exit (the proxy flushes its audit log then).
    fn finish(mut self) -> anyhow::Result<()> {
        drop(self.input);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Some(status) = self.proc.child.try_wait()? {
                ensure!(status.success(), "{} exited with {status}", self.proc.name);
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("{} did not exit after its input closed", self.proc.name)
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn echo_request(id: usize) -> Vec<u8> {
    let args = serde_json::json!({ "text": ECHO_TEXT });
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"echo","arguments":{args}}}}}"#)
        .into_bytes()
}

pub fn run(env: &Env, calls: usize, warmup: usize) -> anyhow::Result<StdioResult> {
    let fixture = || {
        let mut cmd = Command::new(&env.bench_exe);
        cmd.args(["fixture", "--stdio"]);
        cmd
    };
    let audit_db = env.dir.join("proxy-audit.db");
    let (log, _) = log_file(&env.dir, "proxy")?;
    let mut direct = Client::spawn("fixture (stdio)", fixture().stderr(Stdio::inherit()))?;
    let mut proxy_cmd = Command::new(&env.steward);
    proxy_cmd
        .arg("proxy")
        .arg("--audit-db")
        .arg(&audit_db)
        .arg("--policy")
        .arg(&env.policy)
        .args(["--server", "bench", "--principal", "alice", "--"])
        .arg(&env.bench_exe)
        .args(["fixture", "--stdio"])
        .stderr(log);
    let mut proxy = Client::spawn("steward proxy", &mut proxy_cmd)?;

    // Requests are built up front: the client's own work stays out of the timings.
    let requests: Vec<Vec<u8>> = (0..warmup + calls)
        .map(|i| {
            let mut r = echo_request(1000 + i);
            r.push(b'\n');
            r
        })
        .collect();
    for r in &requests[..warmup] {
        direct.echo(r)?;
        proxy.echo(r)?;
    }
    let (mut d, mut p) = (Vec::with_capacity(calls), Vec::with_capacity(calls));
    let mut proxy_cpu = 0.0;
    let mut proxy_switches = 0;
    // Alternate blocks of 250 calls: a noisy neighbour hits both sides alike.
    for block in requests[warmup..].chunks(250) {
        for r in block {
            d.push(direct.echo(r)?);
        }
        let before = cpu_seconds(proxy.proc.pid()).unwrap_or(0.0);
        let switches = context_switches(proxy.proc.pid());
        for r in block {
            p.push(proxy.echo(r)?);
        }
        proxy_cpu += cpu_seconds(proxy.proc.pid()).unwrap_or(0.0) - before;
        proxy_switches += context_switches(proxy.proc.pid()) - switches;
    }
    direct.finish()?;
    proxy.finish()?;

    let reader = steward_store::AuditReader::open(&audit_db)?;
    let count = |kind: &str| -> anyhow::Result<u64> {
        let rows = reader.query(&steward_store::QueryFilter {
            kind: Some(kind.into()),
            ..Default::default()
        })?;
        Ok(rows
            .iter()
            .filter(|r| r.method.as_deref() == Some("tools/call"))
            .count() as u64)
    };
    let (decisions, outcomes) = (count("decision")?, count("outcome")?);
    let chain_ok = reader.verify()?.ok();

    let direct = Latency::of(&mut d);
    let proxy = Latency::of(&mut p);
    Ok(StdioResult {
        calls,
        warmup,
        arg_bytes: serde_json::json!({ "text": ECHO_TEXT }).to_string().len(),
        added_p50_us: proxy.p50_us - direct.p50_us,
        added_p99_us: proxy.p99_us - direct.p99_us,
        added_mean_us: proxy.mean_us - direct.mean_us,
        direct,
        proxy,
        proxy_cpu_us_per_call: proxy_cpu * 1e6 / calls as f64,
        proxy_context_switches_per_call: proxy_switches as f64 / calls as f64,
        audited_decisions: decisions,
        audited_outcomes: outcomes,
        audit_chain_ok: chain_ok,
    })
}
