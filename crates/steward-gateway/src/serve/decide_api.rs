//! `POST /v1/decide`: the decision API, for services that consult Steward as a decoupled
//! authorization service. Every decision is audited like any other.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use steward_policy::{Principal, ToolAnnotations};

use super::guard;
use super::state::AppState;
use crate::pipeline::CallContext;

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

pub async fn decide(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let caller = match guard::authenticate(&st, &headers, "").await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let req: DecideRequest = match serde_json::from_slice(&body) {
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
    let principal = match req.principal {
        None => caller.clone(),
        Some(p) if caller.roles.iter().any(|r| r == DECIDE_ON_BEHALF_ROLE) => Principal {
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
    let ctx = CallContext {
        principal,
        server: req.server.clone(),
        server_info: Default::default(),
        door: "api",
        session: format!("api:{}", caller.id),
        client_name: req.client,
        client_version: None,
    };
    let verdict = st
        .pipeline
        .tool_call(&ctx, &req.tool, &args, req.annotations.as_ref())
        .await;
    let d = &verdict.decision;
    st.metrics.decision(d.effect.as_str(), d.risk.as_str());
    let body = json!({
        "decision_id": verdict.decision_id,
        // What is enforced: an allowed call whose audit row could not be written is denied.
        "effect": match (verdict.forward, d.effect) {
            (true, _) => "allow",
            (false, steward_policy::Effect::Allow) => "deny",
            (false, e) => e.as_str(),
        },
        "policy_effect": d.effect.as_str(),
        "risk": d.risk.as_str(),
        "flags": d.flags,
        "rules": d.rule_ids,
        "reasons": d.reasons,
        "policy_version": d.policy_version,
        "message": if verdict.forward { serde_json::Value::Null } else { json!(verdict.message) },
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
