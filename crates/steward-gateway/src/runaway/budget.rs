//! Budgets against runaway use (denial of wallet): calls and result bytes per principal, per
//! tool, or per principal and tool, over sliding windows.
//!
//! Pure bookkeeping: callers pass the current [`Instant`]. Each window is a ring of
//! [`BUCKETS`] buckets, so memory per key is fixed and the window slides in steps of
//! `window / BUCKETS`. A refused call is not counted.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

pub use steward_policy::protections::{BudgetRule, Scope};
use steward_store::{BudgetKey, BudgetRefusal};

/// Buckets per window: the window slides in steps of a sixtieth of its length.
pub const BUCKETS: usize = 60;
/// Above this many tracked keys, expired ones are dropped before a new one is added.
const PRUNE_ABOVE: usize = 100_000;

/// A refused call: which budget, how much was used, and when to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub scope: Scope,
    /// The principal, the tool, or `principal/tool`, as the scope says.
    pub key: String,
    /// `calls` or `result_bytes`.
    pub what: &'static str,
    pub used: u64,
    pub limit: u64,
    pub window: Duration,
    /// When the window will have slid far enough for one more call.
    pub retry_after: Duration,
}

impl Exceeded {
    /// What the agent reads: stop, and why.
    pub fn message(&self) -> String {
        let whose = match self.scope {
            Scope::Principal => format!("principal '{}'", self.key),
            Scope::Tool => format!("tool '{}'", self.key),
            Scope::PrincipalTool => format!("'{}'", self.key),
        };
        let what = if self.what == "calls" {
            "calls"
        } else {
            "bytes of results"
        };
        format!(
            "Stop: the budget of {} {what} per {} for {whose} is used up ({} used). Do not retry now; the budget frees up in {}. If the task needs more, ask the user.",
            self.limit,
            human(self.window),
            self.used,
            human(self.retry_after)
        )
    }
}

impl fmt::Display for Exceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// `90s` → `1m30s`, `2h`, `250ms`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        return format!("{}ms", d.as_millis());
    }
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Absolute bucket number since the origin; stale when older than the window.
    index: u64,
    calls: u64,
    bytes: u64,
}

#[derive(Debug, Clone)]
struct Window {
    buckets: [Bucket; BUCKETS],
}

impl Window {
    fn new() -> Window {
        Window {
            buckets: [Bucket {
                index: u64::MAX,
                calls: 0,
                bytes: 0,
            }; BUCKETS],
        }
    }

    fn live(&self, now_bucket: u64) -> impl Iterator<Item = &Bucket> {
        self.buckets
            .iter()
            .filter(move |b| b.index != u64::MAX && b.index <= now_bucket && now_bucket - b.index < BUCKETS as u64)
    }

    fn totals(&self, now_bucket: u64) -> (u64, u64) {
        self.live(now_bucket)
            .fold((0, 0), |(c, b), x| (c + x.calls, b.saturating_add(x.bytes)))
    }

    fn slot(&mut self, now_bucket: u64) -> &mut Bucket {
        let b = &mut self.buckets[(now_bucket % BUCKETS as u64) as usize];
        if b.index != now_bucket {
            *b = Bucket {
                index: now_bucket,
                calls: 0,
                bytes: 0,
            };
        }
        b
    }

    /// Buckets until usage (by `get`) drops below `limit`, oldest bucket first.
    fn buckets_until_below(&self, now_bucket: u64, limit: u64, get: impl Fn(&Bucket) -> u64) -> u64 {
        let mut live: Vec<&Bucket> = self.live(now_bucket).collect();
        live.sort_by_key(|b| b.index);
        let mut used: u64 = live.iter().map(|b| get(b)).fold(0, u64::saturating_add);
        for b in live {
            used = used.saturating_sub(get(b));
            if used < limit {
                // This bucket leaves the window once `now_bucket` reaches index + BUCKETS.
                return b.index + BUCKETS as u64 - now_bucket;
            }
        }
        1
    }

