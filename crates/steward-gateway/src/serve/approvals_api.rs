//! `/v1/approvals`: approvers list, read, approve and deny approvals over HTTP, authenticated
//! like every other request; the approver is the authenticated principal, with the roles their
//! credential carries plus those the policy's `principals:` gives them.
//!
//! GET  /v1/approvals[?state=pending]     → {"approvals": [...]} (those the caller asked for or may decide)
//! GET  /v1/approvals/{id}                → the approval
//! POST /v1/approvals/{id}/approve        {"reason"?: "..."} → {"approval": ..., "complete": bool}
//! POST /v1/approvals/{id}/deny           {"reason": "..."}  → {"approval": ...}
//!
//! The console's scripts call these with the session cookie instead of a bearer credential;
//! their writes carry the session's CSRF token. A browser asking `/v1/approvals/{id}` for HTML
//! (a link in a refusal or a webhook message) is sent to the console's page for it.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use steward_policy::Principal;
use steward_store::{Actor, Approval, ApprovalError, ApprovalState, MAX_LIST};

use super::guard;
use super::state::AppState;
use crate::console::ApiCaller;
use crate::pipeline::Approvals;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DecideBody {
    #[serde(default)]
    reason: Option<String>,
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn problem(status: StatusCode, error: &str, message: &str) -> Response {
    reply(status, json!({ "error": error, "message": message }))
}

/// The approver (authenticated by [`super::admit`]) and the approval flow; a write with the
/// console's cookie must carry its CSRF token.
fn caller(
    st: &AppState,
    headers: &HeaderMap,
    caller: &ApiCaller,
    write: bool,
) -> Result<(Actor, Arc<Approvals>), Response> {
    guard::check_origin(st, headers)?;
    if write {
        caller.check_write(st, headers)?;
    }
    let principal = &caller.principal;
    let Some(approvals) = st.relay.approvals().cloned() else {
        return Err(problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "approvals are not enabled on this gateway",
        ));
    };
    Ok((actor(st, principal), approvals))
}

/// The approver a principal is (the same roles the approver endpoint and Slack use).
pub(crate) fn actor(st: &AppState, p: &Principal) -> Actor {
    crate::approver::actor(&st.relay.policy(), p)
}

/// Whether `actor` may see an approval on this gateway: [`visible`], or they hold the
/// console's viewer or admin role (who read every approval).
pub(crate) fn visible_to(st: &AppState, a: &Approval, actor: &Actor) -> bool {
    visible(a, actor)
        || st.console.as_ref().is_some_and(|c| {
            actor
                .roles
                .iter()
                .any(|r| r == &c.cfg.viewer_role || r == &c.cfg.admin_role)
        })
}

/// Whether `actor` may see an approval (its arguments included): they asked for it, or they
/// hold a role that may decide it. A principal without roles sees only its own.
pub(crate) fn visible(a: &Approval, actor: &Actor) -> bool {
    a.principal.trim().eq_ignore_ascii_case(actor.name.trim()) || actor.may_decide(a)
}

fn refused(e: ApprovalError) -> Response {
    let (status, code) = match &e {
        ApprovalError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        ApprovalError::SelfApproval { .. } | ApprovalError::MissingRole { .. } => (StatusCode::FORBIDDEN, "forbidden"),
        ApprovalError::NotPending { .. } | ApprovalError::Expired { .. } | ApprovalError::AlreadyApproved { .. } => {
            (StatusCode::CONFLICT, "conflict")
        }
        ApprovalError::InvalidInput(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        ApprovalError::Store(_) => {
            tracing::error!(error = %e, "approval store error");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the approval store is unavailable",
            );
        }
    };
    problem(status, code, &e.to_string())
}

fn body(bytes: &Bytes) -> Result<DecideBody, Response> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(DecideBody::default());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        problem(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("expected {{\"reason\": \"...\"}}: {e}"),
        )
    })
}

pub async fn list(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Extension(api): Extension<ApiCaller>,
    Query(q): Query<ListQuery>,
) -> Response {
    let (actor, approvals) = match caller(&st, &headers, &api, false) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let state = match q.state.as_deref().map(str::parse::<ApprovalState>).transpose() {
        Ok(s) => s,
        Err(e) => return problem(StatusCode::BAD_REQUEST, "invalid_request", &e),
    };
    match approvals.list(state, q.limit.unwrap_or(500).min(MAX_LIST)).await {
        Ok(all) => {
            let shown: Vec<&Approval> = all.iter().filter(|a| visible_to(&st, a, &actor)).collect();
            reply(StatusCode::OK, json!({ "approvals": shown }))
        }
        Err(e) => refused(e),
    }
}

/// Whether a request prefers HTML to JSON (a browser following a link).
fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    accept.contains("text/html") && !accept.contains("application/json")
}

/// A browser following an approval link (in a refusal or a webhook message) to
/// `GET /v1/approvals/{id}` is sent to the console's page for it, before authentication: the
/// page signs the person in, and the redirect says nothing the link did not.
pub(crate) fn browser_redirect(
    st: &AppState,
    method: &axum::http::Method,
    path: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    let id = path.strip_prefix("/v1/approvals/")?;
    if st.console.is_none() || method != axum::http::Method::GET || id.contains('/') || !wants_html(headers) {
        return None;
    }
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(64)
        .collect();
    Some(axum::response::Redirect::to(&format!("/ui/approvals/{id}")).into_response())
}

pub async fn show(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Extension(api): Extension<ApiCaller>,
    Path(id): Path<String>,
) -> Response {
    let (actor, approvals) = match caller(&st, &headers, &api, false) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match approvals.get(&id).await {
        Ok(Some(a)) if visible_to(&st, &a, &actor) => reply(StatusCode::OK, json!(a)),
        // Not yours to see is the same answer as not there.
        Ok(_) => refused(ApprovalError::NotFound(id)),
        Err(e) => refused(e),
    }
}

pub async fn approve(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Extension(api): Extension<ApiCaller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let (actor, approvals) = match caller(&st, &headers, &api, true) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let body = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let name = actor.name.clone();
    match approvals.approve(&id, actor, body.reason).await {
        Ok(done) => {
            tracing::info!(approval = %id, by = %name, complete = done.complete, "approval recorded over HTTP");
            reply(
                StatusCode::OK,
                json!({ "approval": done.approval, "complete": done.complete }),
            )
        }
        Err(e) => refused(e),
    }
}

pub async fn deny(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Extension(api): Extension<ApiCaller>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let (actor, approvals) = match caller(&st, &headers, &api, true) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let reason = match body(&bytes) {
        Ok(DecideBody { reason: Some(r) }) if !r.trim().is_empty() => r,
        Ok(_) => {
            return problem(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "a denial needs a reason: {\"reason\": \"...\"}",
            );
        }
        Err(r) => return r,
    };
    let name = actor.name.clone();
    match approvals.deny(&id, actor, reason).await {
        Ok(a) => {
            tracing::info!(approval = %id, by = %name, state = %a.state, "approval denied over HTTP");
            reply(StatusCode::OK, json!({ "approval": a }))
        }
        Err(e) => refused(e),
    }
}
