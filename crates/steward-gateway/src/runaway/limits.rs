//! Per-principal and per-tool rate limits (token buckets) and per-principal concurrency limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::LimitsConfig;

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Buckets idle this long are forgotten, so the maps stay small.
const FORGET_AFTER: Duration = Duration::from_secs(600);

pub struct Limiter {
    cfg: LimitsConfig,
    buckets: Mutex<HashMap<String, Bucket>>,
    inflight: Arc<Mutex<HashMap<String, u32>>>,
}

/// Holds one concurrency slot until dropped.
pub struct Permit {
    inflight: Arc<Mutex<HashMap<String, u32>>>,
    principal: Option<String>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(p) = &self.principal {
            let mut m = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = m.get_mut(p) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    m.remove(p);
                }
            }
        }
    }
}

/// Why a call was limited, and when to try again.
#[derive(Debug)]
pub struct Limited {
    pub reason: String,
    pub retry_after: Duration,
}

impl Limiter {
    pub fn new(cfg: LimitsConfig) -> Limiter {
        Limiter {
            cfg,
            buckets: Mutex::new(HashMap::new()),
            inflight: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Takes a concurrency slot and a token from the principal's and the tool's buckets.
    pub fn admit(&self, principal: &str, tool: &str) -> Result<Permit, Limited> {
        let permit = self.slot(principal)?;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.last) < FORGET_AFTER);
        }
        let checks = [
            (
                self.cfg.calls_per_minute,
                format!("p\u{0}{principal}"),
                format!("{principal} may make {} calls per minute", self.cfg.calls_per_minute),
            ),
            (
                self.cfg.tool_calls_per_minute,
                format!("t\u{0}{principal}\u{0}{tool}"),
                format!(
                    "{principal} may call {tool} {} times per minute",
                    self.cfg.tool_calls_per_minute
                ),
            ),
        ];
        // Check every bucket before taking from any, so a refusal costs nothing.
        for (rate, key, reason) in &checks {
            if *rate == 0 {
                continue;
            }
            let b = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: *rate as f64,
                last: now,
            });
            let per_sec = *rate as f64 / 60.0;
            b.tokens = (b.tokens + now.duration_since(b.last).as_secs_f64() * per_sec).min(*rate as f64);
            b.last = now;
            if b.tokens < 1.0 {
                let wait = ((1.0 - b.tokens) / per_sec).ceil().max(1.0);
                return Err(Limited {
                    reason: format!("rate limit: {reason}"),
                    retry_after: Duration::from_secs(wait as u64),
                });
            }
        }
        for (rate, key, _) in &checks {
            if *rate > 0
                && let Some(b) = buckets.get_mut(key)
            {
                b.tokens -= 1.0;
            }
        }
        Ok(permit)
    }

    fn slot(&self, principal: &str) -> Result<Permit, Limited> {
        if self.cfg.concurrent_calls == 0 {
            return Ok(Permit {
                inflight: self.inflight.clone(),
                principal: None,
            });
        }
        let mut m = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(principal.to_string()).or_default();
        if *n >= self.cfg.concurrent_calls {
            return Err(Limited {
                reason: format!(
                    "concurrency limit: {principal} may have {} calls in flight",
                    self.cfg.concurrent_calls
                ),
                retry_after: Duration::from_secs(1),
            });
        }
        *n += 1;
        Ok(Permit {
            inflight: self.inflight.clone(),
            principal: Some(principal.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_concurrency() {
        let l = Limiter::new(LimitsConfig {
            calls_per_minute: 3,
            concurrent_calls: 2,
            ..LimitsConfig::default()
        });
        let a = l.admit("alice", "x").unwrap();
        let b = l.admit("alice", "x").unwrap();
        let err = l.admit("alice", "x").err().unwrap();
        assert!(err.reason.contains("concurrency"), "{}", err.reason);
        drop(a);
        drop(b);
        let _c = l.admit("alice", "x").unwrap();
        let err = l.admit("alice", "x").err().unwrap();
        assert!(err.reason.contains("rate limit"), "{}", err.reason);
        assert!(err.retry_after >= Duration::from_secs(1));
        assert!(l.admit("bob", "x").is_ok());
    }
}
