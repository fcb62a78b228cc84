//! The shipper: one task per sink, reading the committed log after the sink's durable cursor,
//! delivering a batch, and moving the cursor only once the batch is through.
//!
//! It shares nothing with the decision path: its own SQLite connection (readers never block the
//! writer in WAL mode), its own task. A slow or dead sink only falls behind, which `/metrics`,
//! `/readyz` and `steward audit sinks` show, and it catches up when the sink is back. One
//! process ships a sink at a time (a lease on the cursor row); the others stand by.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use steward_store::{EvidenceStore, Lease, StoreError};
use tokio::sync::watch;

use super::config::SinkConfig;
use super::sinks::Sink;

/// How long a lease lasts without renewal. Renewed every third of it; a holder that died on
/// this host is replaced at once, one elsewhere after this long.
pub const LEASE_TTL: Duration = Duration::from_secs(120);
/// How often a caught-up sink looks for new rows.
const POLL: Duration = Duration::from_millis(250);
/// How often a standby process checks whether the lease came free.
const STANDBY_POLL: Duration = Duration::from_secs(5);
/// Longest one delivery may take before it counts as failed.
const ATTEMPT: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// What a sink is doing, as `/metrics` and `/readyz` show it.
pub struct SinkState {
    pub name: String,
    pub kind: &'static str,
    cursor: AtomicI64,
    head: AtomicI64,
    delivered: AtomicU64,
    failures: AtomicU64,
    up: AtomicBool,
    last_error: Mutex<Option<(String, String)>>,
    standby: Mutex<Option<String>>,
}

impl SinkState {
    pub fn new(cfg: &SinkConfig) -> SinkState {
        SinkState {
            name: cfg.name.clone(),
            kind: cfg.kind.type_name(),
            cursor: AtomicI64::new(0),
            head: AtomicI64::new(0),
            delivered: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            up: AtomicBool::new(true),
            last_error: Mutex::new(None),
            standby: Mutex::new(None),
        }
    }

    pub fn cursor(&self) -> i64 {
        self.cursor.load(Ordering::Relaxed)
    }

    /// Committed events not yet delivered.
    pub fn lag(&self) -> i64 {
        (self.head.load(Ordering::Relaxed) - self.cursor()).max(0)
    }

    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub fn up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// `(when, what)` of the latest failure.
    pub fn last_error(&self) -> Option<(String, String)> {
        self.last_error.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The process that ships this sink while this one stands by.
    pub fn standby(&self) -> Option<String> {
        self.standby.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn fail(&self, error: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.up.store(false, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some((steward_store::now_rfc3339(), error.into()));
    }

    fn set_standby(&self, owner: Option<String>) {
        *self.standby.lock().unwrap_or_else(|e| e.into_inner()) = owner;
    }
}

/// Runs `f` on the store off the async threads.
async fn blocking<T: Send + 'static>(
    store: &Arc<EvidenceStore>,
    f: impl FnOnce(&EvidenceStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let store = store.clone();
    match tokio::task::spawn_blocking(move || f(&store)).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("store task failed: {e}")),
    }
}

/// Sleeps `d`, or less when asked to stop; `true` when stopping.
async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => *stop.borrow(),
        _ = stop.changed() => true,
    }
}

