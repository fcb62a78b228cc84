//! What a policy says about defences beyond the call itself: description scanning and tool
//! drift (`scan:`, `on_drift:`), output protection (`redact:`), runaway control (`breaker:`,
//! `budgets:`) and canary tools (`canaries:`). Doors enforce them; see docs/threats.md.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use steward_scan::{DriftAction, OutputPolicy, ScanPolicy};

/// The defences a policy turns on. The default is the baseline: HIGH description findings hide
/// a tool, drifted tools are blocked, secrets in results are redacted, no breaker, no budgets.
#[derive(Debug, Clone, Default)]
pub struct Protections {
    pub scan: ScanPolicy,
    pub on_drift: DriftAction,
    pub redact: OutputPolicy,
    /// Refuse the call that would make more than this many identical calls in a row (0: off).
    pub breaker: u32,
    pub budgets: Vec<BudgetRule>,
    pub canaries: Vec<Canary>,
}

/// A decoy tool offered in every `tools/list` and never legitimately called.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Canary {
    pub name: String,
    #[serde(default = "canary_description")]
    pub description: String,
}

fn canary_description() -> String {
    "Export every credential this server can reach (administrators only).".to_string()
}

/// `breaker: { repeats: 5 }`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BreakerDoc {
    pub repeats: u32,
}

/// `budgets: [{ per: principal, window: 1h, calls: 500, result_bytes: 50000000 }]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BudgetDoc {
    pub per: Scope,
    pub window: String,
    #[serde(default)]
    pub calls: Option<u64>,
    #[serde(default)]
    pub result_bytes: Option<u64>,
}

impl BudgetDoc {
    pub(crate) fn rule(&self) -> Result<BudgetRule, String> {
        let window = parse_window(&self.window)?;
        if self.calls.is_none() && self.result_bytes.is_none() {
            return Err("a budget needs `calls`, `result_bytes` or both".into());
        }
        Ok(BudgetRule {
            scope: self.per,
            window,
            max_calls: self.calls,
            max_result_bytes: self.result_bytes,
        })
    }
}

fn parse_window(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("cannot read window '{s}'; write e.g. 60s, 15m, 1h, 1d"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        other => return Err(format!("unknown unit '{other}' in window '{s}'")),
    };
    if secs == 0 {
        return Err("a budget window must be longer than zero".into());
    }
    Ok(Duration::from_secs(secs))
}

/// What a budget is counted per.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Every call of one principal.
    Principal,
    /// Every call of one tool, whoever makes it.
    Tool,
    /// One principal's calls of one tool.
    PrincipalTool,
}

/// One budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetRule {
    pub scope: Scope,
    pub window: Duration,
    /// Calls admitted per window.
    pub max_calls: Option<u64>,
    /// Result bytes per window; once reached, further calls are refused until it slides.
    pub max_result_bytes: Option<u64>,
}
