use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::event::{AuditEvent, AuditRow};
use crate::health::{AuditUnhealthy, WriterHealth};
use crate::schema::{self, GENESIS};

/// Events waiting for the writer beyond this number make `append` callers wait (back-pressure).
const QUEUE_CAPACITY: usize = 65_536;
/// The most events one transaction commits.
const MAX_BATCH: usize = 4_096;
/// While commits fail, how often the idle writer probes whether it can write again.
const PROBE_EVERY: Duration = Duration::from_secs(2);

type Ack = oneshot::Sender<Result<i64, StoreError>>;

enum Msg {
    Append(Box<AuditEvent>, Option<Ack>),
    Flush(oneshot::Sender<()>),
    /// Commit what is queued and stop: other handles may still exist.
    Close,
}

/// The write side of the audit log: a handle to the single writer thread. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: SyncSender<Msg>,
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    path: PathBuf,
    worker: std::sync::Arc<std::sync::Mutex<Option<JoinHandle<()>>>>,
    health: WriterHealth,
}

impl AuditLog {
    /// Opens (creating if needed) the SQLite audit database at `path` and starts its writer.
    pub fn open_sqlite(path: &Path) -> Result<AuditLog, StoreError> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: display.clone(),
            source,
        })?;
        schema::prepare(&conn, &display)?;
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let queued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writer_queued = queued.clone();
        let health = WriterHealth::default();
        let writer_health = health.clone();
        let worker = std::thread::Builder::new()
            .name("steward-audit".into())
            .spawn(move || writer_loop(conn, rx, writer_queued, writer_health))
            .map_err(|e| StoreError::WriteFailed(format!("cannot start the audit writer: {e}")))?;
        Ok(AuditLog {
            tx,
            queued,
            path: path.to_path_buf(),
            worker: std::sync::Arc::new(std::sync::Mutex::new(Some(worker))),
            health,
        })
    }

    /// Whether the log can be written: `Err` while the last commit failed (and no later one or
    /// probe succeeded), or when the writer has stopped.
    pub fn health(&self) -> Result<(), AuditUnhealthy> {
        if let Some(failure) = self.health.get() {
            return Err(failure);
        }
        let stopped = self
            .worker
            .lock()
            .map(|w| w.as_ref().is_none_or(|h| h.is_finished()))
            .unwrap_or(true);
        if stopped {
            return Err(AuditUnhealthy {
                since: now_rfc3339(),
                error: "the audit writer has stopped".into(),
            });
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events handed to the writer and not yet committed.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Appends an event and waits until it is committed; returns its sequence number.
    pub async fn append(&self, event: AuditEvent) -> Result<i64, StoreError> {
        let (ack, done) = oneshot::channel();
        self.send(Msg::Append(Box::new(stamp(event)), Some(ack)))?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Appends an event without waiting for the commit (outcomes, which gate nothing).
    pub fn append_nowait(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.send(Msg::Append(Box::new(stamp(event)), None))
    }

    /// Waits until every event sent so far is committed.
    pub async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.send(Msg::Flush(ack)).is_ok() {
            let _ = done.await;
        }
    }

    /// Commits everything queued and stops the writer, for every handle. Further appends fail
    /// with `WriterGone`.
    pub fn close(&self) {
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(w) = worker {
            let _ = self.tx.send(Msg::Close);
            let _ = w.join();
        }
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        if matches!(msg, Msg::Append(..)) {
            self.queued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        // `try_send` first so the async caller only blocks when the queue is really full.
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(msg)) => self.tx.send(msg).map_err(|_| StoreError::WriterGone),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(StoreError::WriterGone),
        }
    }
}

fn stamp(mut event: AuditEvent) -> AuditEvent {
    if event.ts.is_empty() {
        event.ts = now_rfc3339();
    }
    event
}

