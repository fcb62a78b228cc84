//! The runaway counters a policy turns on (`breaker:`, `budgets:`), kept across calls.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use steward_policy::Policy;

use super::{Breaker, Budgets};

/// Why a call is refused by a counter.
pub struct Tripped {
    pub reason: String,
    pub rule: &'static str,
}

#[derive(Default)]
pub struct Runaway {
    breaker: Mutex<Option<(u32, Breaker)>>,
    budgets: Mutex<Option<(usize, Budgets)>>,
}

impl Runaway {
    /// Counts a call of `principal` to `target` (`server/tool`) with these arguments; refuses it
    /// when the repeat breaker trips or a budget is spent.
    pub fn admit(&self, policy: &Policy, principal: &str, target: &str, args_digest: &str) -> Option<Tripped> {
        let prot = policy.protections();
        let now = Instant::now();
        if prot.breaker > 0 {
            let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
            if b.as_ref().is_none_or(|(limit, _)| *limit != prot.breaker) {
                *b = Some((
                    prot.breaker,
                    Breaker::new(prot.breaker).with_reset_after(Duration::from_secs(600)),
                ));
            }
            if let Some((_, breaker)) = b.as_mut()
                && let Err(tripped) = breaker.observe(principal, target, args_digest, now)
            {
                return Some(Tripped {
                    reason: tripped.message,
                    rule: "steward:breaker",
                });
            }
        }
        if !prot.budgets.is_empty() {
            let mut b = self.budgets.lock().unwrap_or_else(|e| e.into_inner());
            if b.as_ref().is_none_or(|(n, _)| *n != prot.budgets.len()) {
                *b = Some((prot.budgets.len(), Budgets::new(prot.budgets.clone())));
            }
            if let Some((_, budgets)) = b.as_mut()
                && let Err(exceeded) = budgets.check_call(principal, target, now)
            {
                return Some(Tripped {
                    reason: exceeded.message(),
                    rule: "steward:budget",
                });
            }
        }
        None
    }

    /// Counts the bytes of a result against the budgets that limit them.
    pub fn record_result(&self, principal: &str, target: &str, bytes: usize) {
        if let Some((_, budgets)) = self.budgets.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            budgets.record_result(principal, target, bytes as u64, Instant::now());
        }
    }
}
