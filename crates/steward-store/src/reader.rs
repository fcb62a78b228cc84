use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

use crate::backend::Conn;
use crate::db::{Db, DbError, Dialect, Val, vals};
use crate::event::{AuditRow, COLUMNS};
use crate::verify::{VerifyOptions, VerifyReport};
use crate::{ApiKey, Approval, Pin, StoreError};

/// Rows read per query by [`AuditReader::for_each_since`].
const PAGE: i64 = 10_000;

/// Read access to an audit database: query, verify, stats. Never writes.
pub struct AuditReader {
    pub(crate) conn: Conn,
}

/// Which rows `query` returns. Empty fields match everything.
#[derive(Debug, Clone, Default)]
pub struct QueryFilter {
    /// Only rows at or after this RFC 3339 time.
    pub since: Option<String>,
    pub effect: Option<String>,
    /// A `server/tool` glob (`*` and `?`); without `/` it matches the tool on any server.
    pub tool: Option<String>,
    pub principal: Option<String>,
    pub kind: Option<String>,
    pub decision_id: Option<String>,
    pub limit: Option<u64>,
}

/// Counts over the whole log.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub events: u64,
    pub first_ts: Option<String>,
    pub last_ts: Option<String>,
    pub by_kind: BTreeMap<String, u64>,
    pub by_effect: BTreeMap<String, u64>,
    /// Over decision rows only (approval rows repeat their call's risk).
    pub by_risk: BTreeMap<String, u64>,
    pub by_outcome: BTreeMap<String, u64>,
    pub top_tools: Vec<(String, u64)>,
    pub top_principals: Vec<(String, u64)>,
}

