//! `/ui/activity`: the audit log as it grows (the page's script follows
//! `/v1/activity/stream`), filtered by principal, server, tool, effect and risk; a row opens its
//! decision explained step by step, as `steward policy explain` prints it.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use steward_store::{ActivityFilter, AuditRow};

use super::guard;
use super::view::{self, Layout};
use crate::serve::AppState;
use crate::serve::activity_api::{ActivityQuery, explain_row, read};
use crate::serve::policy_api::Explanation;

/// A row as the page shows it (the script builds the same cells from the stream's JSON).
pub struct RowView {
    pub seq: i64,
    pub ts: String,
    pub kind: String,
    pub principal: String,
    pub target: String,
    pub effect: String,
    pub risk: String,
    pub outcome: String,
    pub reason: String,
    pub approval: String,
}

impl RowView {
    pub fn of(r: &AuditRow) -> RowView {
        let o = |v: &Option<String>| v.as_deref().map(view::safe).unwrap_or_default();
        let target = match (&r.server, &r.tool) {
            (Some(s), Some(t)) => format!("{}/{}", view::safe(s), view::safe(t)),
            (Some(s), None) => view::safe(s),
            _ => String::new(),
        };
        RowView {
            seq: r.seq,
            ts: view::when(&r.ts),
            kind: r.kind.clone(),
            principal: o(&r.principal),
            target,
            effect: o(&r.effect),
            risk: o(&r.risk),
            outcome: o(&r.outcome),
            reason: o(&r.reason).chars().take(300).collect(),
            approval: o(&r.approval_id),
        }
    }
}

#[derive(Template)]
#[template(path = "console/activity.html")]
struct ActivityPage {
    layout: Layout,
    rows: Vec<RowView>,
    last_seq: i64,
    f: ActivityFilter,
    /// The filters as a query string, for the stream.
    query: String,
    problem: Option<String>,
    effect_opts: Vec<(&'static str, &'static str)>,
    risk_opts: Vec<(&'static str, &'static str)>,
}

/// `(value, " selected" or "")` for a filter's options.
fn options(values: &[&'static str], chosen: Option<&str>) -> Vec<(&'static str, &'static str)> {
    values
        .iter()
        .map(|v| {
            (
                *v,
                if chosen.is_some_and(|c| c.eq_ignore_ascii_case(v)) {
                    " selected"
                } else {
                    ""
                },
            )
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/activity_row.html")]
struct RowPage {
    layout: Layout,
    row: RowView,
    fields: Vec<(&'static str, String)>,
    args: String,
    x: Option<Explanation>,
    note: Option<String>,
}

pub async fn page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<ActivityQuery>,
) -> Response {
    let s = match guard::page_session(&st, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let f = q.filter();
    let filter = f.clone();
    let (rows, last_seq, problem) = match read(&st, move |r| Ok((r.newest(&filter, None, 200)?, r.last_seq()?))).await {
        Ok((rows, last)) => (rows, last, None),
        Err(e) => {
            tracing::error!(error = %e, "console: the audit log cannot be read");
            (
                Vec::new(),
                0,
                Some("The audit log cannot be read right now (see the gateway log).".to_string()),
            )
        }
    };
    let pairs: Vec<(&str, &str)> = [
        ("principal", &f.principal),
        ("server", &f.server),
        ("tool", &f.tool),
        ("effect", &f.effect),
        ("risk", &f.risk),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_deref().map(|v| (k, v)))
    .collect();
    let page = ActivityPage {
        layout: Layout::new(&st, Some(&s), "activity", "Activity"),
        rows: rows.iter().map(RowView::of).collect(),
        last_seq,
        query: serde_urlencoded::to_string(&pairs).unwrap_or_default(),
        effect_opts: options(&["allow", "ask", "approve", "deny"], f.effect.as_deref()),
        risk_opts: options(&["LOW", "MEDIUM", "HIGH", "CRITICAL"], f.risk.as_deref()),
        f,
        problem,
    };
    view::render(&page)
}

pub async fn show(State(st): State<Arc<AppState>>, headers: HeaderMap, uri: Uri, Path(seq): Path<i64>) -> Response {
    let s = match guard::page_session(&st, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let row = match read(&st, move |r| r.row(seq)).await {
        Ok(Some(row)) => row,
        Ok(None) => return view::error_page(&st, Some(&s), StatusCode::NOT_FOUND, &format!("no audit row {seq}")),
        Err(e) => {
            tracing::error!(error = %e, "console: the audit log cannot be read");
            return view::error_page(
                &st,
                Some(&s),
                StatusCode::SERVICE_UNAVAILABLE,
                "the audit log cannot be read right now",
            );
        }
    };
    let (x, note) = explain_row(&st, &row);
    let o = |v: &Option<String>| v.as_deref().map(view::safe).unwrap_or_default();
    let fields = vec![
        ("decision", o(&row.decision_id)),
        ("client", o(&row.client)),
        ("session", o(&row.session)),
        ("door", o(&row.door)),
        ("method", o(&row.method)),
        ("operation", o(&row.operation)),
        ("flags", o(&row.flags)),
        ("rules", o(&row.rule_ids)),
        ("policy version", o(&row.policy_version)),
        ("approvers", o(&row.approvers)),
        (
            "duration",
            row.duration_ms.map(|d| format!("{d:.1} ms")).unwrap_or_default(),
        ),
        ("detail", o(&row.detail)),
        ("hash", row.hash.clone()),
    ];
    let args = row
        .args
        .as_deref()
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .map(|v| view::safe(&view::pretty(&v, 8000)))
        .unwrap_or_default();
    let page = RowPage {
        layout: Layout::new(&st, Some(&s), "activity", format!("Audit row {seq}")),
        row: RowView::of(&row),
        fields: fields.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
        args,
        x,
        note,
    };
    view::render(&page)
}

/// The audit rows of one approval (its decision, every transition, the outcome), oldest first.
pub async fn approval_events(st: &AppState, decision_id: &str) -> Vec<RowView> {
    // By decision id (indexed): the approval's events carry the decision's id.
    let filter = ActivityFilter {
        decision_id: Some(decision_id.to_string()),
        ..ActivityFilter::default()
    };
    match read(st, move |r| r.after(0, &filter, 200)).await {
        Ok(rows) => rows.iter().map(RowView::of).collect(),
        Err(e) => {
            tracing::warn!(error = %e, "console: cannot read an approval's audit rows");
            Vec::new()
        }
    }
}
