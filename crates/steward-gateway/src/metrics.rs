//! Prometheus metrics through the `prometheus-client` crate. Every label is bounded: methods are
//! the ones Steward names (else `other`), servers the configured ones, effects and risks fixed
//! sets. Nothing a client sends becomes a label as it is.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    server: String,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabels {
    door: &'static str,
    method: &'static str,
    effect: &'static str,
    risk: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServerLabels {
    server: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

/// Upper bounds (seconds) of the upstream latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// The gateway's metrics. Cheap to update from any thread.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    decisions: Family<DecisionLabels, Counter>,
    upstream_latency: Family<ServerLabels, Histogram>,
    rate_limited: Counter,
    active_sessions: Gauge,
    approvals: Family<StateLabels, Counter>,
    audit_queue: Gauge<i64, std::sync::atomic::AtomicI64>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("steward");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "MCP messages received, by server and method",
            requests.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Decisions on governed requests, by door, method, enforced effect and risk",
            decisions.clone(),
        );
        let upstream_latency =
            Family::<ServerLabels, Histogram>::new_with_constructor(|| Histogram::new(BUCKETS.iter().copied()));
        registry.register(
            "upstream_latency_seconds",
            "Time from forwarding a request to its answer",
            upstream_latency.clone(),
        );
        let rate_limited = Counter::<u64, AtomicU64>::default();
        registry.register(
            "rate_limited",
            "Calls refused by a rate or concurrency limit",
            rate_limited.clone(),
        );
        let active_sessions = Gauge::default();
        registry.register("active_sessions", "Open MCP sessions", active_sessions.clone());
        let approvals = Family::<StateLabels, Counter>::default();
        registry.register(
            "approvals",
            "Approval transitions, by state (pending, approved, denied, expired, timed_out)",
            approvals.clone(),
        );
        let audit_queue = Gauge::<i64, std::sync::atomic::AtomicI64>::default();
        registry.register(
            "audit_queue_depth",
            "Audit events waiting to be committed",
            audit_queue.clone(),
        );
        registry.register(
            "build",
            "Steward's version",
            Info::new(vec![("version".to_string(), env!("CARGO_PKG_VERSION").to_string())]),
        );
        Metrics {
            registry,
            requests,
            decisions,
            upstream_latency,
            rate_limited,
            active_sessions,
            approvals,
            audit_queue,
        }
    }
}

/// Risks are a fixed set; anything else (a refusal before the policy) is `-`.
fn risk_label(risk: &str) -> String {
    match risk {
        "LOW" | "MEDIUM" | "HIGH" | "CRITICAL" => risk.to_string(),
        _ => "-".to_string(),
    }
}

impl Metrics {
    /// A message received. `server` must be a configured server (or `*` for federation).
    pub fn request(&self, server: &str, method: steward_mcp::Method) {
        self.requests
            .get_or_create(&RequestLabels {
                server: server.to_string(),
                method: method.as_str(),
            })
            .inc();
    }

    /// A decision, with the effect that is enforced (an allowed call that could not be recorded
    /// counts as a deny).
    pub fn decision(&self, door: &'static str, method: &str, effect: &'static str, risk: &str) {
        self.decisions
            .get_or_create(&DecisionLabels {
                door,
                method: steward_mcp::Method::parse(method).as_str(),
                effect,
                risk: risk_label(risk),
            })
            .inc();
    }

    /// An approval transition.
    pub fn approval(&self, state: &str) {
        let state = match state {
            "pending" | "approved" | "denied" | "expired" | "timed_out" | "executed" | "failed" | "cancelled" => state,
            _ => "other",
        };
        self.approvals
            .get_or_create(&StateLabels {
                state: state.to_string(),
            })
            .inc();
    }

    pub fn rate_limited(&self) {
        self.rate_limited.inc();
    }

    pub fn upstream_latency(&self, server: &str, elapsed: Duration) {
        self.upstream_latency
            .get_or_create(&ServerLabels {
                server: server.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    pub fn session_opened(&self) {
        self.active_sessions.inc();
    }

    pub fn session_closed(&self) {
        self.active_sessions.dec();
    }

    /// The exposition: OpenMetrics text when `openmetrics`, else the Prometheus text format 0.0.4.
    /// Returns the body and its content type.
    pub fn render(&self, audit_queue: usize, openmetrics: bool) -> (String, &'static str) {
        self.audit_queue.set(audit_queue as i64);
        let mut out = String::new();
        if openmetrics {
            let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
            (out, "application/openmetrics-text; version=1.0.0; charset=utf-8")
        } else {
            let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
            (out, "text/plain; version=0.0.4; charset=utf-8")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_stay_bounded() {
        let m = Metrics::default();
        for i in 0..50 {
            m.request("demo", steward_mcp::Method::parse(&format!("random/{i}")));
        }
        m.decision("gateway", "tools/call", "deny", "HIGH");
        m.decision("gateway", "tools/call", "deny", "made-up");
        m.approval("pending");
        let (text, ty) = m.render(3, false);
        assert!(ty.starts_with("text/plain"));
        assert_eq!(text.matches("steward_requests_total{").count(), 1, "{text}");
        assert!(text.contains("method=\"other\""));
        assert!(text.contains(
            "steward_decisions_total{door=\"gateway\",method=\"tools/call\",effect=\"deny\",risk=\"HIGH\"} 1"
        ));
        assert!(text.contains("risk=\"-\""));
        assert!(text.contains("steward_approvals_total{state=\"pending\"} 1"));
        assert!(text.contains("steward_audit_queue_depth 3"));
        assert!(text.contains("steward_build_info"));
        let (open, ty) = m.render(0, true);
        assert!(ty.starts_with("application/openmetrics-text"));
        assert!(open.ends_with("# EOF\n"));
    }
}