    fn is_empty(&self, now_bucket: u64) -> bool {
        self.live(now_bucket).all(|b| b.calls == 0 && b.bytes == 0)
    }
}

/// The budgets in force and their counters.
#[derive(Debug)]
pub struct Budgets {
    rules: Vec<BudgetRule>,
    /// (rule index, key) → window.
    windows: HashMap<(usize, String), Window>,
    origin: Option<Instant>,
}

impl Budgets {
    /// Rules with neither limit, or a zero window, are ignored.
    pub fn new(rules: Vec<BudgetRule>) -> Budgets {
        let rules = rules.into_iter().filter(counts).collect();
        Budgets {
            rules,
            windows: HashMap::new(),
            origin: None,
        }
    }

    pub fn rules(&self) -> &[BudgetRule] {
        &self.rules
    }

    /// Admits and counts one call of `tool` by `principal`, or refuses it (uncounted) naming
    /// the first budget it would exceed.
    pub fn check_call(&mut self, principal: &str, tool: &str, now: Instant) -> Result<(), Exceeded> {
        let origin = *self.origin.get_or_insert(now);
        for (i, rule) in self.rules.iter().enumerate() {
            let key = key(rule.scope, principal, tool);
            let nb = bucket_of(origin, now, rule.window);
            let Some(w) = self.windows.get(&(i, key.clone())) else {
                continue;
            };
            let (calls, bytes) = w.totals(nb);
            let step = rule.window / BUCKETS as u32;
            if let Some(max) = rule.max_calls
                && calls >= max
            {
                let n = w.buckets_until_below(nb, max, |b| b.calls);
                return Err(Exceeded {
                    scope: rule.scope,
                    key,
                    what: "calls",
                    used: calls,
                    limit: max,
                    window: rule.window,
                    retry_after: step * n as u32,
                });
            }
            if let Some(max) = rule.max_result_bytes
                && bytes >= max
            {
                let n = w.buckets_until_below(nb, max, |b| b.bytes);
                return Err(Exceeded {
                    scope: rule.scope,
                    key,
                    what: "result_bytes",
                    used: bytes,
                    limit: max,
                    window: rule.window,
                    retry_after: step * n as u32,
                });
            }
        }
        self.maybe_prune(now);
        for i in 0..self.rules.len() {
            let rule = &self.rules[i];
            let nb = bucket_of(origin, now, rule.window);
            let k = key(rule.scope, principal, tool);
            self.windows.entry((i, k)).or_insert_with(Window::new).slot(nb).calls += 1;
        }
        Ok(())
    }

    /// Counts `bytes` of result for a call already admitted.
    pub fn record_result(&mut self, principal: &str, tool: &str, bytes: u64, now: Instant) {
        let origin = *self.origin.get_or_insert(now);
        for i in 0..self.rules.len() {
            let rule = &self.rules[i];
            if rule.max_result_bytes.is_none() {
                continue;
            }
            let nb = bucket_of(origin, now, rule.window);
            let k = key(rule.scope, principal, tool);
            let slot = self.windows.entry((i, k)).or_insert_with(Window::new).slot(nb);
            slot.bytes = slot.bytes.saturating_add(bytes);
        }
    }

    /// Drops counters whose windows have passed.
    pub fn prune(&mut self, now: Instant) {
        let Some(origin) = self.origin else { return };
        let rules = &self.rules;
        self.windows
            .retain(|(i, _), w| !w.is_empty(bucket_of(origin, now, rules[*i].window)));
    }

    /// How many counters are kept (for metrics and tests).
    pub fn tracked(&self) -> usize {
        self.windows.len()
    }

    fn maybe_prune(&mut self, now: Instant) {
        if self.windows.len() > PRUNE_ABOVE {
            self.prune(now);
        }
    }
}

/// Whether a rule limits anything (rules with neither limit, or a zero window, are ignored).
fn counts(r: &BudgetRule) -> bool {
    !r.window.is_zero() && (r.max_calls.is_some() || r.max_result_bytes.is_some())
}

