//! `POST /v1/decide`: the decision API, for services that consult Steward as a decoupled
//! authorization service. Every decision is audited like any other.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use steward_policy::{Principal, ToolAnnotations};

use super::admit::Admitted;
use super::guard;
use super::state::AppState;
use crate::pipeline::{ConnLink, DenyKind, Door, Outcome, Session, Use};

/// Role a service key needs to decide on behalf of another principal (named in the body).
pub const DECIDE_ON_BEHALF_ROLE: &str = "steward:decide-on-behalf";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideRequest {
    server: String,
    tool: String,
    #[serde(default)]
    args: serde_json::Value,
    #[serde(default)]
    annotations: Option<ToolAnnotations>,
    #[serde(default)]
    principal: Option<OnBehalf>,
    #[serde(default)]
    client: Option<String>,
    /// The caller enforces the answer (runs what is allowed): one-time grants are used up.
    #[serde(default)]
    enforce: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnBehalf {
    id: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
}

fn bad(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": "invalid_request", "message": message }).to_string(),
    )
        .into_response()
}

pub async fn decide(
    State(st): State<Arc<AppState>>,
    Extension(Admitted(caller)): Extension<Admitted>,
    body: Bytes,
) -> Response {
    let req: DecideRequest = match steward_mcp::json::parse_strict(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
    {
        Ok(r) => r,
        Err(e) => {
            return bad(&format!(
                "invalid decision request: {e}; expected {{\"server\", \"tool\", \"args\", optional \"principal\": {{\"id\", \"roles\"}}}}"
            ));
        }
    };
    if !req.args.is_object() && !req.args.is_null() {
        return bad("\"args\" must be a JSON object");
    }
    let on_behalf = caller.roles.iter().any(|r| r == DECIDE_ON_BEHALF_ROLE);
    let principal = match req.principal {
        None => caller.clone(),
        Some(p) if on_behalf => Principal {
            id: p.id,
            roles: p.roles,
            attributes: p.attributes,
            auth: format!("on-behalf-of:{}", caller.id),
        },
        Some(_) => {
            return (
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "application/json")],
                json!({ "error": "insufficient_scope", "message": format!("only callers with role {DECIDE_ON_BEHALF_ROLE} may name another principal") }).to_string(),
            )
                .into_response();
        }
    };
    let args = if req.args.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        req.args
    };
    // A door that runs what it is told (`steward hook --remote`) uses up one-time grants; a
    // consulting service only learns what would happen.
    let door = if req.enforce { Door::Hook } else { Door::DecideApi };
    let session = Session::new(req.server.clone(), door, format!("api:{}", caller.id))
        .with_server_info(guard::registry_info(&st, &req.server));
    if let Some(client) = req.client {
        session.note_client(client, None);
    }
    let ctx = session.ctx_for(&principal);
    // What the server says about the tool: what Steward learnt from its lists (fetched now when
    // the gateway serves it and has never seen the tool), never what the caller claims...
    let mut known = st.relay.catalog().get(&req.server, &req.tool);
    if known.is_none()
        && st.upstreams.config(&req.server).is_some()
        && let Ok(conn) = super::federation::ready_conn(&st, &req.server).await
    {
        let _ = st.relay.fetch_tools(&session, &ConnLink(conn), None).await;
        known = st.relay.catalog().get(&req.server, &req.tool);
    }
    // ...except that a trusted caller may make it riskier.
    if on_behalf && let Some(claimed) = &req.annotations {
        let mut state = known.as_deref().cloned().unwrap_or_default();
        let mut a = state.annotations.unwrap_or_default();
        if claimed.destructive_hint == Some(true) {
            a.destructive_hint = Some(true);
        }
        if claimed.read_only_hint == Some(false) {
            a.read_only_hint = Some(false);
        }
        state.annotations = Some(a);
        known = Some(Arc::new(state));
    }
    let call = Use {
        method: steward_mcp::Method::ToolsCall,
        target: req.tool.clone(),
        args,
    };
    let decided = st.relay.decide(&ctx, &call, known.as_deref(), false).await;
    let d = &decided.decision;
    let (message, approval) = match &decided.outcome {
        Outcome::Allowed { approval } => (serde_json::Value::Null, approval.clone()),
        Outcome::Denied { message, .. } => (json!(message), None),
        Outcome::Pending { ticket, message } => (json!(message), Some(ticket.id.clone())),
        Outcome::Ask => (serde_json::Value::Null, None),
    };
    let body = json!({
        "decision_id": decided.decision_id,
        // What is enforced: an allowed call whose audit row could not be written is denied.
        "effect": decided.outcome.enforced(),
        "policy_effect": d.effect.as_str(),
        "risk": d.risk.as_str(),
        "flags": d.flags,
        "rules": d.rule_ids,
        "reasons": d.reasons,
        "policy_version": d.policy_version,
        "approval_id": approval,
        "fail_closed": matches!(decided.outcome, Outcome::Denied { kind: DenyKind::FailClosed, .. }),
        "message": message,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
