use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, params_from_iter, types::Value as SqlValue};
use serde::Serialize;

use crate::event::{AuditRow, COLUMNS};
use crate::verify::{VerifyOptions, VerifyReport};
use crate::{ApiKey, Approval, Pin, StoreError};

/// Read access to an audit database: query, verify, stats. Never writes.
pub struct AuditReader {
    pub(crate) conn: Connection,
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
        let has_table: bool =
            conn.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='audit_events'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|source| StoreError::Open {
                path: display.clone(),
                source,
            })? > 0;
        if !has_table {
            return Err(StoreError::Missing(format!(
                "{display} (the file has no audit_events table)"
            )));
        }
        Ok(AuditReader { conn })
    }

    /// Rows matching `filter`, oldest first.
    pub fn query(&self, filter: &QueryFilter) -> Result<Vec<AuditRow>, StoreError> {
        let mut clauses = Vec::new();
        let mut values: Vec<SqlValue> = Vec::new();
        let mut bind = |clause: &str, v: String, clauses: &mut Vec<String>| {
            values.push(SqlValue::Text(v));
            clauses.push(clause.replace('?', &format!("?{}", values.len())));
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
            bind(
                "(coalesce(server, '') || '/' || coalesce(tool, '')) GLOB ?",
                pattern,
                &mut clauses,
            );
        }
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        match filter.limit {
            // The newest `limit` rows, still printed oldest first.
            Some(limit) => sql = format!("SELECT * FROM ({sql} ORDER BY seq DESC LIMIT {limit}) ORDER BY seq"),
            None => sql.push_str(" ORDER BY seq"),
        }
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map(params_from_iter(values), AuditRow::from_sql)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Checks the log: the chain from the genesis hash (or the prune anchor), every checkpoint
    /// (a log that ends before one is truncated), and forwarded calls without outcome. Any
    /// edited, deleted, inserted or reordered row breaks the chain at that row's seq.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        self.verify_with(&VerifyOptions::default())
    }

    /// [`AuditReader::verify`], requiring checkpoints and anchors signed by `opts.public_keys`.
    pub fn verify_with(&self, opts: &VerifyOptions) -> Result<VerifyReport, StoreError> {
        crate::verify::run(&self.conn, opts)
    }

    /// Calls `each` on every row with `ts` at or after `since` (every row when `None`), oldest
    /// first, without holding them all in memory.
    pub fn for_each_since(&self, since: Option<&str>, mut each: impl FnMut(&AuditRow)) -> Result<u64, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COLUMNS} FROM audit_events WHERE ts >= ?1 ORDER BY seq"
        ))?;
        let mut rows = stmt.query(rusqlite::params![since.unwrap_or("")])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            each(&AuditRow::from_sql(r)?);
            n += 1;
        }
        Ok(n)
    }

    /// Approvals created or decided at or after `since`, oldest first, at most `limit`; and how
    /// many there are in all. Empty on a database without approvals.
    pub fn approvals_since(&self, since: &str, limit: usize) -> Result<(Vec<Approval>, u64), StoreError> {
        if !crate::schema::has_table(&self.conn, "approvals")? {
            return Ok((Vec::new(), 0));
        }
        let filter = "WHERE created_at >= ?1 OR decided_at >= ?1 OR finished_at >= ?1";
        let total: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM approvals {filter}"),
            rusqlite::params![since],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM approvals {filter} ORDER BY created_at, id LIMIT ?2",
            crate::approvals::COLUMNS
        ))?;
        let rows = stmt.query_map(
            rusqlite::params![since, limit.min(i64::MAX as usize) as i64],
            crate::approvals::from_row,
        )?;
        Ok((rows.collect::<Result<_, _>>()?, total as u64))
    }

    /// Every API key (never a secret or its hash), oldest first.
    pub fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        if !crate::schema::has_table(&self.conn, "api_keys")? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(
            "SELECT id, name, principal, roles, created_at, expires_at, revoked_at FROM api_keys ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ApiKey {
                id: r.get(0)?,
                name: r.get(1)?,
                principal: r.get(2)?,
                roles: crate::keys::parse_roles(&r.get::<_, String>(3)?),
                created: r.get(4)?,
                expires: r.get(5)?,
                revoked: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every tool pin, by server then tool.
    pub fn pins(&self) -> Result<Vec<Pin>, StoreError> {
        if !crate::schema::has_table(&self.conn, "tool_pins")? {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM tool_pins ORDER BY server, tool",
            crate::pins::PIN_COLUMNS
        ))?;
        let rows = stmt.query_map([], crate::pins::pin_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<crate::Checkpoint>, StoreError> {
        crate::checkpoint::list(&self.conn)
    }

    /// Every sink cursor.
    pub fn sink_cursors(&self) -> Result<Vec<crate::SinkCursor>, StoreError> {
        crate::cursors::list(&self.conn)
    }

    /// The newest row's seq, 0 for an empty log.
    pub fn head_seq(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(seq), 0) FROM audit_events", [], |r| r.get(0))?)
    }

    pub fn stats(&self) -> Result<Stats, StoreError> {
        let mut s = Stats::default();
        let (events, first, last): (i64, Option<String>, Option<String>) =
            self.conn
                .query_row("SELECT count(*), min(ts), max(ts) FROM audit_events", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
        s.events = events as u64;
        s.first_ts = first;
        s.last_ts = last;
        s.by_kind = self.group("kind", "1")?;
        s.by_effect = self.group("effect", "1")?;
        // Approval transitions repeat their call's risk: risks are counted over decisions only.
        s.by_risk = self.group("risk", "kind = 'decision'")?;
        s.by_outcome = self.group("outcome", "1")?;
        s.top_tools = self.top(
            "coalesce(server, '?') || '/' || coalesce(tool, '?')",
            "kind = 'decision'",
        )?;
        s.top_principals = self.top("principal", "kind = 'decision' AND principal IS NOT NULL")?;
        Ok(s)
    }

    fn group(&self, column: &str, filter: &str) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {column}, count(*) FROM audit_events WHERE {column} IS NOT NULL AND {filter} GROUP BY {column}"
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn top(&self, expr: &str, filter: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {expr} AS k, count(*) AS n FROM audit_events WHERE {filter} GROUP BY k ORDER BY n DESC, k LIMIT 10"
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