pub(crate) async fn run(
    cfg: SinkConfig,
    mut sink: Sink,
    store: Arc<EvidenceStore>,
    state: Arc<SinkState>,
    mut stop: watch::Receiver<bool>,
) {
    let owner = super::owner_id();
    let name = cfg.name.clone();
    let mut backoff = BACKOFF_MIN;
    let mut leased: Option<Instant> = None;
    let mut cursor = 0i64;
    loop {
        if *stop.borrow() {
            break;
        }
        if leased.is_none_or(|t| t.elapsed() >= LEASE_TTL / 3) {
            let (n, o) = (name.clone(), owner.clone());
            let mut got = blocking(&store, move |s| s.lease_sink(&n, &o, LEASE_TTL, None)).await;
            if let Ok(Lease::Busy { owner: other, .. }) = &got
                && super::is_dead_local(other)
            {
                let (n, o, dead) = (name.clone(), owner.clone(), other.clone());
                tracing::info!(sink = %name, previous = %dead, "taking over the sink from a process that has exited");
                got = blocking(&store, move |s| s.lease_sink(&n, &o, LEASE_TTL, Some(&dead))).await;
            }
            match got {
                Ok(Lease::Held { seq }) => {
                    if leased.is_none() {
                        tracing::info!(sink = %name, cursor = seq, "shipping audit events");
                    }
                    cursor = seq;
                    leased = Some(Instant::now());
                    state.cursor.store(seq, Ordering::Relaxed);
                    state.set_standby(None);
                }
                Ok(Lease::Busy { owner: other, .. }) => {
                    leased = None;
                    sink.reset();
                    state.set_standby(Some(other));
                    if let Ok(Some(c)) = blocking(&store, {
                        let n = name.clone();
                        move |s| s.cursor(&n)
                    })
                    .await
                    {
                        state.cursor.store(c.seq, Ordering::Relaxed);
                    }
                    if let Ok(Some(h)) = blocking(&store, |s| s.head()).await {
                        state.head.store(h.seq, Ordering::Relaxed);
                    }
                    if pause(&mut stop, STANDBY_POLL).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    state.fail(&e);
                    tracing::warn!(sink = %name, error = %e, "cannot lease the sink cursor");
                    if pause(&mut stop, backoff).await {
                        break;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    continue;
                }
            }
        }
        let batch = cfg.batch;
        let read = blocking(&store, move |s| {
            let head = s.head()?.map(|h| h.seq).unwrap_or(0);
            Ok((s.rows_after(cursor, batch)?, head))
        })
        .await;
        let rows = match read {
            Ok((rows, head)) => {
                state.head.store(head.max(cursor), Ordering::Relaxed);
                rows
            }
            Err(e) => {
                state.fail(&e);
                if pause(&mut stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let Some(last) = rows.last().map(|r| r.seq) else {
            if pause(&mut stop, POLL).await {
                break;
            }
            continue;
        };
        let outcome = match tokio::time::timeout(ATTEMPT, sink.deliver(&rows)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("delivery took longer than {}s", ATTEMPT.as_secs())),
        };
        match outcome {
            Ok(done) => {
                let count = rows.len() as i64;
                let (n, o) = (name.clone(), owner.clone());
                match blocking(&store, move |s| s.advance_sink(&n, &o, last, count)).await {
                    Ok(true) => {
                        cursor = last;
                        state.cursor.store(last, Ordering::Relaxed);
                        state.delivered.fetch_add(count as u64, Ordering::Relaxed);
                        state.up.store(true, Ordering::Relaxed);
                        backoff = BACKOFF_MIN;
                    }
                    // Another process took the sink over: it re-sends from the stored cursor.
                    Ok(false) => leased = None,
                    Err(e) => state.fail(&e),
                }
                if let Some(w) = done.warning {
                    record_failure(&store, &state, &name, &w).await;
                }
            }
            Err(e) => {
                sink.reset();
                record_failure(&store, &state, &name, &e).await;
                tracing::warn!(sink = %name, error = %e, retry_in_ms = backoff.as_millis() as u64, "audit sink delivery failed");
                if pause(&mut stop, backoff).await {
                    break;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    if leased.is_some() {
        let o = owner.clone();
        let _ = blocking(&store, move |s| s.release_sink(&name, &o)).await;
    }
    super::owner_done(&owner);
}

async fn record_failure(store: &Arc<EvidenceStore>, state: &SinkState, name: &str, error: &str) {
    state.fail(error);
    let (n, e) = (name.to_string(), error.to_string());
    let _ = blocking(store, move |s| s.sink_error(&n, &e)).await;
}
