//! `/v1/activity`: the audit log as it grows, for the console and for scripts.
//!
//! GET /v1/activity[?after=SEQ|before=SEQ&limit=N&principal=&server=&tool=&effect=&risk=&kind=]
//!     → {"rows": [...], "last_seq": N}   (after: oldest first; otherwise the newest, newest first)
//! GET /v1/activity/stream[?after=SEQ&filters]   text/event-stream: `event: row`, `id: SEQ`,
//!     `data: <row JSON>` for every new matching row (from `Last-Event-ID` on a reconnect)
//! GET /v1/activity/{seq}   → {"row": ..., "explanation": ...} (the decision replayed, step by step)
//!
//! The stream polls the log (once a second), is bounded in number and in length, and ends when
//! the gateway shuts down; a browser's EventSource reconnects and carries on from the last id.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_policy::Principal;
use steward_store::{ActivityFilter, AuditReader, AuditRow, StoreError};

use super::policy_api::{Explanation, explain_call};
use super::state::AppState;

/// Open streams at most; more get 503.
const MAX_STREAMS: usize = 64;
/// A stream ends after this (the browser reconnects), so none lives forever.
const STREAM_LIFETIME: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_secs(1);
const ROWS_PER_POLL: u32 = 200;

static STREAMS: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ActivityQuery {
    #[serde(default)]
    pub after: Option<i64>,
    #[serde(default)]
    pub before: Option<i64>,
    #[serde(default)]
    pub limit: Option<u32>,
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub tool: Option<String>,
    #[serde(default)]
    pub effect: Option<String>,
    #[serde(default)]
    pub risk: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
}

impl ActivityQuery {
    pub fn filter(&self) -> ActivityFilter {
        let clean = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| v.chars().take(256).collect())
        };
        ActivityFilter {
            principal: clean(&self.principal),
            server: clean(&self.server),
            tool: clean(&self.tool),
            effect: clean(&self.effect),
            risk: clean(&self.risk),
            kind: clean(&self.kind),
            approval_id: None,
            decision_id: None,
        }
    }
}

/// Runs `work` on a reader of the gateway's audit database, off the async threads.
pub async fn read<T: Send + 'static>(
    st: &AppState,
    work: impl FnOnce(&AuditReader) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, String> {
    let path = st.cfg.sqlite.clone();
    match tokio::task::spawn_blocking(move || AuditReader::open(&path).and_then(|r| work(&r))).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("the audit reader failed: {e}")),
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn unavailable(e: &str) -> Response {
    tracing::error!(error = %e, "audit log unreadable");
    reply(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "unavailable", "message": "the audit log cannot be read right now"}),
    )
}

pub async fn list(State(st): State<Arc<AppState>>, Query(q): Query<ActivityQuery>) -> Response {
    let filter = q.filter();
    let limit = q.limit.unwrap_or(100).clamp(1, steward_store::MAX_ACTIVITY_ROWS);
    let (after, before) = (q.after, q.before);
    let rows = read(&st, move |r| {
        let rows = match after {
            Some(a) => r.after(a, &filter, limit)?,
            None => r.newest(&filter, before, limit)?,
        };
        Ok((rows, r.last_seq()?))
    })
    .await;
    match rows {
        Ok((rows, last)) => reply(StatusCode::OK, json!({ "rows": rows, "last_seq": last })),
        Err(e) => unavailable(&e),
    }
}

/// A row and its decision explained.
#[derive(Debug, Clone, Serialize)]
pub struct RowExplained {
    pub row: AuditRow,
    /// For decision rows of a tool, resource or prompt.
    pub explanation: Option<Explanation>,
    /// How the explanation relates to what was recorded.
    pub note: Option<String>,
}