/// The current UTC time as RFC 3339 with milliseconds, the format every `ts` column uses.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn writer_loop(
    mut conn: Connection,
    rx: Receiver<Msg>,
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    health: WriterHealth,
) {
    let mut batch: Vec<(AuditEvent, Option<Ack>)> = Vec::new();
    let mut flushes: Vec<oneshot::Sender<()>> = Vec::new();
    loop {
        // Block for the first message, then take whatever else is already waiting.
        let wait = if health.failing() {
            PROBE_EVERY
        } else {
            Duration::from_secs(3600)
        };
        let first = match rx.recv_timeout(wait) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => {
                if health.failing() {
                    match probe(&mut conn) {
                        Ok(()) => health.succeeded(),
                        Err(e) => health.failed(&e.to_string()),
                    }
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut disconnected = false;
        let take = |m: Msg, batch: &mut Vec<_>, flushes: &mut Vec<_>| match m {
            Msg::Append(e, ack) => {
                batch.push((*e, ack));
                false
            }
            Msg::Flush(f) => {
                flushes.push(f);
                false
            }
            Msg::Close => true,
        };
        disconnected |= take(first, &mut batch, &mut flushes);
        while batch.len() < MAX_BATCH && !disconnected {
            match rx.try_recv() {
                Ok(m) => disconnected |= take(m, &mut batch, &mut flushes),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    disconnected = true;
                    break;
                }
            }
        }
        if !batch.is_empty() {
            let n = batch.len();
            commit(&mut conn, &mut batch, &health);
            queued.fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
        }
        for f in flushes.drain(..) {
            let _ = f.send(());
        }
        if disconnected {
            break;
        }
    }
    let _ = conn.pragma_update(None, "wal_checkpoint", "PASSIVE");
}

fn commit(conn: &mut Connection, batch: &mut Vec<(AuditEvent, Option<Ack>)>, health: &WriterHealth) {
    let (events, acks): (Vec<AuditEvent>, Vec<Option<Ack>>) = batch.drain(..).unzip();
    let count = events.len();
    match write_batch(conn, events) {
        Ok(seqs) => {
            health.succeeded();
            for (ack, seq) in acks.into_iter().zip(seqs) {
                if let Some(ack) = ack {
                    let _ = ack.send(Ok(seq));
                }
            }
        }
        Err(e) => {
            // The callers learn of it (and fail closed); the events are not retried.
            tracing::error!(error = %e, events = count, "audit write failed");
            let message = e.to_string();
            health.failed(&message);
            for ack in acks.into_iter().flatten() {
                let _ = ack.send(Err(StoreError::WriteFailed(message.clone())));
            }
        }
    }
}

/// Whether the log can take rows again, without adding one: an event is appended and rolled
/// back (the insert path: lock, constraints, triggers), then a one-row side table is committed
/// (the commit path: disk, permissions).
fn probe(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    tx.execute_batch("SAVEPOINT probe")?;
    let appended = append_in(&tx, vec![AuditEvent::new(crate::event::EventKind::System)]);
    tx.execute_batch("ROLLBACK TO probe; RELEASE probe")?;
    appended?;
    tx.execute_batch("CREATE TABLE IF NOT EXISTS audit_writer_probe (id INTEGER PRIMARY KEY, at TEXT NOT NULL)")?;
    tx.execute(
        "INSERT OR REPLACE INTO audit_writer_probe (id, at) VALUES (1, ?1)",
        params![now_rfc3339()],
    )?;
    tx.commit()?;
    Ok(())
}

const INSERT: &str = "INSERT INTO audit_events (seq, ts, kind, decision_id, principal, client, session, door, server, \
    tool, method, operation, args, args_digest, effect, risk, flags, reason, rule_ids, policy_version, approval_id, \
    approvers, outcome, duration_ms, detail, prev_hash, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
    ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)";

/// Writes a batch in one IMMEDIATE transaction. The chain head is read inside the transaction,
/// so several processes sharing one database file still produce a single unbroken chain.
fn write_batch(conn: &mut Connection, events: Vec<AuditEvent>) -> Result<Vec<i64>, StoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let seqs = append_in(&tx, events)?;
    tx.commit()?;
    Ok(seqs)
}

/// Appends events to the chain inside a transaction the caller opened (IMMEDIATE, so the chain
/// head cannot move under it) and commits: other state changes commit with their audit rows.
pub(crate) fn append_in(tx: &rusqlite::Transaction<'_>, events: Vec<AuditEvent>) -> Result<Vec<i64>, StoreError> {
    let events: Vec<AuditEvent> = events.into_iter().map(stamp).collect();
    let (mut seq, mut prev): (i64, String) = tx
        .prepare_cached("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok((0, GENESIS.to_string())),
            other => Err(other),
        })?;
    let mut seqs = Vec::with_capacity(events.len());
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        for event in events {
            seq += 1;
            let row = AuditRow::from_event(event, seq, prev);
            stmt.execute(params![
                row.seq,
                row.ts,
                row.kind,
                row.decision_id,
                row.principal,
                row.client,
                row.session,
                row.door,
                row.server,
                row.tool,
                row.method,
                row.operation,
                row.args,
                row.args_digest,
                row.effect,
                row.risk,
                row.flags,
                row.reason,
                row.rule_ids,
                row.policy_version,
                row.approval_id,
                row.approvers,
                row.outcome,
                row.duration_ms,
                row.detail,
                row.prev_hash,
                row.hash,
            ])?;
            prev = row.hash;
            seqs.push(seq);
        }
    }
    Ok(seqs)
}
