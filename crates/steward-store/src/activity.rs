//! Reads for live views of the audit log (the console and `/v1/activity`, `/v1/stats`): rows
//! after a sequence number, one row, and the counts an overview draws. Read-only, bounded.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params, params_from_iter, types::Value as SqlValue};
use serde::Serialize;

use crate::StoreError;
use crate::event::{AuditRow, COLUMNS};
use crate::reader::AuditReader;

/// At most this many rows come back from one read.
pub const MAX_ACTIVITY_ROWS: u32 = 1_000;
/// At most this many entries in each alert list (more are counted, not listed).
const MAX_ALERT_ROWS: usize = 50;

/// Which rows a live view shows. Empty fields match everything; values match exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ActivityFilter {
    pub principal: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub effect: Option<String>,
    pub risk: Option<String>,
    pub kind: Option<String>,
    pub approval_id: Option<String>,
    /// Indexed: a decision, its outcome and its approval's every transition share it.
    pub decision_id: Option<String>,
}

impl ActivityFilter {
    fn clauses(&self, values: &mut Vec<SqlValue>) -> Vec<String> {
        let mut out = Vec::new();
        let fields = [
            ("principal", &self.principal, false),
            ("server", &self.server, false),
            ("tool", &self.tool, false),
            ("effect", &self.effect, true),
            ("risk", &self.risk, false),
            ("kind", &self.kind, true),
            ("approval_id", &self.approval_id, false),
            ("decision_id", &self.decision_id, false),
        ];
        for (column, value, lower) in fields {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                let v = if lower { v.to_ascii_lowercase() } else { v.to_string() };
                values.push(SqlValue::Text(if column == "risk" {
                    v.to_ascii_uppercase()
                } else {
                    v
                }));
                out.push(format!("{column} = ?{}", values.len()));
            }
        }
        out
    }
}

/// Counts of one key (an effect, a risk) in one hour (`2026-01-31T14`, UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HourCount {
    pub hour: String,
    pub key: String,
    pub count: u64,
}

/// One row an alert points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRow {
    pub seq: i64,
    pub ts: String,
    pub principal: Option<String>,
    pub server: Option<String>,
    pub tool: Option<String>,
    pub reason: Option<String>,
}

/// Rows behind one kind of alert: how many in all, and the newest of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AlertRows {
    pub count: u64,
    pub rows: Vec<AlertRow>,
}

/// A principal denied more than the threshold within one hour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DenialBurst {
    pub principal: String,
    pub hour: String,
    pub denials: u64,
}

/// What an overview draws, over the rows at or after `since`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Overview {
    pub since: String,
    pub decisions: u64,
    pub by_hour_effect: Vec<HourCount>,
    pub by_hour_risk: Vec<HourCount>,
    pub top_denied_tools: Vec<(String, u64)>,
    pub top_denied_principals: Vec<(String, u64)>,
    pub calls_per_server: Vec<(String, u64)>,
    /// Seconds from request to decision of approvals decided by a person or a time-out.
    pub approval_waits: Vec<f64>,
    pub pending_approvals: u64,
    pub canary_hits: AlertRows,
    pub blocked_descriptions: AlertRows,
    pub drift_blocks: AlertRows,
    pub denial_bursts: Vec<DenialBurst>,
    /// More bursts than listed.
    pub denial_bursts_truncated: bool,
}

impl AuditReader {
    /// Rows with `seq > after` that match `filter`, oldest first, at most `limit`.
    pub fn after(&self, after: i64, filter: &ActivityFilter, limit: u32) -> Result<Vec<AuditRow>, StoreError> {
        let mut values = vec![SqlValue::Integer(after)];
        let mut clauses = vec!["seq > ?1".to_string()];
        clauses.extend(filter.clauses(&mut values));
        let sql = format!(
            "SELECT {COLUMNS} FROM audit_events WHERE {} ORDER BY seq LIMIT {}",
            clauses.join(" AND "),
            limit.min(MAX_ACTIVITY_ROWS)
        );
        self.rows(&sql, values)
    }

