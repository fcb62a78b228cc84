//! The write side of the audit log: one writer thread per process that group-commits.
//!
//! Callers encode their rows on their own threads ([`AuditRow::prepare`]); the writer only
//! places each row in the chain, hashes it and inserts it. Every row waiting when a transaction
//! starts goes into it, so batches grow with load. A row nobody waits for (an outcome) is held
//! up to [`HOLD`] for the next awaited commit (a decision), so a call's outcome and the next
//! call's decision share one transaction; a row a caller waits for is committed at once.
//!
//! The writer commits through a [`Sink`]: SQLite (this file) or PostgreSQL (`pg::writer`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use tokio::sync::oneshot;

use crate::StoreError;
use crate::event::{AuditEvent, AuditRow};
use crate::health::{AuditUnhealthy, WriterHealth};
use crate::schema::{self, GENESIS};

/// Rows waiting for the writer beyond this number make `append` callers wait (back-pressure).
const QUEUE_CAPACITY: usize = 65_536;
/// The most rows one transaction commits.
const MAX_BATCH: usize = 4_096;
/// How long a row nobody waits for may wait for the next awaited commit.
pub const HOLD: Duration = Duration::from_millis(5);
/// While commits fail, how often the idle writer probes whether it can write again.
const PROBE_EVERY: Duration = Duration::from_secs(2);
/// How often the SQLite checkpointer looks whether the WAL has new frames.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// A WAL longer than this many frames (about 16 MiB of 4 KiB pages) is started over. Under steady
/// writes the background checkpoint never finds every frame copied (the writer keeps adding), and
/// SQLite starts the WAL over only when it does: the file would grow by every row ever written.
const WAL_RESTART_FRAMES: i64 = 4_096;

type Ack = oneshot::Sender<Result<i64, StoreError>>;

enum Msg {
    Append(Box<AuditRow>, Option<Ack>),
    Flush(oneshot::Sender<()>),
    /// Commit what is queued and stop: other handles may still exist.
    Close,
}

/// Where the writer commits.
pub(crate) trait Sink: Send {
    /// Places `rows` after the chain head, in order, and commits them in one transaction;
    /// returns their sequence numbers.
    fn commit(&mut self, rows: Vec<AuditRow>) -> Result<Vec<i64>, StoreError>;
    /// Whether the log can take rows again, without adding one.
    fn probe(&mut self) -> Result<(), StoreError>;
    /// Called after a commit's callers have their answers: upkeep that may take a moment.
    fn after_commit(&mut self) {}
    /// The writer stops.
    fn close(&mut self) {}
}

/// The write side of the audit log: a handle to the single writer thread. Cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    tx: SyncSender<Msg>,
    queued: Arc<AtomicUsize>,
    path: Option<PathBuf>,
    location: String,
    instance: Option<String>,
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
    health: WriterHealth,
}

impl AuditLog {
    /// Opens (creating if needed) the SQLite audit database at `path` and starts its writer and
    /// its WAL checkpointer.
    pub fn open_sqlite(path: &Path) -> Result<AuditLog, StoreError> {
        let display = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let open = || {
            Connection::open(path).map_err(|source| StoreError::Open {
                path: display.clone(),
                source,
            })
        };
        let conn = open()?;
        schema::prepare(&conn, &display)?;
        let checkpointer = open()?;
        checkpointer.busy_timeout(Duration::from_secs(10))?;
        let sink = SqliteSink::start(conn, checkpointer)?;
        AuditLog::start(Box::new(sink), Some(path.to_path_buf()), display, None)
    }

    pub(crate) fn start(
        sink: Box<dyn Sink>,
        path: Option<PathBuf>,
        location: String,
        instance: Option<String>,
    ) -> Result<AuditLog, StoreError> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_CAPACITY);
        let queued = Arc::new(AtomicUsize::new(0));
        let health = WriterHealth::default();
        let (writer_queued, writer_health) = (queued.clone(), health.clone());
        let worker = std::thread::Builder::new()
            .name("steward-audit".into())
            .spawn(move || writer_loop(sink, rx, writer_queued, writer_health))
            .map_err(|e| StoreError::WriteFailed(format!("cannot start the audit writer: {e}")))?;
        Ok(AuditLog {
            tx,
            queued,
            path,
            location,
            instance,
            worker: Arc::new(Mutex::new(Some(worker))),
            health,
        })
    }

    /// Rows appended through this handle (and its clones made after) name `instance`.
    pub fn named(mut self, instance: String) -> AuditLog {
        self.instance = Some(instance);
        self
    }

    /// The SQLite file (`None` on PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The SQLite file or the PostgreSQL URL (without its password), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The instance name rows from this process carry (PostgreSQL stores).
    pub fn instance(&self) -> Option<&str> {
        self.instance.as_deref()
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

    /// Events handed to the writer and not yet committed.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Appends an event and waits until it is committed; returns its sequence number.
    pub async fn append(&self, event: AuditEvent) -> Result<i64, StoreError> {
        let (ack, done) = oneshot::channel();
        self.send(Msg::Append(self.prepare(event), Some(ack)))?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    /// Appends an event without waiting for the commit (outcomes, which gate nothing). It is
    /// committed with the next awaited append, or within [`HOLD`].
    pub fn append_nowait(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.send(Msg::Append(self.prepare(event), None))
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

    fn prepare(&self, mut event: AuditEvent) -> Box<AuditRow> {
        if event.ts.is_empty() {
            event.ts = now_rfc3339();
        }
        if event.instance.is_none() {
            event.instance = self.instance.clone();
        }
        Box::new(AuditRow::prepare(event))
    }

    fn send(&self, msg: Msg) -> Result<(), StoreError> {
        if matches!(msg, Msg::Append(..)) {
            self.queued.fetch_add(1, Ordering::Relaxed);
        }
        // `try_send` first so the async caller only blocks when the queue is really full.
        let sent = match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::TrySendError::Full(msg)) => self.tx.send(msg).map_err(|_| StoreError::WriterGone),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(StoreError::WriterGone),
        };
        if sent.is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
        }
        sent
    }
}

