//! The runaway counters a policy turns on (`breaker:`, `budgets:`), kept across calls: in
//! memory, or with PostgreSQL in the store every gateway shares, so a principal who spreads
//! calls over several gateways meets one breaker and one budget.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use steward_policy::Policy;
use steward_store::SharedCounters;

use super::budget::{shared_exceeded, shared_keys};
use super::{Breaker, Budgets};

/// A run of identical calls is forgotten after this long without calls from the principal.
const BREAKER_RESET_AFTER: Duration = Duration::from_secs(600);

/// Why a call is refused by a counter.
pub struct Tripped {
    pub reason: String,
    pub rule: &'static str,
    /// The counters could not be read: refused because it could not be counted.
    pub fail_closed: bool,
}

impl Tripped {
    fn by(rule: &'static str, reason: String) -> Tripped {
        Tripped {
            reason,
            rule,
            fail_closed: false,
        }
    }

    fn uncounted(rule: &'static str, what: &str, e: &steward_store::StoreError) -> Tripped {
        Tripped {
            reason: format!(
                "Refused: the {what} shared by the gateways cannot be read ({e}), and Steward does not run a call it cannot count. Try again when the store is back; `steward doctor` checks it."
            ),
            rule,
            fail_closed: true,
        }
    }
}

#[derive(Default)]
pub struct Runaway {
    breaker: Mutex<Option<(u32, Breaker)>>,
    budgets: Mutex<Option<(usize, Budgets)>>,
    /// With PostgreSQL: the counters of every gateway, used instead of the two above.
    shared: Option<SharedCounters>,
}

impl Runaway {
    /// Counters in memory, or in `shared` when the store is shared by several gateways.
    pub fn new(shared: Option<SharedCounters>) -> Runaway {
        Runaway {
            shared,
            ..Runaway::default()
        }
    }

    /// Counts a call of `principal` to `target` (`server/tool`) with these arguments; refuses it
    /// when the repeat breaker trips or a budget is spent.
    pub async fn admit(&self, policy: &Policy, principal: &str, target: &str, args_digest: &str) -> Option<Tripped> {
        match &self.shared {
            Some(shared) => admit_shared(shared, policy, principal, target, args_digest).await,
            None => self.admit_local(policy, principal, target, args_digest),
        }
    }

    fn admit_local(&self, policy: &Policy, principal: &str, target: &str, args_digest: &str) -> Option<Tripped> {
        let prot = policy.protections();
        let now = Instant::now();
        if prot.breaker > 0 {
            let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
            if b.as_ref().is_none_or(|(limit, _)| *limit != prot.breaker) {
                *b = Some((
                    prot.breaker,
                    Breaker::new(prot.breaker).with_reset_after(BREAKER_RESET_AFTER),
                ));
            }
            if let Some((_, breaker)) = b.as_mut()
                && let Err(tripped) = breaker.observe(principal, target, args_digest, now)
            {
                return Some(Tripped::by("steward:breaker", tripped.message));
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
                return Some(Tripped::by("steward:budget", exceeded.message()));
            }
        }
        None
    }

    /// Counts the bytes of a result against the budgets that limit them.
    pub fn record_result(&self, policy: &Policy, principal: &str, target: &str, bytes: usize) {
        if let Some(shared) = &self.shared {
            let keys = shared_keys(&policy.protections().budgets, principal, target);
            shared.record_bytes_nowait(keys, bytes as u64);
            return;
        }
        if let Some((_, budgets)) = self.budgets.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            budgets.record_result(principal, target, bytes as u64, Instant::now());
        }
    }
}

/// The breaker, then the budgets, counted in the shared store (one round trip each, and none
/// when the policy turns neither on). A store that cannot be read refuses the call.
async fn admit_shared(
    shared: &SharedCounters,
    policy: &Policy,
    principal: &str,
    target: &str,
    args_digest: &str,
) -> Option<Tripped> {
    let prot = policy.protections();
    if prot.breaker > 0 {
        match shared
            .breaker(principal, target, args_digest, BREAKER_RESET_AFTER)
            .await
        {
            Ok(run) if run > prot.breaker => {
                let tripped = super::breaker::Tripped::repeat(target, run, prot.breaker);
                return Some(Tripped::by("steward:breaker", tripped.message));
            }
            Ok(_) => {}
            Err(e) => return Some(Tripped::uncounted("steward:breaker", "repeat breaker's counts", &e)),
        }
    }
    let keys = shared_keys(&prot.budgets, principal, target);
    if keys.is_empty() {
        return None;
    }
    match shared.admit(keys.clone()).await {
        Ok(None) => None,
        Ok(Some(refusal)) => {
            let reason = match shared_exceeded(&prot.budgets, &keys, &refusal) {
                Some(exceeded) => exceeded.message(),
                None => "Stop: a budget is used up. Do not retry now; if the task needs more, ask the user.".into(),
            };
            Some(Tripped::by("steward:budget", reason))
        }
        Err(e) => Some(Tripped::uncounted("steward:budget", "budget counters", &e)),
    }
}
