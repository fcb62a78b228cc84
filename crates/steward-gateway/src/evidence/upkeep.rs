//! Background upkeep of the log: checkpoints every N events or M minutes, and retention.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use steward_store::signing::SigningKey;
use steward_store::{EvidenceStore, PruneRequest};
use tokio::sync::watch;

use super::config::CheckpointPolicy;

/// How often the checkpointer looks at the head.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// The first retention pass runs this long after start, then every `RETENTION_EVERY`.
const RETENTION_FIRST: Duration = Duration::from_secs(30);
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Small batches: each is one write transaction the audit writer may have to wait for.
const PRUNE_BATCH: i64 = 1_000;

/// What the checkpointer has done, for `/metrics`.
#[derive(Default)]
pub struct UpkeepState {
    pub last_checkpoint_seq: AtomicI64,
    pub checkpoints: AtomicI64,
    pub pruned: AtomicI64,
}

async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

pub(crate) async fn checkpoints(
    store: Arc<EvidenceStore>,
    policy: CheckpointPolicy,
    key: Option<Arc<SigningKey>>,
    state: Arc<UpkeepState>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Instant::now();
    loop {
        if pause(&mut stop, CHECK_EVERY).await {
            break;
        }
        let (s, k) = (store.clone(), key.clone());
        let made = tokio::task::spawn_blocking(move || -> Result<Option<steward_store::Checkpoint>, String> {
            let last = s.last_checkpoint().map_err(|e| e.to_string())?;
            let Some(head) = s.head().map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let since = head.seq - last.as_ref().map(|c| c.event_seq).unwrap_or(0);
            if since <= 0 {
                return Ok(None);
            }
            let by_count = policy.every.is_some_and(|n| since >= n as i64);
            let by_time = policy.interval.is_some_and(|every| match &last {
                Some(c) => chrono::DateTime::parse_from_rfc3339(&c.ts)
                    .map(|t| {
                        (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                            .to_std()
                            .unwrap_or_default()
                            >= every
                    })
                    .unwrap_or(true),
                None => started.elapsed() >= every,
            });
            if !(by_count || by_time) {
                return Ok(None);
            }
            s.checkpoint(k.as_deref(), "steward").map_err(|e| e.to_string())
        })
        .await;
        match made {
            Ok(Ok(Some(cp))) => {
                state.last_checkpoint_seq.store(cp.seq, Ordering::Relaxed);
                state.checkpoints.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(seq = cp.seq, signed = cp.signature.is_some(), "audit checkpoint");
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "audit checkpoint failed"),
            Err(e) => tracing::warn!(error = %e, "audit checkpoint task failed"),
        }
    }
}

pub(crate) async fn retention(
    store: Arc<EvidenceStore>,
    keep: Duration,
    sinks: Vec<String>,
    key: Option<Arc<SigningKey>>,
    state: Arc<UpkeepState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut wait = RETENTION_FIRST;
    loop {
        if pause(&mut stop, wait).await {
            break;
        }
        wait = RETENTION_EVERY;
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::days(90));
        let req = PruneRequest {
            before: cutoff.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            sinks: Some(sinks.clone()),
            force: false,
            batch: PRUNE_BATCH,
        };
        let (s, k) = (store.clone(), key.clone());
        match tokio::task::spawn_blocking(move || s.prune(&req, k.as_deref(), "steward")).await {
            Ok(Ok(done)) if done.removed > 0 => {
                state.pruned.fetch_add(done.removed, Ordering::Relaxed);
                tracing::info!(
                    removed = done.removed,
                    keep_from = done.plan.keep_from,
                    "audit retention pruned old rows"
                );
            }
            Ok(Ok(done)) if !done.plan.held_back_by.is_empty() => {
                tracing::warn!(sinks = ?done.plan.held_back_by, "audit retention waits for sinks that have not delivered old rows");
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "audit retention failed"),
            Err(e) => tracing::error!(error = %e, "audit retention task failed"),
        }
    }
}