/// The current UTC time as RFC 3339 with milliseconds, the format every `ts` column uses.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// What the writer has taken off the queue and not yet committed.
#[derive(Default)]
struct Pending {
    rows: Vec<AuditRow>,
    acks: Vec<Option<Ack>>,
    awaited: usize,
    flushes: Vec<oneshot::Sender<()>>,
    /// When the oldest row nobody waits for arrived.
    held_since: Option<Instant>,
    closing: bool,
}

impl Pending {
    fn take(&mut self, msg: Msg) {
        match msg {
            Msg::Append(row, ack) => {
                if ack.is_some() {
                    self.awaited += 1;
                } else if self.held_since.is_none() {
                    self.held_since = Some(Instant::now());
                }
                self.rows.push(*row);
                self.acks.push(ack);
            }
            Msg::Flush(f) => self.flushes.push(f),
            Msg::Close => self.closing = true,
        }
    }

    /// Whether to commit now rather than wait for more.
    fn due(&self) -> bool {
        self.awaited > 0
            || !self.flushes.is_empty()
            || self.closing
            || self.rows.len() >= MAX_BATCH
            || self.held_since.is_some_and(|t| t.elapsed() >= HOLD)
    }
}

fn writer_loop(mut sink: Box<dyn Sink>, rx: Receiver<Msg>, queued: Arc<AtomicUsize>, health: WriterHealth) {
    let mut p = Pending::default();
    loop {
        let wait = match p.held_since {
            Some(t) => HOLD.saturating_sub(t.elapsed()),
            None if health.failing() => PROBE_EVERY,
            None => Duration::from_secs(3600),
        };
        match rx.recv_timeout(wait) {
            Ok(m) => p.take(m),
            Err(RecvTimeoutError::Timeout) => {
                if p.rows.is_empty() && health.failing() {
                    match sink.probe() {
                        Ok(()) => health.succeeded(),
                        Err(e) => health.failed(&e.to_string()),
                    }
                }
            }
            Err(RecvTimeoutError::Disconnected) => p.closing = true,
        }
        // Take whatever else is already waiting.
        while p.rows.len() < MAX_BATCH && !p.closing {
            match rx.try_recv() {
                Ok(m) => p.take(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => p.closing = true,
            }
        }
        if !p.rows.is_empty() && p.due() {
            let n = p.rows.len();
            commit(sink.as_mut(), &mut p, &health);
            queued.fetch_sub(n, Ordering::Relaxed);
        }
        if p.rows.is_empty() {
            for f in p.flushes.drain(..) {
                let _ = f.send(());
            }
            if p.closing {
                break;
            }
        }
    }
    sink.close();
}

fn commit(sink: &mut dyn Sink, p: &mut Pending, health: &WriterHealth) {
    let rows = std::mem::take(&mut p.rows);
    let acks = std::mem::take(&mut p.acks);
    let count = rows.len();
    p.awaited = 0;
    p.held_since = None;
    match sink.commit(rows) {
        Ok(seqs) => {
            health.succeeded();
            for (ack, seq) in acks.into_iter().zip(seqs) {
                if let Some(ack) = ack {
                    let _ = ack.send(Ok(seq));
                }
            }
            sink.after_commit();
        }
        Err(e) => {
            // The callers learn of it (and fail closed); the rows are not retried.
            tracing::error!(error = %e, events = count, "audit write failed");
            let message = e.to_string();
            health.failed(&message);
            for ack in acks.into_iter().flatten() {
                let _ = ack.send(Err(StoreError::WriteFailed(message.clone())));
            }
        }
    }
}

const INSERT: &str = "INSERT INTO audit_events (seq, ts, kind, decision_id, principal, client, session, door, server, \
    tool, method, operation, args, args_digest, effect, risk, flags, reason, rule_ids, policy_version, approval_id, \
    approvers, outcome, duration_ms, detail, prev_hash, hash, instance) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
    ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28)";

