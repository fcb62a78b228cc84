//! `/ui/approvals`: pending approvals (a new one appears without a reload), one approval with
//! its history, and approve/deny with a reason. Who may press which button is decided by the
//! store's own rules ([`steward_store::may_approve`]); the action goes through the relay's
//! approval flow, which wakes the held call.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde::Deserialize;
use steward_store::{Actor, Approval, ApprovalError, ApprovalState};

use super::guard::{self, actor};
use super::session::Session;
use super::view::{self, Layout};
use crate::serve::AppState;
use crate::serve::approvals_api::visible_to;

/// An approval as a page shows it.
pub struct Row {
    pub id: String,
    pub state: String,
    pub principal: String,
    pub target: String,
    pub risk: String,
    pub rules: String,
    pub reasons: Vec<String>,
    pub args: String,
    pub progress: String,
    pub voters: Vec<String>,
    pub required: String,
    pub created: String,
    pub expires: String,
    /// `12m 30s`, or `expired`.
    pub time_left: String,
    pub decided: String,
    pub decision_reason: String,
    pub mode: String,
    pub can_approve: bool,
    pub can_deny: bool,
    /// Why this person has no approve button (shown to them).
    pub why_not: String,
    pub own: bool,
}

impl Row {
    fn of(a: &Approval, who: &Actor) -> Row {
        let approve = steward_store::may_approve(a, who);
        let deny = steward_store::may_deny(a, who);
        let time_left = match view::seconds_until(&a.expires_at) {
            Some(s) if s > 0 && a.state == ApprovalState::Pending => view::span(s),
            Some(_) if a.state == ApprovalState::Pending => "expired".into(),
            _ => "-".into(),
        };
        Row {
            id: a.id.clone(),
            state: a.state.as_str().to_string(),
            principal: view::safe(&a.principal),
            target: view::safe(&a.target()),
            risk: a.risk.clone(),
            rules: if a.rule_ids.is_empty() {
                "-".into()
            } else {
                a.rule_ids.join(", ")
            },
            reasons: a.reasons.iter().map(|r| view::safe(r)).collect(),
            args: view::safe(&view::pretty(&a.args, 4000)),
            progress: a.progress(),
            voters: a
                .approvals
                .iter()
                .map(|v| {
                    format!(
                        "{} at {}{}",
                        view::safe(&v.by),
                        view::when(&v.at),
                        v.reason
                            .as_deref()
                            .map(|r| format!(": {}", view::safe(r)))
                            .unwrap_or_default()
                    )
                })
                .collect(),
            required: if a.required_roles.is_empty() {
                format!("{} approver(s)", a.required_count)
            } else {
                format!(
                    "{} approver(s) with role {}",
                    a.required_count,
                    a.required_roles.join(" or ")
                )
            },
            created: view::when(&a.created_at),
            expires: view::when(&a.expires_at),
            time_left,
            decided: match (&a.decided_by, &a.decided_at) {
                (Some(by), Some(at)) => format!("{} at {}", view::safe(by), view::when(at)),
                _ => String::new(),
            },
            decision_reason: a.decision_reason.as_deref().map(view::safe).unwrap_or_default(),
            mode: a.mode.clone(),
            can_approve: approve.is_ok(),
            can_deny: deny.is_ok(),
            why_not: approve.err().map(|e| e.to_string()).unwrap_or_default(),
            own: a.principal.eq_ignore_ascii_case(&who.name),
        }
    }
}

#[derive(Template)]
#[template(path = "console/approvals.html")]
struct ListPage {
    layout: Layout,
    pending: Vec<Row>,
    history: Vec<Row>,
    problem: Option<String>,
}

#[derive(Template)]
#[template(path = "console/approvals_pending.html")]
struct PendingFragment {
    layout: Layout,
    pending: Vec<Row>,
}

#[derive(Template)]
#[template(path = "console/approval.html")]
struct ShowPage {
    layout: Layout,
    a: Row,
    done: Option<String>,
    error: Option<String>,
    events: Vec<super::activity::RowView>,
}

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    fragment: Option<String>,
}