/// The decision of a recorded row, replayed: same principal, server, tool, method and (redacted)
/// arguments, at the row's time, against the policy running now.
pub fn explain_row(st: &AppState, row: &AuditRow) -> (Option<Explanation>, Option<String>) {
    if row.kind != "decision" {
        return (None, None);
    }
    let (Some(server), Some(tool)) = (row.server.as_deref(), row.tool.as_deref()) else {
        return (
            None,
            Some("this decision names no tool, so there is nothing to replay".into()),
        );
    };
    let method = row.method.as_deref().unwrap_or("tools/call");
    if !steward_policy::GOVERNED_METHODS.contains(&method) {
        return (None, None);
    }
    let args: Value = row
        .args
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or_else(|| json!({}));
    let principal = Principal::new(row.principal.clone().unwrap_or_else(|| "anonymous".into()), "audit");
    let at = chrono::DateTime::parse_from_rfc3339(&row.ts)
        .map(SystemTime::from)
        .unwrap_or_else(|_| SystemTime::now());
    let policy = st.relay.policy();
    let x = explain_call(
        &policy,
        &principal,
        server,
        tool,
        method,
        &args,
        at,
        &super::guard::registry_info(st, server),
    );
    let mut notes = vec![format!(
        "Replayed with the policy running now (version {}) on the recorded, redacted arguments; roles come from the policy's principals only, not from the caller's credential.",
        policy.version()
    )];
    if row.policy_version.as_deref().is_some_and(|v| v != policy.version()) {
        notes.push(format!(
            "The call was decided by policy version {}.",
            row.policy_version.as_deref().unwrap_or("?")
        ));
    }
    if row.effect.as_deref().is_some_and(|e| e != x.effect) {
        notes.push(format!(
            "The recorded effect was {} (a defence before the policy, a grant, a limit, or different roles or arguments decide differently).",
            row.effect.as_deref().unwrap_or("?")
        ));
    }
    (Some(x), Some(notes.join(" ")))
}

pub async fn row(State(st): State<Arc<AppState>>, Path(seq): Path<i64>) -> Response {
    match read(&st, move |r| r.row(seq)).await {
        Ok(Some(row)) => {
            let (explanation, note) = explain_row(&st, &row);
            reply(StatusCode::OK, json!(RowExplained { row, explanation, note }))
        }
        Ok(None) => reply(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "message": format!("no audit row {seq}")}),
        ),
        Err(e) => unavailable(&e),
    }
}

/// Counts an open stream; uncounts it when dropped.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        let n = STREAMS.fetch_add(1, Ordering::SeqCst);
        if n >= MAX_STREAMS {
            STREAMS.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        STREAMS.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Tail {
    _slot: Slot,
    reader: Option<AuditReader>,
    path: std::path::PathBuf,
    filter: ActivityFilter,
    after: i64,
    queue: std::collections::VecDeque<AuditRow>,
    until: Instant,
    stopping: tokio::sync::watch::Receiver<bool>,
}

impl Tail {
    /// The next row to send, or `None` when the stream ends (lifetime, shutdown, log gone).
    async fn next(&mut self) -> Option<AuditRow> {
        loop {
            if let Some(row) = self.queue.pop_front() {
                return Some(row);
            }
            if *self.stopping.borrow() || Instant::now() >= self.until {
                return None;
            }
            let reader = self.reader.take();
            let (path, filter, after) = (self.path.clone(), self.filter.clone(), self.after);
            let polled = tokio::task::spawn_blocking(move || {
                let reader = match reader {
                    Some(r) => r,
                    None => AuditReader::open(&path)?,
                };
                let rows = reader.after(after, &filter, ROWS_PER_POLL)?;
                Ok::<_, StoreError>((reader, rows))
            })
            .await;
            match polled {
                Ok(Ok((reader, rows))) => {
                    self.reader = Some(reader);
                    if let Some(last) = rows.last() {
                        self.after = last.seq;
                    }
                    self.queue.extend(rows);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "activity stream: cannot read the audit log; retrying"),
                Err(e) => tracing::warn!(error = %e, "activity stream: reader task failed; retrying"),
            }
            if self.queue.is_empty() {
                let pause = POLL.min(self.until.saturating_duration_since(Instant::now()));
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    changed = self.stopping.changed() => {
                        if changed.is_err() {
                            return None;
                        }
                    }
                }
            }
        }
    }
}

pub async fn stream(State(st): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<ActivityQuery>) -> Response {
    let resumed = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let after = match resumed.or(q.after) {
        Some(a) => a,
        None => match read(&st, |r| r.last_seq()).await {
            Ok(n) => n,
            Err(e) => return unavailable(&e),
        },
    };
    let Some(slot) = Slot::take() else {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "unavailable", "message": format!("{MAX_STREAMS} activity streams are open already")}),
        );
    };
    let tail = Tail {
        _slot: slot,
        reader: None,
        path: st.cfg.sqlite.clone(),
        filter: q.filter(),
        after,
        queue: Default::default(),
        until: Instant::now() + STREAM_LIFETIME,
        stopping: st.stopping.subscribe(),
    };
    let events = futures_util::stream::unfold(tail, |mut tail| async move {
        let row = tail.next().await?;
        let event = Event::default()
            .event("row")
            .id(row.seq.to_string())
            .json_data(&row)
            .unwrap_or_else(|_| Event::default().comment("unserialisable row"));
        Some((Ok::<_, Infallible>(event), tail))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
