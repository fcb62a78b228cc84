//! PostgreSQL: a pool of `tokio-postgres` connections (TLS by rustls) on a runtime of its own.
//!
//! The runtime lives on its own threads, so the store works the same from a gateway's async
//! tasks, from blocking threads and from the CLI, and no caller's runtime ever owns a database
//! connection. Synchronous store code (the logic shared with SQLite, see [`crate::db`]) sends
//! each statement to that runtime and waits for it ([`Pg::call`]); async callers await it
//! ([`Pg::run`]).

pub(crate) mod counters;
pub(crate) mod listen;
pub(crate) mod schema;
mod types;
pub(crate) mod writer;

use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::types::ToSql;

use crate::db::{Db, DbError, Dialect, Row, Val};
use crate::{PostgresConfig, StoreError};

/// How long one statement may take before the connection is given up as hung.
pub(crate) const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a caller waits for a free pooled connection (or a new one) before failing closed.
const POOL_WAIT: Duration = Duration::from_secs(5);
/// How long opening a store waits for PostgreSQL to accept connections.
const STARTUP_WAIT: Duration = Duration::from_secs(15);

pub(crate) type Tls = tokio_postgres_rustls::MakeRustlsConnect;

/// One process's connection to a PostgreSQL store.
pub(crate) struct Pg {
    handle: tokio::runtime::Handle,
    pool: Pool,
    pg_config: tokio_postgres::Config,
    tls: Tls,
    /// `postgres://user@host:port/db`, for messages.
    pub target: String,
    pool_size: usize,
    changes: OnceLock<listen::Changes>,
    /// Stops the runtime's thread when the last handle goes.
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for Pg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pg").field("target", &self.target).finish()
    }
}

