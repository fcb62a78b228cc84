//! The run's results: the JSON document, the Markdown table, and the goals checked against them.

use std::fmt::Write;

use serde::Serialize;

use crate::audit_bench::AuditResult;
use crate::criterion_import::CriterionEntry;
use crate::http_bench::{self, HttpResult, MemoryResult};
use crate::loadgen::CaseResult;
use crate::stdio_bench::StdioResult;

/// The criterion bench the policy goal is read from (crates/steward-policy/benches/decide.rs).
pub const POLICY_BENCH: &str = "decide/100 rules, 1 KB command";

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub machine: Machine,
    pub commands: Vec<String>,
    pub stdio: Option<StdioResult>,
    pub http: Option<HttpResult>,
    pub audit: Option<AuditResult>,
    pub memory: Option<MemoryResult>,
    pub criterion: Vec<CriterionEntry>,
    pub goals: Vec<Goal>,
}

#[derive(Debug, Default, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub load_average_at_start: String,
    pub steward: String,
    pub started_at_unix: u64,
}

impl Machine {
    pub fn probe(steward: &std::path::Path) -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model: read("/proc/cpuinfo")
                .lines()
                .find_map(|l| {
                    l.strip_prefix("model name")
                        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
                })
                .unwrap_or_default(),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            load_average_at_start: read("/proc/loadavg")
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
            steward: steward.display().to_string(),
            started_at_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Goal {
    pub goal: String,
    pub target: String,
    pub measured: String,
    pub met: bool,
}

fn find<'a>(cases: &'a [CaseResult], label: &str, c: usize) -> Option<&'a CaseResult> {
    cases.iter().find(|r| r.label == label && r.concurrency == c)
}

impl Report {
    /// Checks every goal the run has numbers for.
    pub fn check_goals(&mut self) {
        let mut goals = Vec::new();
        let mut goal = |goal: &str, target: &str, measured: String, met: bool| {
            goals.push(Goal {
                goal: goal.into(),
                target: target.into(),
                measured,
                met,
            });
        };
        if let Some(s) = &self.stdio {
            let all = (s.calls + s.warmup) as u64;
            goal(
                "stdio proxy: added p50 per round trip, every call audited",
                "< 100 µs",
                format!(
                    "{:.1} µs ({} of {} calls audited, chain {})",
                    s.added_p50_us,
                    s.audited_decisions,
                    all,
                    if s.audit_chain_ok { "ok" } else { "BROKEN" }
                ),
                s.added_p50_us < 100.0 && s.audited_decisions == all && s.audit_chain_ok,
            );
        }
        if let Some(p) = self.criterion.iter().find(|e| e.id == POLICY_BENCH) {
            goal(
                "policy decision median (100 rules, all detectors, 1 KB argument)",
                "< 5 µs",
                format!("{:.2} µs", p.median_ns / 1000.0),
                p.median_ns < 5000.0,
            );
        }
        if let Some(a) = &self.audit {
            goal(
                "audit append, hash-chained, into SQLite",
                "≥ 100,000 events/s",
                format!("{:.0} events/s", a.events_per_s),
                a.events_per_s >= 100_000.0,
            );
            goal(
                "audit verify faster than append",
                "> append rate",
                format!(
                    "{:.0} rows/s in-process, {:.0} rows/s `steward audit verify`",
                    a.verify_rows_per_s, a.cli_verify_rows_per_s
                ),
                a.verify_rows_per_s > a.events_per_s && a.cli_verify_rows_per_s > a.events_per_s,
            );
        }
        if let Some(h) = &self.http {
            if let (Some(d), Some(g)) = (
                find(&h.cases, http_bench::DIRECT, 16),
                find(&h.cases, http_bench::GW_HTTP, 16),
            ) {
                let ratio = g.requests_per_s / d.requests_per_s.max(1e-9);
                goal(
                    "HTTP gateway throughput at concurrency 16 (HTTP upstream)",
                    "≥ 70% of direct",
                    format!(
                        "{:.0}% ({:.0} vs {:.0} req/s)",
                        ratio * 100.0,
                        g.requests_per_s,
                        d.requests_per_s
                    ),
                    ratio >= 0.7,
                );
                let added = g.latency.p99_us - d.latency.p99_us;
                goal(
                    "HTTP gateway p99 added latency at concurrency 16",
                    "< 2 ms",
                    format!("{:.2} ms", added / 1000.0),
                    added < 2000.0,
                );
            }
            // At each concurrency the trivial server must go faster than every gateway case:
            // then the load generator, not the gateway, is never what limits a gateway case.
            let mut slowest_margin: Option<(usize, f64, f64)> = None;
            for r in h.cases.iter().filter(|r| r.label == http_bench::TRIVIAL) {
                let gateway = h
                    .cases
                    .iter()
                    .filter(|g| g.label.starts_with("steward") && g.concurrency == r.concurrency)
                    .map(|g| g.requests_per_s)
                    .fold(0.0, f64::max);
                let margin = r.requests_per_s / gateway.max(1e-9);
                if slowest_margin.is_none_or(|(_, t, g)| margin < t / g.max(1e-9)) {
                    slowest_margin = Some((r.concurrency, r.requests_per_s, gateway));
                }
            }
            if let Some((c, trivial, gateway)) = slowest_margin {
                goal(
                    "load generator is not the bottleneck",
                    "trivial server faster than every gateway case, at each concurrency",
                    format!(
                        "closest at concurrency {c}: trivial {trivial:.0} req/s, fastest gateway case {gateway:.0} req/s"
                    ),
                    trivial > gateway,
                );
            }
            let sent = h.gateway_calls_sent;
            goal(
                "every gateway call audited",
                "decision rows = calls",
                format!(
                    "{} of {sent}, chain {}",
                    h.gateway_audited_decisions,
                    if h.gateway_audit_chain_ok { "ok" } else { "BROKEN" }
                ),
                h.gateway_audited_decisions == sent && h.gateway_audit_chain_ok,
            );
        }
        if let Some(m) = &self.memory {
            let mb = m.idle_rss_kib as f64 * 1024.0 / 1e6;
            goal("gateway idle RSS", "< 30 MB", format!("{mb:.1} MB"), mb < 30.0);
            goal(
                "RSS per idle session (1,000 legacy sessions, demo upstream)",
                "< 20 KB",
                format!("{:.1} KB", m.per_session_bytes / 1000.0),
                m.per_session_bytes < 20_000.0,
            );
        }
        self.goals = goals;
    }