/// The SQLite writer: its own connection, and a checkpointer thread with another one, so WAL
/// checkpoints (and their fsync) never run inside a commit.
struct SqliteSink {
    conn: Connection,
    stop: Option<mpsc::Sender<()>>,
    checkpointer: Option<JoinHandle<()>>,
    /// Set by the checkpointer when the WAL is long: the writer finishes the checkpoint itself.
    wal_long: Arc<AtomicBool>,
}

impl SqliteSink {
    fn start(conn: Connection, checkpointer: Connection) -> Result<SqliteSink, StoreError> {
        let (stop, stopped) = mpsc::channel();
        let wal_long = Arc::new(AtomicBool::new(false));
        let long = wal_long.clone();
        let handle = std::thread::Builder::new()
            .name("steward-wal".into())
            .spawn(move || checkpoint_loop(checkpointer, stopped, long))
            .map_err(|e| StoreError::WriteFailed(format!("cannot start the WAL checkpointer: {e}")))?;
        Ok(SqliteSink {
            conn,
            stop: Some(stop),
            checkpointer: Some(handle),
            wal_long,
        })
    }
}

impl Sink for SqliteSink {
    /// One IMMEDIATE transaction; the chain head is read inside it, so several processes
    /// sharing one database file still produce a single unbroken chain.
    fn commit(&mut self, rows: Vec<AuditRow>) -> Result<Vec<i64>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (mut seq, mut prev) = sqlite_head(&tx)?;
        let mut seqs = Vec::with_capacity(rows.len());
        {
            let mut stmt = tx.prepare_cached(INSERT)?;
            for mut row in rows {
                seq += 1;
                row.seal(seq, prev);
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
                    row.instance,
                ])?;
                prev = row.hash;
                seqs.push(seq);
            }
        }
        tx.commit()?;
        Ok(seqs)
    }

    /// An event is appended and rolled back (the insert path: lock, constraints, triggers),
    /// then a one-row side table is committed (the commit path: disk, permissions).
    fn probe(&mut self) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch("SAVEPOINT probe")?;
        let appended = crate::chain::append_in(
            &mut crate::db::sqlite::Lite(&tx),
            vec![AuditEvent::new(crate::event::EventKind::System)],
            None,
        );
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

    /// The writer is the only one adding frames, so a passive checkpoint it runs between its own
    /// transactions can copy every frame (the background one has copied most already); the
    /// next commit then writes the WAL from its start, over blocks the file already has.
    fn after_commit(&mut self) {
        if self.wal_long.swap(false, Ordering::Relaxed)
            && let Err(e) = self.conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        {
            tracing::debug!(error = %e, "WAL checkpoint by the writer failed; the next round retries");
        }
    }

    fn close(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.checkpointer.take() {
            let _ = h.join();
        }
        let _ = self.conn.pragma_update(None, "wal_checkpoint", "PASSIVE");
    }
}

/// `(seq, hash)` of the newest row, `(0, GENESIS)` for an empty log.
fn sqlite_head(conn: &Connection) -> rusqlite::Result<(i64, String)> {
    conn.prepare_cached("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok((0, GENESIS.to_string())),
            other => Err(other),
        })
}

/// Copies committed WAL frames into the database file, off every writer's path (a PASSIVE
/// checkpoint waits for nobody and nobody waits for it). It runs when another connection has
/// committed since the last one (`data_version` moved). When the WAL has grown past
/// [`WAL_RESTART_FRAMES`] it sets `wal_long`, for the writer to copy the last frames itself.
fn checkpoint_loop(conn: Connection, stop: Receiver<()>, wal_long: Arc<AtomicBool>) {
    let version = |c: &Connection| c.query_row("PRAGMA data_version", [], |r| r.get::<_, i64>(0)).ok();
    let mut done = None;
    // Until told to stop (a message, or the sender dropped).
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY) {
        let now = version(&conn);
        if now.is_none() || now == done {
            continue;
        }
        // The answer is (busy, frames in the WAL, frames copied).
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(1)) {
            Ok(frames) => {
                done = now;
                if frames > WAL_RESTART_FRAMES {
                    wal_long.store(true, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed; retrying"),
        }
    }
}

impl From<crate::db::DbError> for StoreError {
    fn from(e: crate::db::DbError) -> StoreError {
        use crate::db::DbError;
        match e {
            DbError::Sqlite(e) => StoreError::Sqlite(e),
            DbError::Postgres(m) => StoreError::Postgres(m),
            DbError::Unavailable(m) => StoreError::Unavailable(m),
            DbError::Column { column, expected } => {
                StoreError::Unreadable(format!("column {column} does not hold {expected}"))
            }
            DbError::Schema { found, known } => StoreError::SchemaTooNew {
                path: "the store".into(),
                found,
                known,
            },
        }
    }
}
