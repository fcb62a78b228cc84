//! One way to run SQL on either database, so every store's logic (approvals, pins, keys,
//! cursors, checkpoints, retention, verify) is written once.
//!
//! SQL is written with `$1`-style placeholders and in the subset both engines share; the SQLite
//! side rewrites the placeholders to `?1`. Values cross as [`Val`] and rows come back as [`Row`].
//! What differs between the engines (how a write transaction starts, row locks, where the chain
//! head is kept) is asked of [`Dialect`].

pub(crate) mod sqlite;

use std::borrow::Cow;

/// Which engine a statement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// What locks the rows a transaction reads before it changes them. SQLite's `BEGIN
    /// IMMEDIATE` already serialises writers; PostgreSQL locks the rows read.
    pub fn for_update(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        }
    }
}

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}

impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(i64::from(v))
    }
}

impl From<f64> for Val {
    fn from(v: f64) -> Val {
        Val::Real(v)
    }
}

impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}

impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}

impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}

impl From<&[u8]> for Val {
    fn from(v: &[u8]) -> Val {
        Val::Blob(v.to_vec())
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map(Into::into).unwrap_or(Val::Null)
    }
}

impl From<&Option<String>> for Val {
    fn from(v: &Option<String>) -> Val {
        v.as_deref().map(Val::from).unwrap_or(Val::Null)
    }
}

/// `vals![a, b, c]`: statement parameters (an array: `&vals![…]` is a `&[Val]`).
macro_rules! vals {
    () => { [$crate::db::Val::Null; 0] };
    ($($v:expr),+ $(,)?) => { [$($crate::db::Val::from($v)),+] };
}
pub(crate) use vals;

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL answered with an error, or the statement could not be run.
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    /// PostgreSQL cannot be reached (connection refused or lost, pool exhausted, time-out).
    #[error("{0}")]
    Unavailable(String),
    /// A column did not hold what the code expects (a hand-edited or newer database).
    #[error("column {column}: expected {expected}")]
    Column { column: usize, expected: &'static str },
    /// The database's schema is newer than this build.
    #[error("the schema is version {found}; this Steward knows up to {known}")]
    Schema { found: i64, known: i64 },
}

/// One result row, its columns in the order the statement selected them.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row(pub Vec<Val>);

impl Row {
    fn at(&self, i: usize) -> Result<&Val, DbError> {
        self.0.get(i).ok_or(DbError::Column {
            column: i,
            expected: "a column",
        })
    }

    fn take(&mut self, i: usize) -> Result<Val, DbError> {
        match self.0.get_mut(i) {
            Some(v) => Ok(std::mem::replace(v, Val::Null)),
            None => Err(DbError::Column {
                column: i,
                expected: "a column",
            }),
        }
    }

    /// A text column, moved out of the row.
    pub fn text(&mut self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?.ok_or(DbError::Column {
            column: i,
            expected: "text, not NULL",
        })
    }

    pub fn opt_text(&mut self, i: usize) -> Result<Option<String>, DbError> {
        match self.take(i)? {
            Val::Null => Ok(None),
            Val::Text(s) => Ok(Some(s)),
            Val::Int(n) => Ok(Some(n.to_string())),
            Val::Real(f) => Ok(Some(f.to_string())),
            Val::Blob(b) => String::from_utf8(b).map(Some).map_err(|_| DbError::Column {
                column: i,
                expected: "UTF-8 text",
            }),
        }
    }

    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?.ok_or(DbError::Column {
            column: i,
            expected: "an integer, not NULL",
        })
    }

    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Int(n) => Ok(Some(*n)),
            _ => Err(DbError::Column {
                column: i,
                expected: "an integer",
            }),
        }
    }

    pub fn opt_real(&self, i: usize) -> Result<Option<f64>, DbError> {
        match self.at(i)? {
            Val::Null => Ok(None),
            Val::Real(f) => Ok(Some(*f)),
            Val::Int(n) => Ok(Some(*n as f64)),
            _ => Err(DbError::Column {
                column: i,
                expected: "a number",
            }),
        }
    }

    pub fn blob(&mut self, i: usize) -> Result<Vec<u8>, DbError> {
        match self.take(i)? {
            Val::Blob(b) => Ok(b),
            Val::Text(s) => Ok(s.into_bytes()),
            _ => Err(DbError::Column {
                column: i,
                expected: "bytes",
            }),
        }
    }
}

/// A connection, or a transaction on one.
pub(crate) trait Db {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, DbError>;
    /// Runs a query; returns every row.
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, DbError>;
    /// Runs statements without parameters (schema).
    fn batch(&mut self, sql: &str) -> Result<(), DbError>;
}

impl dyn Db + '_ {
    pub fn query_opt(&mut self, sql: &str, params: &[Val]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    pub fn query_one(&mut self, sql: &str, params: &[Val]) -> Result<Row, DbError> {
        self.query_opt(sql, params)?.ok_or(DbError::Column {
            column: 0,
            expected: "one row",
        })
    }

    /// The first column of the first row, as an integer (0 when NULL).
    pub fn query_int(&mut self, sql: &str, params: &[Val]) -> Result<i64, DbError> {
        Ok(self.query_one(sql, params)?.opt_int(0)?.unwrap_or(0))
    }

    /// Whether `table` exists (old SQLite files lack the tables of later migrations, and
    /// readers never migrate).
    pub fn has_table(&mut self, table: &str) -> Result<bool, DbError> {
        let n = match self.dialect() {
            Dialect::Sqlite => self.query_int(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
                &vals![table],
            )?,
            Dialect::Postgres => self.query_int(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
                &vals![table],
            )?,
        };
        Ok(n > 0)
    }
}

/// `$1` placeholders as SQLite's `?1`. The statements are Steward's own and carry no `$` in
/// string literals.
pub(crate) fn sqlite_sql(sql: &str) -> Cow<'_, str> {
    if !sql.contains('$') {
        return Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_rewritten_for_sqlite() {
        assert_eq!(
            sqlite_sql("UPDATE t SET a = $2 WHERE id = $1 AND b = 'x'"),
            "UPDATE t SET a = ?2 WHERE id = ?1 AND b = 'x'"
        );
        assert!(matches!(sqlite_sql("SELECT 1"), Cow::Borrowed(_)));
    }

    #[test]
    fn rows_read_typed_columns() {
        let mut r = Row(vec![Val::Int(3), Val::Null, Val::Text("a".into()), Val::Real(1.5)]);
        assert_eq!(r.int(0).unwrap(), 3);
        assert_eq!(r.opt_text(1).unwrap(), None);
        assert!(r.text(1).is_err());
        assert_eq!(r.text(2).unwrap(), "a");
        assert_eq!(r.opt_real(3).unwrap(), Some(1.5));
        assert!(r.int(9).is_err());
    }
}