impl AuditReader {
    pub fn open(path: &Path) -> Result<AuditReader, StoreError> {
        let display = path.display().to_string();
        if !path.exists() {
            return Err(StoreError::Missing(display));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|source| StoreError::Open {
                    path: display.clone(),
                    source,
                })?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        let has = |table: &str| -> rusqlite::Result<bool> {
            conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name=?1",
                [table],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
        };
        let has_table = has("audit_events").map_err(|source| StoreError::Open {
            path: display.clone(),
            source,
        })?;
        if !has_table {
            return Err(StoreError::Missing(format!(
                "{display} (the file has no audit_events table)"
            )));
        }
        // A file older than the instance column is read as is (readers never migrate): a
        // temporary view, which shadows the table for this connection only, adds the column.
        let has_instance: bool = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('audit_events') WHERE name = 'instance'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)?;
        if !has_instance {
            conn.execute_batch(&format!(
                "CREATE TEMP VIEW audit_events AS SELECT {}, NULL AS instance FROM main.audit_events",
                COLUMNS.trim_end_matches(", instance")
            ))?;
        }
        Ok(AuditReader {
            conn: Conn::sqlite(conn, path),
        })
    }

    pub(crate) fn on(conn: Conn) -> AuditReader {
        AuditReader { conn }
    }

    pub(crate) fn conn(&self) -> &Conn {
        &self.conn
    }

    /// Rows matching `filter`, oldest first.
    pub fn query(&self, filter: &QueryFilter) -> Result<Vec<AuditRow>, StoreError> {
        let dialect = self.conn.dialect();
        let mut clauses = Vec::new();
        let mut values: Vec<Val> = Vec::new();
        let mut bind = |clause: &str, v: String, clauses: &mut Vec<String>| {
            values.push(Val::Text(v));
            clauses.push(clause.replace('?', &format!("${}", values.len())));
        };
        if let Some(s) = &filter.since {
            bind("ts >= ?", s.clone(), &mut clauses);
        }
        if let Some(e) = &filter.effect {
            bind("effect = ?", e.to_ascii_lowercase(), &mut clauses);
        }
        if let Some(p) = &filter.principal {
            bind("principal = ?", p.clone(), &mut clauses);
        }
        if let Some(k) = &filter.kind {
            bind("kind = ?", k.clone(), &mut clauses);
        }
        if let Some(d) = &filter.decision_id {
            bind("decision_id = ?", d.clone(), &mut clauses);
        }
        if let Some(t) = &filter.tool {
            let pattern = if t.contains('/') { t.clone() } else { format!("*/{t}") };
            match dialect {
                Dialect::Sqlite => bind(
                    "(coalesce(server, '') || '/' || coalesce(tool, '')) GLOB ?",
                    pattern,
                    &mut clauses,
                ),
                Dialect::Postgres => bind(
                    "(coalesce(server, '') || '/' || coalesce(tool, '')) LIKE ? ESCAPE '\\'",
                    glob_to_like(&pattern),
                    &mut clauses,
                ),
            }
        }
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        match filter.limit {
            // The newest `limit` rows, still printed oldest first.
            Some(limit) => {
                values.push(Val::Int(limit.min(i64::MAX as u64) as i64));
                sql = format!(
                    "SELECT * FROM ({sql} ORDER BY seq DESC LIMIT ${}) AS newest ORDER BY seq",
                    values.len()
                )
            }
            None => sql.push_str(" ORDER BY seq"),
        }
        self.conn.read(|db| {
            let rows = db.query(&sql, &values)?;
            Ok(rows
                .into_iter()
                .map(AuditRow::from_row)
                .collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Checks the log: the chain from the genesis hash (or the prune anchor), every checkpoint
    /// (a log that ends before one is truncated), and forwarded calls without outcome. Any
    /// edited, deleted, inserted or reordered row breaks the chain at that row's seq.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.verify_with(&VerifyOptions::default())
    }

    /// [`AuditReader::verify`], requiring checkpoints and anchors signed by `opts.public_keys`.
    pub fn verify_with(&self, opts: &VerifyOptions) -> Result<VerifyReport, StoreError> {
        self.conn.read(|db| crate::verify::run(db, opts))
    }

    /// Calls `each` on every row with `ts` at or after `since` (every row when `None`), oldest
    /// first, a page at a time (memory stays flat).
    pub fn for_each_since(&self, since: Option<&str>, mut each: impl FnMut(&AuditRow)) -> Result<u64, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE ts >= $1 AND seq > $2 ORDER BY seq LIMIT $3");
        let since = since.unwrap_or("");
        self.conn.read(|db| {
            let (mut after, mut n) = (i64::MIN, 0u64);
            loop {
                let page = db.query(&sql, &vals![since, after, PAGE])?;
                let fetched = page.len() as i64;
                for r in page {
                    let row = AuditRow::from_row(r)?;
                    after = row.seq;
                    each(&row);
                    n += 1;
                }
                if fetched < PAGE {
                    return Ok(n);
                }
            }
        })
    }

    /// Approvals created or decided at or after `since`, oldest first, at most `limit`; and how
    /// many there are in all. Empty on a database without approvals.
    pub fn approvals_since(&self, since: &str, limit: usize) -> Result<(Vec<Approval>, u64), StoreError> {
        self.conn.read(|db| {
            if !db.has_table("approvals")? {
                return Ok((Vec::new(), 0));
            }
            let filter = "WHERE created_at >= $1 OR decided_at >= $1 OR finished_at >= $1";
            let total = db.query_int(&format!("SELECT count(*) FROM approvals {filter}"), &vals![since])?;
            let rows = db.query(
                &format!(
                    "SELECT {} FROM approvals {filter} ORDER BY created_at, id LIMIT $2",
                    crate::approvals::COLUMNS
                ),
                &vals![since, limit.min(i64::MAX as usize) as i64],
            )?;
            let approvals = rows
                .into_iter()
                .map(crate::approvals::from_row)
                .collect::<Result<_, DbError>>()?;
            Ok((approvals, total as u64))
        })
    }

    /// Every API key (never a secret or its hash), oldest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.conn.read(|db| {
            if !db.has_table("api_keys")? {
                return Ok(Vec::new());
            }
            let rows = db.query(
                &format!(
                    "SELECT {} FROM api_keys ORDER BY created_at, id",
                    crate::keys::KEY_COLUMNS
                ),
                &[],
            )?;
            Ok(rows
                .into_iter()
                .map(crate::keys::key_from_row)
                .collect::<Result<_, DbError>>()?)
        })
    }

    /// Every tool pin, by server then tool.
    pub fn pins(&self) -> Result<Vec<Pin>, StoreError> {
        self.conn.read(|db| {
            if !db.has_table("tool_pins")? {
                return Ok(Vec::new());
            }
            let rows = db.query(
                &format!(
                    "SELECT {} FROM tool_pins ORDER BY server, tool",
                    crate::pins::PIN_COLUMNS
                ),
                &[],
            )?;
            Ok(rows
                .into_iter()
                .map(crate::pins::pin_from_row)
                .collect::<Result<_, DbError>>()?)
        })
    }

    /// Every checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<crate::Checkpoint>, StoreError> {
        Ok(self.conn.read(crate::checkpoint::list)?)
    }

    /// Every sink cursor.
    pub fn sink_cursors(&self) -> Result<Vec<crate::SinkCursor>, StoreError> {
        Ok(self.conn.read(crate::cursors::list)?)
    }

    /// The newest row's seq, 0 for an empty log.
    pub fn head_seq(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .read(|db| db.query_int("SELECT coalesce(max(seq), 0) FROM audit_events", &[]))?)
    }

    pub fn stats(&self) -> Result<Stats, StoreError> {
        let mut s = Stats::default();
        let mut r = self
            .conn
            .read(|db| db.query_one("SELECT count(*), min(ts), max(ts) FROM audit_events", &[]))?;
        s.events = r.int(0)?.max(0) as u64;
        s.first_ts = r.opt_text(1)?;
        s.last_ts = r.opt_text(2)?;
        s.by_kind = self.group("kind", "TRUE")?;
        s.by_effect = self.group("effect", "TRUE")?;
        // Approval transitions repeat their call's risk: risks are counted over decisions only.
        s.by_risk = self.group("risk", "kind = 'decision'")?;
        s.by_outcome = self.group("outcome", "TRUE")?;
        s.top_tools = self.top(
            "coalesce(server, '?') || '/' || coalesce(tool, '?')",
            "kind = 'decision'",
        )?;
        s.top_principals = self.top("principal", "kind = 'decision' AND principal IS NOT NULL")?;
        Ok(s)
    }

    fn group(&self, column: &str, filter: &str) -> Result<BTreeMap<String, u64>, StoreError> {
        self.pairs(&format!(
            "SELECT {column}, count(*) FROM audit_events WHERE {column} IS NOT NULL AND {filter} GROUP BY {column}"
        ))
        .map(|v| v.into_iter().collect())
    }

    fn top(&self, expr: &str, filter: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.pairs(&format!(
            "SELECT {expr} AS k, count(*) AS n FROM audit_events WHERE {filter} GROUP BY k ORDER BY n DESC, k LIMIT 10"
        ))
    }

    fn pairs(&self, sql: &str) -> Result<Vec<(String, u64)>, StoreError> {
        self.conn.read(|db: &mut dyn Db| {
            let rows = db.query(sql, &[])?;
            let mut out = Vec::with_capacity(rows.len());
            for mut r in rows {
                out.push((r.text(0)?, r.int(1)?.max(0) as u64));
            }
            Ok(out)
        })
    }
}

/// A GLOB pattern (`*`, `?`) as a LIKE pattern with `\` escaping LIKE's own wildcards.
fn glob_to_like(glob: &str) -> String {
    let mut out = String::with_capacity(glob.len() + 4);
    for c in glob.chars() {
        match c {
            '*' => out.push('%'),
            '?' => out.push('_'),
            '%' | '_' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs_become_like_patterns() {
        assert_eq!(super::glob_to_like("it-ops/ssh_*"), "it-ops/ssh\\_%");
        assert_eq!(super::glob_to_like("*/a?c%"), "%/a_c\\%");
    }
}
