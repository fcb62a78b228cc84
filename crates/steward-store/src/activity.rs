//! Reads for live views of the audit log (the console and `/v1/activity`, `/v1/stats`): rows
//! after a sequence number, one row, and the counts an overview draws. Read-only, bounded.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::StoreError;
use crate::db::{Db, Dialect, Val, vals};
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
    fn clauses(&self, values: &mut Vec<Val>) -> Vec<String> {
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
                values.push(Val::Text(if column == "risk" { v.to_ascii_uppercase() } else { v }));
                out.push(format!("{column} = ${}", values.len()));
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
        let mut values = vec![Val::Int(after)];
        let mut clauses = vec!["seq > $1".to_string()];
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
            values.push(Val::Int(b));
            clauses.push(format!("seq < ${}", values.len()));
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
        let sql = format!("SELECT {COLUMNS} FROM audit_events WHERE seq = $1");
        self.conn.read(|db: &mut dyn Db| {
            db.query_opt(&sql, &vals![seq])?
                .map(AuditRow::from_row)
                .transpose()
                .map_err(StoreError::from)
        })
    }

    /// The newest sequence number (0 for an empty log).
    pub fn last_seq(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .read(|db: &mut dyn Db| db.query_int("SELECT coalesce(max(seq), 0) FROM audit_events", &[]))?)
    }

    /// Counts over the rows at or after `since` (RFC 3339 UTC). A principal with more than
    /// `burst` denials in one hour is a denial burst.
    pub fn overview(&self, since: &str, burst: u64) -> Result<Overview, StoreError> {
        let decisions = "kind = 'decision' AND ts >= $1";
        let denied = "kind = 'decision' AND effect = 'deny' AND ts >= $1";
        let mut o = Overview {
            since: since.to_string(),
            ..Overview::default()
        };
        o.decisions = self.count(&format!("SELECT count(*) FROM audit_events WHERE {decisions}"), since)?;
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
        let bursts = format!(
            "SELECT coalesce(principal, '?') AS p, substr(ts, 1, 13) AS h, count(*) AS n FROM audit_events WHERE {denied} \
             GROUP BY p, h HAVING count(*) > $2 ORDER BY n DESC, h DESC LIMIT {}",
            MAX_ALERT_ROWS + 1
        );
        o.denial_bursts = self.conn.read(|db: &mut dyn Db| {
            let mut out = Vec::new();
            for mut r in db.query(&bursts, &vals![since, burst as i64])? {
                out.push(DenialBurst {
                    principal: r.text(0)?,
                    hour: r.text(1)?,
                    denials: r.int(2)?.max(0) as u64,
                });
            }
            Ok::<_, StoreError>(out)
        })?;
        if o.denial_bursts.len() > MAX_ALERT_ROWS {
            o.denial_bursts.truncate(MAX_ALERT_ROWS);
            o.denial_bursts_truncated = true;
        }
        let (waits, pending) = self.conn.read(|db: &mut dyn Db| {
            if !db.has_table("approvals")? {
                return Ok::<_, StoreError>((Vec::new(), 0));
            }
            // Times are RFC 3339 text on both engines.
            let wait = match db.dialect() {
                Dialect::Sqlite => "(julianday(decided_at) - julianday(created_at)) * 86400.0",
                Dialect::Postgres => {
                    "CAST(EXTRACT(EPOCH FROM (CAST(decided_at AS timestamptz) - CAST(created_at AS timestamptz))) AS DOUBLE PRECISION)"
                }
            };
            let rows = db.query(
                &format!(
                    "SELECT {wait} FROM approvals WHERE decided_at IS NOT NULL AND created_at >= $1 \
                     ORDER BY created_at DESC LIMIT 10000"
                ),
                &vals![since],
            )?;
            let waits = rows
                .iter()
                .filter_map(|r| r.opt_real(0).ok().flatten())
                .filter(|w| w.is_finite() && *w >= 0.0)
                .collect();
            let pending = db.query_int("SELECT count(*) FROM approvals WHERE state = 'pending'", &[])?;
            Ok((waits, pending.max(0) as u64))
        })?;
        o.approval_waits = waits;
        o.pending_approvals = pending;
        Ok(o)
    }

    fn count(&self, sql: &str, since: &str) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .read(|db: &mut dyn Db| db.query_int(sql, &vals![since]))?
            .max(0) as u64)
    }

    fn rows(&self, sql: &str, values: Vec<Val>) -> Result<Vec<AuditRow>, StoreError> {
        self.conn.read(|db: &mut dyn Db| {
            let rows = db.query(sql, &values)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                out.push(AuditRow::from_row(r)?);
            }
            Ok(out)
        })
    }

    fn by_hour(&self, column: &str, filter: &str, since: &str) -> Result<Vec<HourCount>, StoreError> {
        let sql = format!(
            "SELECT substr(ts, 1, 13) AS h, coalesce({column}, '-') AS k, count(*) FROM audit_events WHERE {filter} \
             GROUP BY h, k ORDER BY h, k"
        );
        self.conn.read(|db: &mut dyn Db| {
            let mut out = Vec::new();
            for mut r in db.query(&sql, &vals![since])? {
                out.push(HourCount {
                    hour: r.text(0)?,
                    key: r.text(1)?,
                    count: r.int(2)?.max(0) as u64,
                });
            }
            Ok(out)
        })
    }

    fn top_since(&self, expr: &str, filter: &str, since: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let sql = format!(
            "SELECT {expr} AS k, count(*) AS n FROM audit_events WHERE {filter} GROUP BY k ORDER BY n DESC, k LIMIT 10"
        );
        self.conn.read(|db: &mut dyn Db| {
            let mut out = Vec::new();
            for mut r in db.query(&sql, &vals![since])? {
                out.push((r.text(0)?, r.int(1)?.max(0) as u64));
            }
            Ok(out)
        })
    }

    /// Decision rows at or after `since` matching `condition` (SQL built from constants only).
    fn alert_rows(&self, condition: &str, since: &str) -> Result<AlertRows, StoreError> {
        let filter = format!("kind = 'decision' AND ts >= $1 AND {condition}");
        let count = self.count(&format!("SELECT count(*) FROM audit_events WHERE {filter}"), since)?;
        let sql = format!(
            "SELECT seq, ts, principal, server, tool, reason FROM audit_events WHERE {filter} ORDER BY seq DESC LIMIT {MAX_ALERT_ROWS}"
        );
        let rows = self.conn.read(|db: &mut dyn Db| {
            let mut out = Vec::new();
            for mut r in db.query(&sql, &vals![since])? {
                out.push(AlertRow {
                    seq: r.int(0)?,
                    ts: r.text(1)?,
                    principal: r.opt_text(2)?,
                    server: r.opt_text(3)?,
                    tool: r.opt_text(4)?,
                    reason: r.opt_text(5)?,
                });
            }
            Ok::<_, StoreError>(out)
        })?;
        Ok(AlertRows { count, rows })
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
