//! Prometheus metrics, kept in plain atomics and maps: a handful of series, no exporter crate.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the upstream latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String), u64>>,
    decisions: Mutex<BTreeMap<(String, String), u64>>,
    upstream_latency: Mutex<BTreeMap<String, Histogram>>,
    rate_limited: AtomicU64,
    active_sessions: AtomicI64,
    approvals: Mutex<BTreeMap<String, u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *map.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default() += 1;
}

impl Metrics {
    pub fn request(&self, server: &str, method: &str) {
        bump(&self.requests, (server.to_string(), method.to_string()));
    }

    pub fn decision(&self, effect: &str, risk: &str) {
        bump(&self.decisions, (effect.to_string(), risk.to_string()));
    }

    pub fn approval(&self, state: &str) {
        bump(&self.approvals, state.to_string());
    }

    pub fn rate_limited(&self) {
        self.rate_limited.fetch_add(1, Ordering::Relaxed);
    }

    pub fn upstream_latency(&self, server: &str, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut map = self.upstream_latency.lock().unwrap_or_else(|e| e.into_inner());
        let h = map.entry(server.to_string()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn session_opened(&self) {
        self.active_sessions.fetch_add(1, Ordering::Relaxed);
    }

    pub fn session_closed(&self) {
        self.active_sessions.fetch_sub(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self, audit_queue: usize) -> String {
        let mut out = String::new();
        let lock = |m: &Mutex<BTreeMap<(String, String), u64>>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
        out.push_str("# HELP steward_requests_total MCP messages received, by server and method.\n# TYPE steward_requests_total counter\n");
        for ((server, method), n) in lock(&self.requests) {
            let _ = writeln!(
                out,
                "steward_requests_total{{server=\"{}\",method=\"{}\"}} {n}",
                esc(&server),
                esc(&method)
            );
        }
        out.push_str("# HELP steward_decisions_total Policy decisions, by effect and risk.\n# TYPE steward_decisions_total counter\n");
        for ((effect, risk), n) in lock(&self.decisions) {
            let _ = writeln!(
                out,
                "steward_decisions_total{{effect=\"{}\",risk=\"{}\"}} {n}",
                esc(&effect),
                esc(&risk)
            );
        }
        out.push_str("# HELP steward_upstream_latency_seconds Time from forwarding a request to its response.\n# TYPE steward_upstream_latency_seconds histogram\n");
        for (server, h) in self.upstream_latency.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let s = esc(server);
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "steward_upstream_latency_seconds_bucket{{server=\"{s}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "steward_upstream_latency_seconds_bucket{{server=\"{s}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "steward_upstream_latency_seconds_sum{{server=\"{s}\"}} {}", h.sum);
            let _ = writeln!(
                out,
                "steward_upstream_latency_seconds_count{{server=\"{s}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP steward_active_sessions Open MCP sessions.\n# TYPE steward_active_sessions gauge\n");
        let _ = writeln!(
            out,
            "steward_active_sessions {}",
            self.active_sessions.load(Ordering::Relaxed)
        );
        out.push_str("# HELP steward_audit_queue_depth Audit events waiting to be committed.\n# TYPE steward_audit_queue_depth gauge\n");
        let _ = writeln!(out, "steward_audit_queue_depth {audit_queue}");
        out.push_str("# HELP steward_rate_limited_total Calls refused by a rate or concurrency limit.\n# TYPE steward_rate_limited_total counter\n");
        let _ = writeln!(
            out,
            "steward_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        out.push_str(
            "# HELP steward_approvals_total Approval transitions, by state.\n# TYPE steward_approvals_total counter\n",
        );
        for (state, n) in self.approvals.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            let _ = writeln!(out, "steward_approvals_total{{state=\"{}\"}} {n}", esc(state));
        }
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