async fn visible_approvals(
    st: &AppState,
    who: &Actor,
    state: Option<ApprovalState>,
    limit: usize,
) -> Result<Vec<Approval>, String> {
    let Some(approvals) = st.relay.approvals() else {
        return Err("approvals are not enabled on this gateway".into());
    };
    let all = approvals.list(state, limit).await.map_err(|e| e.to_string())?;
    Ok(all.into_iter().filter(|a| visible_to(st, a, who)).collect())
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<ListQuery>,
) -> Response {
    let s = match guard::page_session(&st, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let who = actor(&st, &s.principal);
    let pending = visible_approvals(&st, &who, Some(ApprovalState::Pending), 500).await;
    if q.fragment.as_deref() == Some("pending") {
        let page = PendingFragment {
            layout: Layout::new(&st, Some(&s), "approvals", "Approvals"),
            pending: pending.unwrap_or_default().iter().map(|a| Row::of(a, &who)).collect(),
        };
        return view::render(&page);
    }
    let history = visible_approvals(&st, &who, None, 300).await;
    let problem = pending.as_ref().err().or(history.as_ref().err()).cloned();
    let page = ListPage {
        layout: Layout::new(&st, Some(&s), "approvals", "Approvals"),
        pending: pending.unwrap_or_default().iter().map(|a| Row::of(a, &who)).collect(),
        history: history
            .unwrap_or_default()
            .iter()
            .filter(|a| a.state != ApprovalState::Pending)
            .take(100)
            .map(|a| Row::of(a, &who))
            .collect(),
        problem,
    };
    view::render(&page)
}

#[derive(Deserialize, Default)]
pub struct ShowQuery {
    #[serde(default)]
    done: Option<String>,
}

async fn show_page(
    st: &AppState,
    s: &Session,
    id: &str,
    done: Option<String>,
    error: Option<(StatusCode, String)>,
) -> Response {
    let who = actor(st, &s.principal);
    let Some(approvals) = st.relay.approvals() else {
        return view::error_page(
            st,
            Some(s),
            StatusCode::SERVICE_UNAVAILABLE,
            "approvals are not enabled on this gateway",
        );
    };
    let a = match approvals.get(id).await {
        Ok(Some(a)) if visible_to(st, &a, &who) => a,
        // Not yours to see is the same answer as not there.
        Ok(_) | Err(ApprovalError::InvalidInput(_)) => {
            return view::error_page(
                st,
                Some(s),
                StatusCode::NOT_FOUND,
                &format!("no approval {}", view::safe(id)),
            );
        }
        Err(e) => return view::error_page(st, Some(s), StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    let events = super::activity::approval_events(st, &a.decision_id).await;
    let (status, error) = match error {
        Some((status, e)) => (status, Some(e)),
        None => (StatusCode::OK, None),
    };
    let page = ShowPage {
        layout: Layout::new(st, Some(s), "approvals", format!("Approval {}", a.id)),
        a: Row::of(&a, &who),
        done,
        error,
        events,
    };
    view::render_status(&page, status)
}

pub async fn show(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Response {
    let s = match guard::page_session(&st, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let done = q
        .done
        .filter(|d| matches!(d.as_str(), "approved" | "recorded" | "denied" | "withdrawn"));
    show_page(&st, &s, &id, done, None).await
}

#[derive(Deserialize, Default)]
struct DecideForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

fn refusal_status(e: &ApprovalError) -> StatusCode {
    match e {
        ApprovalError::NotFound(_) => StatusCode::NOT_FOUND,
        ApprovalError::SelfApproval { .. } | ApprovalError::MissingRole { .. } => StatusCode::FORBIDDEN,
        ApprovalError::NotPending { .. } | ApprovalError::Expired { .. } | ApprovalError::AlreadyApproved { .. } => {
            StatusCode::CONFLICT
        }
        ApprovalError::InvalidInput(_) => StatusCode::BAD_REQUEST,
        ApprovalError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

async fn decide(st: Arc<AppState>, headers: HeaderMap, id: String, body: Bytes, approve: bool) -> Response {
    let form: DecideForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let s = match guard::post_session(&st, &headers, form.csrf.as_deref()) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(approvals) = st.relay.approvals().cloned() else {
        return view::error_page(
            &st,
            Some(&s),
            StatusCode::SERVICE_UNAVAILABLE,
            "approvals are not enabled on this gateway",
        );
    };
    let who = actor(&st, &s.principal);
    // What the person may not see, they may not act on either.
    match approvals.get(&id).await {
        Ok(Some(a)) if visible_to(&st, &a, &who) => {}
        Ok(_) | Err(ApprovalError::InvalidInput(_)) => {
            return view::error_page(
                &st,
                Some(&s),
                StatusCode::NOT_FOUND,
                &format!("no approval {}", view::safe(&id)),
            );
        }
        Err(e) => return view::error_page(&st, Some(&s), StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
    let reason = form.reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    let name = who.name.clone();
    let outcome = if approve {
        approvals.approve(&id, who, reason).await.map(|done| {
            tracing::info!(approval = %id, by = %name, complete = done.complete, "approval recorded in the console");
            if done.complete { "approved" } else { "recorded" }
        })
    } else {
        let Some(reason) = reason else {
            let e = "a denial needs a reason: write one in the reason field".to_string();
            return show_page(&st, &s, &id, None, Some((StatusCode::BAD_REQUEST, e))).await;
        };
        approvals.deny(&id, who, reason).await.map(|a| {
            tracing::info!(approval = %id, by = %name, state = %a.state, "approval denied in the console");
            if a.state == ApprovalState::Cancelled {
                "withdrawn"
            } else {
                "denied"
            }
        })
    };
    match outcome {
        Ok(done) => Redirect::to(&format!("/ui/approvals/{id}?done={done}")).into_response(),
        Err(e) => {
            let status = refusal_status(&e);
            if let ApprovalError::Store(_) = e {
                tracing::error!(error = %e, "approval store error");
            }
            show_page(&st, &s, &id, None, Some((status, e.to_string()))).await
        }
    }
}

pub async fn approve(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide(st, headers, id, body, true).await
}

pub async fn deny(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    decide(st, headers, id, body, false).await
}
