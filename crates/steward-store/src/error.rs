/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("audit database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create directory {path} for the audit database: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no audit database at {0} (it is created by `steward proxy --audit-db` or `steward serve`)")]
    Missing(String),
    #[error("audit database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("the audit writer has stopped; no further events can be recorded")]
    WriterGone,
    #[error("audit write failed: {0}")]
    WriteFailed(String),
    #[error(
        "the audit chain is broken at seq {seq}: {problem}; run `steward audit verify` (a broken chain is evidence and is not pruned)"
    )]
    ChainBroken { seq: i64, problem: String },
    #[error("audit database {path} was written by a newer Steward (schema {found}, this one knows {known})")]
    SchemaTooNew { path: String, found: i64, known: i64 },
    #[error("store {store}: {problem}")]
    Config { store: String, problem: String },
    /// PostgreSQL answered with an error.
    #[error("PostgreSQL store error: {0}")]
    Postgres(String),
    /// PostgreSQL cannot be reached (the message says where and why).
    #[error("{0}")]
    Unavailable(String),
    #[error("the store holds a value Steward cannot read: {0}")]
    Unreadable(String),
}

impl StoreError {
    /// True when the store could not be reached at all (as opposed to refusing a statement).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
