use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OpenFlags, params_from_iter, types::Value as SqlValue};
use serde::Serialize;

use crate::StoreError;
use crate::event::{AuditRow, COLUMNS};
use crate::schema::GENESIS;

/// Read access to an audit database: query, verify, stats. Never writes.
pub struct AuditReader {
    conn: Connection,
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

/// The result of checking the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub rows: u64,
    pub last_seq: i64,
    /// The first sequence number at which the chain is broken, and what is wrong there.
    pub broken: Option<(i64, String)>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.broken.is_none()
    }
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

    /// Recomputes the chain from the first row: any edited, deleted, inserted or reordered row
    /// breaks it at that row's sequence number.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM audit_events ORDER BY seq"))?;
        let mut rows = stmt.query([])?;
        let mut expected_seq = 1i64;
        let mut prev = GENESIS.to_string();
        let mut report = VerifyReport {
            rows: 0,
            last_seq: 0,
            broken: None,
        };
        while let Some(r) = rows.next()? {
            let row = match AuditRow::from_sql(r) {
                Ok(row) => row,
                Err(e) => {
                    let seq: i64 = r.get(0).unwrap_or(expected_seq);
                    report.broken = Some((seq, format!("row cannot be read as written: {e}")));
                    return Ok(report);
                }
            };
            report.rows += 1;
            report.last_seq = row.seq;
            if row.seq != expected_seq {
                let what = if row.seq > expected_seq {
                    format!("rows {expected_seq}..{} are missing (deleted)", row.seq - 1)
                } else {
                    "sequence numbers are out of order".to_string()
                };
                report.broken = Some((expected_seq, what));
                return Ok(report);
            }
            if row.prev_hash != prev {
                report.broken = Some((
                    row.seq,
                    "prev_hash does not match the previous row's hash (a row was removed, inserted or reordered)"
                        .into(),
                ));
                return Ok(report);
            }
            if row.compute_hash() != row.hash {
                report.broken = Some((
                    row.seq,
                    "row content does not match its hash (the row was edited)".into(),
                ));
                return Ok(report);
            }
            prev = row.hash;
            expected_seq += 1;
        }
        Ok(report)
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