    /// The newest rows matching `filter` (with `seq < before` when given), newest first.
    pub fn newest(
        &self,
        filter: &ActivityFilter,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRow>, StoreError> {
        let mut values = Vec::new();
        let mut clauses = filter.clauses(&mut values);
        if let Some(b) = before {
            values.push(SqlValue::Integer(b));
            clauses.push(format!("seq < ?{}", values.len()));
        }
        let mut sql = format!("SELECT {COLUMNS} FROM audit_events");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", limit.min(MAX_ACTIVITY_ROWS)));
        self.rows(&sql, values)
    }

    /// The row with this sequence number.
    pub fn row(&self, seq: i64) -> Result<Option<AuditRow>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM audit_events WHERE seq = ?1"),
                params![seq],
                AuditRow::from_sql,
            )
            .optional()?)
    }

    /// The newest sequence number (0 for an empty log).
    pub fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(seq), 0) FROM audit_events", [], |r| r.get(0))?)
    }

    /// Counts over the rows at or after `since` (RFC 3339 UTC). A principal with more than
    /// `burst` denials in one hour is a denial burst.
    pub fn overview(&self, since: &str, burst: u64) -> Result<Overview, StoreError> {
        let decisions = "kind = 'decision' AND ts >= ?1";
        let denied = "kind = 'decision' AND effect = 'deny' AND ts >= ?1";
        let mut o = Overview {
            since: since.to_string(),
            ..Overview::default()
        };
        o.decisions = self.conn.query_row(
            &format!("SELECT count(*) FROM audit_events WHERE {decisions}"),
            [since],
            |r| r.get::<_, i64>(0),
        )? as u64;
        o.by_hour_effect = self.by_hour("effect", decisions, since)?;
        o.by_hour_risk = self.by_hour("risk", decisions, since)?;
        o.top_denied_tools = self.top_since("coalesce(server, '?') || '/' || coalesce(tool, '?')", denied, since)?;
        o.top_denied_principals = self.top_since("coalesce(principal, '?')", denied, since)?;
        o.calls_per_server = self.top_since("coalesce(server, '?')", decisions, since)?;
        o.canary_hits = self.alert_rows(&rule_is("steward:canary"), since)?;
        // Calls refused for the tool's description, and lists that left tools out for it.
        o.blocked_descriptions = self.alert_rows(
            &format!(
                "({} OR detail LIKE '%\"blocked\":[{{%')",
                rule_is("steward:tool-blocked")
            ),
            since,
        )?;
        o.drift_blocks = self.alert_rows(&rule_is("steward:tool-drift"), since)?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT coalesce(principal, '?'), substr(ts, 1, 13) AS h, count(*) AS n FROM audit_events WHERE {denied} \
             GROUP BY 1, h HAVING n > ?2 ORDER BY n DESC, h DESC LIMIT {}",
            MAX_ALERT_ROWS + 1
        ))?;
        let rows = stmt.query_map(params![since, burst as i64], |r| {
            Ok(DenialBurst {
                principal: r.get(0)?,
                hour: r.get(1)?,
                denials: r.get::<_, i64>(2)? as u64,
            })
        })?;
        o.denial_bursts = rows.collect::<Result<_, _>>()?;
        if o.denial_bursts.len() > MAX_ALERT_ROWS {
            o.denial_bursts.truncate(MAX_ALERT_ROWS);
            o.denial_bursts_truncated = true;
        }
        if self.has_table("approvals")? {
            let mut stmt = self.conn.prepare(
                "SELECT (julianday(decided_at) - julianday(created_at)) * 86400.0 FROM approvals \
                 WHERE decided_at IS NOT NULL AND created_at >= ?1 ORDER BY created_at DESC LIMIT 10000",
            )?;
            let waits = stmt.query_map([since], |r| r.get::<_, Option<f64>>(0))?;
            o.approval_waits = waits
                .filter_map(|w| w.ok().flatten())
                .filter(|w| w.is_finite() && *w >= 0.0)
                .collect();
            o.pending_approvals =
                self.conn
                    .query_row("SELECT count(*) FROM approvals WHERE state = 'pending'", [], |r| {
                        r.get::<_, i64>(0)
                    })? as u64;
        }
        Ok(o)
    }

    fn rows(&self, sql: &str, values: Vec<SqlValue>) -> Result<Vec<AuditRow>, StoreError> {
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map(params_from_iter(values), AuditRow::from_sql)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    fn by_hour(&self, column: &str, filter: &str, since: &str) -> Result<Vec<HourCount>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT substr(ts, 1, 13) AS h, coalesce({column}, '-') AS k, count(*) FROM audit_events WHERE {filter} \
             GROUP BY h, k ORDER BY h, k"
        ))?;
        let rows = stmt.query_map([since], |r| {
            Ok(HourCount {
                hour: r.get(0)?,
                key: r.get(1)?,
                count: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn top_since(&self, expr: &str, filter: &str, since: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {expr} AS k, count(*) AS n FROM audit_events WHERE {filter} GROUP BY k ORDER BY n DESC, k LIMIT 10"
        ))?;
        let rows = stmt.query_map([since], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Decision rows at or after `since` matching `condition` (SQL built from constants only).
    fn alert_rows(&self, condition: &str, since: &str) -> Result<AlertRows, StoreError> {
        let filter = format!("kind = 'decision' AND ts >= ?1 AND {condition}");
        let count: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM audit_events WHERE {filter}"),
            params![since],
            |r| r.get(0),
        )?;
        let mut stmt = self.conn.prepare(&format!(
            "SELECT seq, ts, principal, server, tool, reason FROM audit_events WHERE {filter} ORDER BY seq DESC LIMIT {MAX_ALERT_ROWS}"
        ))?;
        let rows = stmt.query_map(params![since], |r| {
            Ok(AlertRow {
                seq: r.get(0)?,
                ts: r.get(1)?,
                principal: r.get(2)?,
                server: r.get(3)?,
                tool: r.get(4)?,
                reason: r.get(5)?,
            })
        })?;
        Ok(AlertRows {
            count: count as u64,
            rows: rows.collect::<Result<_, _>>()?,
        })
    }

    fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
            [name],
            |r| r.get::<_, i64>(0),
        )? > 0)
    }
}

/// A condition on `rule_ids` (a JSON list of strings) naming one of Steward's own rule ids.
fn rule_is(rule: &'static str) -> String {
    format!("rule_ids LIKE '%\"{rule}\"%'")
}

/// Hours with their counts per key, oldest first, for charts: `hours` buckets ending with the
/// hour of `now` (`2026-01-31T14`), each with every key's count (0 when absent).
pub fn hourly_series(
    counts: &[HourCount],
    now: chrono::DateTime<chrono::Utc>,
    hours: u32,
) -> Vec<(String, BTreeMap<String, u64>)> {
    let mut out: Vec<(String, BTreeMap<String, u64>)> = (0..hours)
        .rev()
        .map(|back| {
            let t = now - chrono::Duration::hours(back as i64);
            (t.format("%Y-%m-%dT%H").to_string(), BTreeMap::new())
        })
        .collect();
    for c in counts {
        if let Some((_, m)) = out.iter_mut().find(|(h, _)| *h == c.hour) {
            *m.entry(c.key.clone()).or_default() += c.count;
        }
    }
    out
}