impl Pg {
    /// Connects (waiting up to [`STARTUP_WAIT`] for the server), applies the schema migrations
    /// and refuses a schema newer than this build.
    pub fn connect(cfg: &PostgresConfig) -> Result<Arc<Pg>, StoreError> {
        let target = cfg.display();
        let mut pg_config = tokio_postgres::Config::from_str(&cfg.url).map_err(|e| StoreError::Config {
            store: target.clone(),
            // The parser's messages name the option, never its value.
            problem: e.to_string(),
        })?;
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("steward");
        }
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(Duration::from_secs(5));
        }
        pg_config.keepalives(true).keepalives_idle(Duration::from_secs(30));
        if pg_config.get_tcp_user_timeout().is_none() {
            // A server that vanishes without a reset (a failed host) is noticed in seconds.
            pg_config.tcp_user_timeout(Duration::from_secs(15));
        }
        let tls = tls().map_err(|problem| StoreError::Config {
            store: target.clone(),
            problem,
        })?;
        let (handle, stop) = start_runtime().map_err(|e| StoreError::Config {
            store: target.clone(),
            problem: format!("cannot start the PostgreSQL runtime: {e}"),
        })?;
        let pool_size = cfg.pool.clamp(1, 1024);
        let manager = Manager::from_config(
            pg_config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| StoreError::Config {
                store: target.clone(),
                problem: format!("cannot build the connection pool: {e}"),
            })?;
        let pg = Arc::new(Pg {
            handle,
            pool,
            pg_config,
            tls,
            target,
            pool_size,
            changes: OnceLock::new(),
            _stop: stop,
        });
        let started = Instant::now();
        loop {
            let attempt = pg.clone();
            match pg.call(async move { schema::migrate(&attempt).await }) {
                Ok(Ok(())) => return Ok(pg),
                Ok(Err(DbError::Unavailable(e))) | Err(DbError::Unavailable(e)) if started.elapsed() < STARTUP_WAIT => {
                    tracing::warn!(store = %pg.target, error = %e, "PostgreSQL not reachable yet; retrying");
                    std::thread::sleep(Duration::from_millis(500));
                }
                Ok(Err(e)) | Err(e) => return Err(pg.store_error(e)),
            }
        }
    }

    /// A [`StoreError`] for `e`, naming this store.
    pub fn store_error(&self, e: DbError) -> StoreError {
        match e {
            DbError::Schema { found, known } => StoreError::SchemaTooNew {
                path: self.target.clone(),
                found,
                known,
            },
            other => other.into(),
        }
    }

    /// Runs `fut` on the store's runtime and waits for it on this thread (never panics, from
    /// any thread; blocks it meanwhile).
    pub fn call<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Result<T, DbError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv()
            .map_err(|_| DbError::Unavailable("the PostgreSQL store has shut down".into()))
    }

    /// Runs `fut` on the store's runtime, from any async context.
    pub async fn run<T: Send + 'static>(&self, fut: impl Future<Output = T> + Send + 'static) -> Result<T, DbError> {
        self.handle
            .spawn(fut)
            .await
            .map_err(|_| DbError::Unavailable("the PostgreSQL store has shut down".into()))
    }

    pub fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(fut);
    }

    /// A pooled connection. Must be awaited on the store's runtime (inside [`Pg::call`] or
    /// [`Pg::run`]): a new connection's task is spawned where it is made.
    pub async fn client(&self) -> Result<Object, DbError> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error(&self.target, self.pool_size, e))
    }

    /// A connection of its own, outside the pool (the notification listener).
    pub async fn dedicated(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<
                tokio_postgres::Socket,
                <Tls as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
            >,
        ),
        DbError,
    > {
        self.pg_config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.error(e))
    }

    /// A `tokio-postgres` error: the server's own error, or this store being unreachable.
    pub fn error(&self, e: tokio_postgres::Error) -> DbError {
        pg_error(&self.target, e)
    }

    /// The shared change notifications (started on first use).
    pub fn changes(self: &Arc<Pg>) -> &listen::Changes {
        self.changes.get_or_init(|| listen::Changes::start(self.clone()))
    }

    /// `f` on one pooled connection, outside a transaction.
    pub fn read<T, E: From<DbError>>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T, E>) -> Result<T, E> {
        let mut db = PgDb::new(self)?;
        f(&mut db)
    }

    /// `f` in one transaction, committed when it returns `Ok` and rolled back otherwise.
    pub fn write<T, E: From<DbError>>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T, E>) -> Result<T, E> {
        let mut db = PgDb::new(self)?;
        db.batch("BEGIN")?;
        match f(&mut db) {
            Ok(v) => {
                if let Err(e) = db.batch("COMMIT") {
                    db.discard();
                    return Err(e.into());
                }
                Ok(v)
            }
            Err(e) => {
                if db.batch("ROLLBACK").is_err() {
                    db.discard();
                }
                Err(e)
            }
        }
    }
}

fn pool_error(target: &str, size: usize, e: PoolError) -> DbError {
    match e {
        PoolError::Timeout(_) => DbError::Unavailable(format!(
            "PostgreSQL at {target}: no connection free within {}s (all {size} pooled connections busy, or the server does not answer)",
            POOL_WAIT.as_secs()
        )),
        PoolError::Backend(e) => pg_error(target, e),
        other => DbError::Unavailable(format!("PostgreSQL at {target}: {other}")),
    }
}

/// A `tokio-postgres` error: the server's own error (a constraint, a lock time-out), or the
/// store being unreachable.
pub(crate) fn pg_error(target: &str, e: tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => DbError::Postgres(format!("{} ({})", db.message(), db.code().code())),
        None => DbError::Unavailable(format!("PostgreSQL at {target} is unreachable: {}", describe(&e))),
    }
}

/// An error's message with its causes (`error connecting to server: Connection refused`).
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn start_runtime() -> std::io::Result<(tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>)> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("steward-pg")
        .enable_all()
        .build()?;
    let handle = rt.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::Builder::new()
        .name("steward-pg-rt".into())
        .spawn(move || {
            rt.block_on(async {
                let _ = stopped.await;
            });
            rt.shutdown_timeout(Duration::from_secs(2));
        })?;
    Ok((handle, stop))
}

