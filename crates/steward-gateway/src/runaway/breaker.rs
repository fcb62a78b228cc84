//! A breaker for agents stuck in a loop: the same call (same tool, same argument digest)
//! repeated more than `limit` times in a row by one principal is refused until the principal
//! makes a different call (or, optionally, pauses for `reset_after`).
//!
//! Pure bookkeeping: callers pass the current [`Instant`].

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

/// Above this many tracked principals, idle ones are dropped before a new one is added.
const PRUNE_ABOVE: usize = 100_000;

/// A refused repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tripped {
    /// How many identical calls in a row, this one included.
    pub count: u32,
    pub limit: u32,
    /// What the agent reads: stop, and why.
    pub message: String,
}

impl Tripped {
    /// The `count`th identical call to `tool` in a row, over `limit` (also used when the runs
    /// are counted in the shared store).
    pub fn repeat(tool: &str, count: u32, limit: u32) -> Tripped {
        Tripped {
            count,
            limit,
            message: format!(
                "Stop: this is the same call to '{tool}' with the same arguments {count} times in a row (the limit is {limit}). Repeating it will not give a different result; change the approach or ask the user."
            ),
        }
    }
}

impl fmt::Display for Tripped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[derive(Debug, Clone)]
struct Run {
    tool: String,
    digest: String,
    count: u32,
    last: Instant,
}

/// The breaker and its per-principal runs.
#[derive(Debug)]
pub struct Breaker {
    limit: u32,
    reset_after: Option<Duration>,
    runs: HashMap<String, Run>,
}

impl Breaker {
    /// Trips on the call that makes more than `limit` identical calls in a row; `0` disables.
    pub fn new(limit: u32) -> Breaker {
        Breaker {
            limit,
            reset_after: None,
            runs: HashMap::new(),
        }
    }

    /// Also forgets a run after `idle` without calls from the principal.
    pub fn with_reset_after(mut self, idle: Duration) -> Breaker {
        self.reset_after = Some(idle);
        self
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Records a call of `tool` with arguments digest `digest` by `principal`, refusing it when
    /// it makes the run longer than the limit. Refused calls count too: repeating a refused
    /// call keeps it refused.
    pub fn observe(&mut self, principal: &str, tool: &str, digest: &str, now: Instant) -> Result<(), Tripped> {
        if self.limit == 0 {
            return Ok(());
        }
        if self.runs.len() > PRUNE_ABOVE && !self.runs.contains_key(principal) {
            self.prune(now);
        }
        let reset_after = self.reset_after;
        let run = self.runs.entry(principal.to_string()).or_insert_with(|| Run {
            tool: String::new(),
            digest: String::new(),
            count: 0,
            last: now,
        });
        let idle = reset_after.is_some_and(|d| now.saturating_duration_since(run.last) >= d);
        if run.tool == tool && run.digest == digest && !idle {
            run.count = run.count.saturating_add(1);
        } else {
            run.tool = tool.to_string();
            run.digest = digest.to_string();
            run.count = 1;
        }
        run.last = now;
        if run.count > self.limit {
            return Err(Tripped::repeat(tool, run.count, self.limit));
        }
        Ok(())
    }

    /// Forgets `principal`'s run (e.g. when an approver lets the call through).
    pub fn reset(&mut self, principal: &str) {
        self.runs.remove(principal);
    }

    /// Drops runs idle for at least `reset_after` (all runs when it is not set are kept).
    pub fn prune(&mut self, now: Instant) {
        if let Some(d) = self.reset_after {
            self.runs.retain(|_, r| now.saturating_duration_since(r.last) < d);
        }
    }

    /// How many principals have a run (for metrics and tests).
    pub fn tracked(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixth_identical_call_trips_under_a_limit_of_five() {
        let t = Instant::now();
        let mut b = Breaker::new(5);
        for _ in 0..5 {
            b.observe("alice", "srv/search", "sha256:aa", t).unwrap();
        }
        let e = b.observe("alice", "srv/search", "sha256:aa", t).unwrap_err();
        assert_eq!((e.count, e.limit), (6, 5));
        assert!(e.message.starts_with("Stop:") && e.message.contains("6 times in a row"));
        // Still refused while it repeats.
        assert_eq!(b.observe("alice", "srv/search", "sha256:aa", t).unwrap_err().count, 7);
    }

    #[test]
    fn a_different_call_resets_the_run() {
        let t = Instant::now();
        let mut b = Breaker::new(2);
        b.observe("alice", "srv/a", "d1", t).unwrap();
        b.observe("alice", "srv/a", "d1", t).unwrap();
        // Same tool, other arguments.
        b.observe("alice", "srv/a", "d2", t).unwrap();
        b.observe("alice", "srv/a", "d1", t).unwrap();
        b.observe("alice", "srv/a", "d1", t).unwrap();
        assert!(b.observe("alice", "srv/a", "d1", t).is_err());
        // Other tool, same digest.
        b.observe("alice", "srv/b", "d1", t).unwrap();
        b.observe("alice", "srv/a", "d1", t).unwrap();
    }

    #[test]
    fn principals_are_separate() {
        let t = Instant::now();
        let mut b = Breaker::new(1);
        b.observe("alice", "t", "d", t).unwrap();
        b.observe("bob", "t", "d", t).unwrap();
        assert!(b.observe("alice", "t", "d", t).is_err());
        b.reset("alice");
        b.observe("alice", "t", "d", t).unwrap();
    }

    #[test]
    fn idle_time_resets_when_configured() {
        let t = Instant::now();
        let mut b = Breaker::new(1).with_reset_after(Duration::from_secs(60));
        b.observe("alice", "t", "d", t).unwrap();
        assert!(b.observe("alice", "t", "d", t + Duration::from_secs(59)).is_err());
        b.observe("alice", "t", "d", t + Duration::from_secs(59 + 60)).unwrap();
        b.prune(t + Duration::from_secs(59 + 60 + 60));
        assert_eq!(b.tracked(), 0);
    }

    #[test]
    fn zero_disables() {
        let t = Instant::now();
        let mut b = Breaker::new(0);
        for _ in 0..100 {
            b.observe("a", "t", "d", t).unwrap();
        }
        assert_eq!(b.tracked(), 0);
    }
}