    /// The Markdown tables printed at the end and pasted into docs/performance.md.
    pub fn markdown(&self) -> String {
        let mut o = String::new();
        let m = &self.machine;
        let _ = writeln!(
            o,
            "Machine: {} CPUs ({}), Linux {}, load average at start {}.\n",
            m.cpus, m.cpu_model, m.kernel, m.load_average_at_start
        );
        if let Some(s) = &self.stdio {
            let _ = writeln!(
                o,
                "**stdio** — sequential `tools/call` round trips ({} timed after {} warm-up, {}-byte arguments; every proxied call decided and audited before it is forwarded):\n",
                s.calls, s.warmup, s.arg_bytes
            );
            let _ = writeln!(o, "| path | p50 | p90 | p99 | mean |\n|---|---:|---:|---:|---:|");
            for (name, l) in [
                ("client → fixture", &s.direct),
                ("client → `steward proxy` → fixture", &s.proxy),
            ] {
                let _ = writeln!(
                    o,
                    "| {name} | {:.1} µs | {:.1} µs | {:.1} µs | {:.1} µs |",
                    l.p50_us, l.p90_us, l.p99_us, l.mean_us
                );
            }
            let _ = writeln!(
                o,
                "| **added by the proxy** | **{:.1} µs** | {:.1} µs | **{:.1} µs** | {:.1} µs |",
                s.added_p50_us,
                s.proxy.p90_us - s.direct.p90_us,
                s.added_p99_us,
                s.added_mean_us
            );
            let _ = writeln!(
                o,
                "\nProxy CPU per call: {:.1} µs; context switches per call across the proxy's threads: {:.1}. Audit log after the run: {} `tools/call` decisions and {} outcomes for {} calls; chain {}.\n",
                s.proxy_cpu_us_per_call,
                s.proxy_context_switches_per_call,
                s.audited_decisions,
                s.audited_outcomes,
                s.calls + s.warmup,
                if s.audit_chain_ok { "verified" } else { "BROKEN" }
            );
        }
        if let Some(h) = &self.http {
            let _ = writeln!(
                o,
                "**HTTP** — `tools/call` over keep-alive connections, one legacy session per worker; each case stops at {} requests or {:.0} s:\n",
                h.max_requests_per_case, h.max_seconds_per_case
            );
            let _ = writeln!(
                o,
                "| case | conc. | req/s | vs direct | p50 | p99 | added p99 | server CPU/req | ctx sw/req | load-gen CPU/req | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            for r in &h.cases {
                let direct = find(&h.cases, http_bench::DIRECT, r.concurrency);
                let (vs, added) = match direct {
                    Some(d) if r.label.starts_with("steward") => (
                        format!("{:.0}%", r.requests_per_s / d.requests_per_s.max(1e-9) * 100.0),
                        format!("{:+.2} ms", (r.latency.p99_us - d.latency.p99_us) / 1000.0),
                    ),
                    _ => ("".into(), "".into()),
                };
                let _ = writeln!(
                    o,
                    "| {} | {} | {:.0} | {vs} | {:.0} µs | {:.0} µs | {added} | {:.0} µs | {:.1} | {:.0} µs | {} |",
                    r.label,
                    r.concurrency,
                    r.requests_per_s,
                    r.latency.p50_us,
                    r.latency.p99_us,
                    r.server_cpu_us_per_req,
                    r.server_context_switches_per_req,
                    r.loadgen_cpu_us_per_req,
                    r.errors
                );
            }
            let _ = writeln!(
                o,
                "\nServer CPU/req counts the gateway, its stdio children and (for the HTTP upstream) the fixture; ctx sw/req counts context switches over the server-side threads; load-gen CPU/req is this harness's own. Gateway audit log after the run: {} `tools/call` decisions for {} calls sent; chain {}.\n",
                h.gateway_audited_decisions,
                h.gateway_calls_sent,
                if h.gateway_audit_chain_ok { "verified" } else { "BROKEN" }
            );
        }
        if let Some(a) = &self.audit {
            let _ = writeln!(
                o,
                "**Audit** — `AuditLog::append` (waits for the commit), SQLite WAL, hash chain:\n"
            );
            let _ = writeln!(o, "| measure | result |\n|---|---:|");
            let _ = writeln!(
                o,
                "| sustained append, {} tasks, {} events | **{:.0} events/s** |",
                a.tasks, a.events, a.events_per_s
            );
            let _ = writeln!(
                o,
                "| one sequential caller, append latency p50 / p99 | {:.1} µs / {:.1} µs |",
                a.sequential_append.p50_us, a.sequential_append.p99_us
            );
            let _ = writeln!(
                o,
                "| verify, in-process (`AuditReader::verify`), {} rows | **{:.0} rows/s** |",
                a.verify_rows, a.verify_rows_per_s
            );
            let _ = writeln!(
                o,
                "| `steward audit verify --db` (process start included) | {:.0} rows/s ({:.2} s) |",
                a.cli_verify_rows_per_s, a.cli_verify_seconds
            );
            let _ = writeln!(
                o,
                "| database size | {:.0} bytes/event |\n",
                a.db_bytes as f64 / a.verify_rows.max(1) as f64
            );
        }
        if let Some(mem) = &self.memory {
            let _ = writeln!(o, "**Memory** — `steward serve`, VmRSS:\n");
            let _ = writeln!(o, "| measure | result |\n|---|---:|");
            let _ = writeln!(
                o,
                "| idle (started, healthz answered) | **{:.1} MB** |",
                mem.idle_rss_kib as f64 * 1024.0 / 1e6
            );
            let _ = writeln!(
                o,
                "| with {} open legacy sessions (built-in demo upstream) | {:.1} MB |",
                mem.sessions,
                mem.rss_with_sessions_kib as f64 * 1024.0 / 1e6
            );
            let _ = writeln!(
                o,
                "| per idle session | **{:.1} KB** |\n",
                mem.per_session_bytes / 1000.0
            );
        }
        if !self.criterion.is_empty() {
            let _ = writeln!(
                o,
                "**Criterion** (from `target/criterion`, written by the `cargo bench` steps of `bench/run.sh`):\n"
            );
            let _ = writeln!(o, "| bench | median | per element |\n|---|---:|---:|");
            for c in &self.criterion {
                let per = c
                    .elements
                    .map(|n| format!("{:.0} /s", n as f64 / (c.median_ns / 1e9)))
                    .unwrap_or_default();
                let _ = writeln!(o, "| {} | {} | {per} |", c.id, human_ns(c.median_ns));
            }
            let _ = writeln!(o);
        }
        if !self.goals.is_empty() {
            let _ = writeln!(o, "**Goals**:\n\n| goal | target | measured | met |\n|---|---|---|---|");
            for g in &self.goals {
                let _ = writeln!(
                    o,
                    "| {} | {} | {} | {} |",
                    g.goal,
                    g.target,
                    g.measured,
                    if g.met { "yes" } else { "**no**" }
                );
            }
        }
        o
    }
}

fn human_ns(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.2} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