/// The keys a call of `tool` by `principal` counts against in the store every gateway shares.
/// A rule is named by its text (scope, window, limits), the same on every gateway with the
/// same policy; a changed rule starts counting afresh.
pub fn shared_keys(rules: &[BudgetRule], principal: &str, tool: &str) -> Vec<BudgetKey> {
    let limit = |v: Option<u64>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
    rules
        .iter()
        .filter(|r| counts(r))
        .map(|r| BudgetKey {
            rule: format!(
                "{}:{}:{}:{}",
                scope_name(r.scope),
                r.window.as_millis(),
                limit(r.max_calls),
                limit(r.max_result_bytes)
            ),
            key: key(r.scope, principal, tool),
            window: r.window,
            max_calls: r.max_calls,
            max_bytes: r.max_result_bytes,
        })
        .collect()
}

/// A refusal of the shared store, told as the in-memory budgets tell theirs.
pub fn shared_exceeded(rules: &[BudgetRule], keys: &[BudgetKey], refusal: &BudgetRefusal) -> Option<Exceeded> {
    let key = keys.get(refusal.index)?;
    let rule = rules.iter().filter(|r| counts(r)).nth(refusal.index)?;
    Some(Exceeded {
        scope: rule.scope,
        key: key.key.clone(),
        what: refusal.what,
        used: refusal.used,
        limit: refusal.limit,
        window: rule.window,
        retry_after: refusal.retry_after,
    })
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Principal => "principal",
        Scope::Tool => "tool",
        Scope::PrincipalTool => "principal_tool",
    }
}

fn key(scope: Scope, principal: &str, tool: &str) -> String {
    match scope {
        Scope::Principal => principal.to_string(),
        Scope::Tool => tool.to_string(),
        Scope::PrincipalTool => format!("{principal}/{tool}"),
    }
}