/// TLS with the system's trust store (`SSL_CERT_FILE` / `SSL_CERT_DIR` add to it). Whether
/// TLS is used is the URL's `sslmode` (`prefer` when absent, `require` to insist).
fn tls() -> Result<Tls, String> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for cert in found.certs {
        let _ = roots.add(cert);
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// A pooled connection as a [`Db`]: each statement runs on the store's runtime.
pub(crate) struct PgDb<'p> {
    pg: &'p Pg,
    client: Option<Object>,
}

impl<'p> PgDb<'p> {
    pub fn new(pg: &'p Pg) -> Result<PgDb<'p>, DbError> {
        let (pool, target, size) = (pg.pool.clone(), pg.target.clone(), pg.pool_size);
        let client = pg.call(async move { pool.get().await.map_err(|e| pool_error(&target, size, e)) })??;
        Ok(PgDb {
            pg,
            client: Some(client),
        })
    }

    /// Drops the connection instead of returning it to the pool (its state is unknown).
    fn discard(&mut self) {
        if let Some(c) = self.client.take() {
            drop(Object::take(c));
        }
    }

    fn run<T: Send + 'static>(
        &mut self,
        sql: &str,
        params: &[Val],
        op: impl for<'a> FnOnce(&'a Object, tokio_postgres::Statement, Vec<Val>) -> OpFuture<'a, T> + Send + 'static,
    ) -> Result<T, DbError> {
        let client = self
            .client
            .take()
            .ok_or_else(|| DbError::Unavailable("the PostgreSQL connection was lost".into()))?;
        let sql = sql.to_string();
        let params = params.to_vec();
        let (client, result) = self.pg.call(async move {
            let result = tokio::time::timeout(STATEMENT_TIMEOUT, async {
                let stmt = client.prepare_cached(&sql).await?;
                op(&client, stmt, params).await
            })
            .await;
            (client, result)
        })?;
        match result {
            Ok(Ok(v)) => {
                self.client = Some(client);
                Ok(v)
            }
            Ok(Err(e)) => {
                let closed = e.is_closed() || e.as_db_error().is_none();
                let err = self.pg.error(e);
                if closed {
                    drop(Object::take(client));
                } else {
                    self.client = Some(client);
                }
                Err(err)
            }
            Err(_) => {
                drop(Object::take(client));
                Err(DbError::Unavailable(format!(
                    "PostgreSQL at {} did not answer within {}s",
                    self.pg.target,
                    STATEMENT_TIMEOUT.as_secs()
                )))
            }
        }
    }
}

type OpFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

fn refs(params: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Db for PgDb<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError> {
        self.run(sql, params, |client, stmt, params| {
            Box::pin(async move { client.execute(&stmt, &refs(&params)).await })
        })
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError> {
        let rows = self.run(sql, params, |client, stmt, params| {
            Box::pin(async move { client.query(&stmt, &refs(&params)).await })
        })?;
        rows.iter().map(types::row_of).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        let client = self
            .client
            .take()
            .ok_or_else(|| DbError::Unavailable("the PostgreSQL connection was lost".into()))?;
        let sql = sql.to_string();
        let (client, result) = self.pg.call(async move {
            let r = tokio::time::timeout(STATEMENT_TIMEOUT, client.batch_execute(&sql)).await;
            (client, r)
        })?;
        match result {
            Ok(Ok(())) => {
                self.client = Some(client);
                Ok(())
            }
            Ok(Err(e)) => {
                let err = self.pg.error(e);
                if matches!(err, DbError::Unavailable(_)) {
                    drop(Object::take(client));
                } else {
                    self.client = Some(client);
                }
                Err(err)
            }
            Err(_) => {
                drop(Object::take(client));
                Err(DbError::Unavailable(format!(
                    "PostgreSQL at {} did not answer within {}s",
                    self.pg.target,
                    STATEMENT_TIMEOUT.as_secs()
                )))
            }
        }
    }
}