/// The absolute bucket `now` falls in; an `Instant` before the origin counts as the origin.
fn bucket_of(origin: Instant, now: Instant, window: Duration) -> u64 {
    let step = (window.as_nanos() / BUCKETS as u128).max(1);
    (now.saturating_duration_since(origin).as_nanos() / step) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(scope: Scope, secs: u64, calls: Option<u64>, bytes: Option<u64>) -> BudgetRule {
        BudgetRule {
            scope,
            window: Duration::from_secs(secs),
            max_calls: calls,
            max_result_bytes: bytes,
        }
    }

    #[test]
    fn calls_per_principal_slide() {
        let t0 = Instant::now();
        let mut b = Budgets::new(vec![rule(Scope::Principal, 60, Some(3), None)]);
        for i in 0..3 {
            b.check_call("alice", "srv/echo", t0 + Duration::from_secs(i)).unwrap();
        }
        let e = b
            .check_call("alice", "srv/other", t0 + Duration::from_secs(10))
            .unwrap_err();
        assert_eq!((e.what, e.used, e.limit, e.scope), ("calls", 3, 3, Scope::Principal));
        // The first call leaves the window at 60s (bucket of 1s): 50s from now.
        assert_eq!(e.retry_after, Duration::from_secs(50));
        assert!(
            e.message().starts_with("Stop:") && e.message().contains("3 calls per 1m"),
            "{}",
            e.message()
        );
        // Another principal is unaffected; refused calls were not counted.
        b.check_call("bob", "srv/echo", t0 + Duration::from_secs(10)).unwrap();
        assert!(b.check_call("alice", "srv/echo", t0 + Duration::from_secs(59)).is_err());
        b.check_call("alice", "srv/echo", t0 + Duration::from_secs(60)).unwrap();
        assert!(b.check_call("alice", "srv/echo", t0 + Duration::from_secs(60)).is_err());
        b.check_call("alice", "srv/echo", t0 + Duration::from_secs(62)).unwrap();
    }

    #[test]
    fn per_tool_and_per_principal_tool() {
        let t0 = Instant::now();
        let mut b = Budgets::new(vec![
            rule(Scope::Tool, 60, Some(2), None),
            rule(Scope::PrincipalTool, 60, Some(1), None),
        ]);
        b.check_call("alice", "srv/a", t0).unwrap();
        let e = b.check_call("alice", "srv/a", t0).unwrap_err();
        assert_eq!((e.scope, e.key.as_str()), (Scope::PrincipalTool, "alice/srv/a"));
        b.check_call("bob", "srv/a", t0).unwrap();
        let e = b.check_call("carol", "srv/a", t0).unwrap_err();
        assert_eq!((e.scope, e.key.as_str()), (Scope::Tool, "srv/a"));
        b.check_call("carol", "srv/b", t0).unwrap();
    }

    #[test]
    fn result_bytes_stop_the_next_call() {
        let t0 = Instant::now();
        let mut b = Budgets::new(vec![rule(Scope::Principal, 3600, None, Some(1000))]);
        b.check_call("alice", "t", t0).unwrap();
        b.record_result("alice", "t", 600, t0);
        b.check_call("alice", "t", t0).unwrap();
        b.record_result("alice", "t", 600, t0 + Duration::from_secs(120));
        let e = b.check_call("alice", "t", t0 + Duration::from_secs(130)).unwrap_err();
        assert_eq!((e.what, e.used, e.limit), ("result_bytes", 1200, 1000));
        // Dropping the first 600 bytes (bucket 0 of 60s) gets below the limit: at 3600s.
        assert_eq!(e.retry_after, Duration::from_secs(3600 - 120));
        assert!(e.message().contains("bytes of results"));
        b.check_call("alice", "t", t0 + Duration::from_secs(3600)).unwrap();
    }

    #[test]
    fn prune_forgets_idle_keys_and_bad_rules_are_ignored() {
        let t0 = Instant::now();
        let mut b = Budgets::new(vec![
            rule(Scope::Principal, 10, Some(5), None),
            rule(Scope::Tool, 0, Some(1), None),
            rule(Scope::Tool, 10, None, None),
        ]);
        assert_eq!(b.rules().len(), 1);
        b.check_call("a", "t", t0).unwrap();
        b.check_call("b", "t", t0).unwrap();
        assert_eq!(b.tracked(), 2);
        b.prune(t0 + Duration::from_secs(5));
        assert_eq!(b.tracked(), 2);
        b.prune(t0 + Duration::from_secs(11));
        assert_eq!(b.tracked(), 0);
    }

    #[test]
    fn time_going_backwards_is_harmless() {
        let t0 = Instant::now() + Duration::from_secs(100);
        let mut b = Budgets::new(vec![rule(Scope::Principal, 60, Some(1), None)]);
        b.check_call("a", "t", t0).unwrap();
        assert!(b.check_call("a", "t", t0 - Duration::from_secs(50)).is_err());
    }

    #[test]
    fn shared_keys_name_each_counting_rule_and_refusals_read_back() {
        let rules = vec![
            rule(Scope::Tool, 0, Some(1), None),
            rule(Scope::PrincipalTool, 60, Some(2), Some(100)),
            rule(Scope::Principal, 3600, None, Some(5)),
        ];
        let keys = shared_keys(&rules, "alice", "srv/a");
        let named: Vec<(&str, &str)> = keys.iter().map(|k| (k.rule.as_str(), k.key.as_str())).collect();
        assert_eq!(
            named,
            vec![
                ("principal_tool:60000:2:100", "alice/srv/a"),
                ("principal:3600000:-:5", "alice")
            ]
        );
        let refusal = BudgetRefusal {
            index: 1,
            what: "result_bytes",
            used: 7,
            limit: 5,
            retry_after: Duration::from_secs(60),
        };
        let e = shared_exceeded(&rules, &keys, &refusal).unwrap();
        assert_eq!(
            (e.scope, e.key.as_str(), e.window),
            (Scope::Principal, "alice", Duration::from_secs(3600))
        );
        assert!(e.message().contains("5 bytes of results per 1h"), "{}", e.message());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::from_secs(90)), "1m30s");
        assert_eq!(human(Duration::from_secs(7200)), "2h");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(0)), "0ms");
    }
}
