//! `/v1/policy`: the running policy and a step-by-step explanation of a hypothetical call,
//! decided as the gateway would decide it but never run and never audited.
//!
//! GET  /v1/policy           → {"version", "source", "mode", "default", "rules": [...], "text"?}
//! POST /v1/policy/explain   {"principal"?, "roles"?: [...], "tool": "server/tool", "args"?: {...}, "method"?}
//!                           → the decision with its steps (as `steward policy explain --json`)

use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_policy::{Call, Policy, Principal};

use super::state::AppState;

/// The decision of one call, step by step.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub call: String,
    pub principal: String,
    pub effect: String,
    pub risk: String,
    pub flags: Vec<String>,
    pub rules: Vec<String>,
    pub reasons: Vec<String>,
    pub operation: Option<String>,
    /// `N of role, role` when the call needs approval and the policy names approvers.
    pub approvers: Option<String>,
    pub shadow: Option<String>,
    pub findings: Vec<Value>,
    pub steps: Vec<steward_policy::Step>,
    pub policy: String,
    pub policy_version: String,
}

/// What is asked to be explained.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainRequest {
    #[serde(default)]
    pub principal: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// `server/tool`.
    pub tool: String,
    #[serde(default)]
    pub args: Option<Value>,
    #[serde(default)]
    pub method: Option<String>,
}

/// Decides `req` against the running policy, as the gateway door would (the registry's word on
/// the server included), without running or recording anything.
pub fn explain(st: &AppState, req: &ExplainRequest, now: SystemTime) -> Result<Explanation, String> {
    let (server, tool) = req
        .tool
        .split_once('/')
        .filter(|(s, t)| !s.is_empty() && !t.is_empty())
        .ok_or_else(|| {
            format!(
                "the tool must be SERVER/TOOL, e.g. demo/run_command (got '{}')",
                req.tool
            )
        })?;
    let method = req.method.as_deref().unwrap_or("tools/call");
    if !steward_policy::GOVERNED_METHODS.contains(&method) {
        return Err(format!(
            "the method must be one of {}",
            steward_policy::GOVERNED_METHODS.join(", ")
        ));
    }
    let args = req.args.clone().unwrap_or_else(|| json!({}));
    if !args.is_object() {
        return Err("the arguments must be a JSON object, e.g. {\"command\": \"ls\"}".into());
    }
    let name = req
        .principal
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .unwrap_or("anonymous");
    let mut principal = Principal::new(name, "explain");
    principal.roles = req
        .roles
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    let info = super::guard::registry_info(st, server);
    Ok(explain_call(
        &st.relay.policy(),
        &principal,
        server,
        tool,
        method,
        &args,
        now,
        &info,
    ))
}

/// [`Policy::explain`] of one call at the gateway door.
#[allow(clippy::too_many_arguments)]
pub fn explain_call(
    policy: &Policy,
    principal: &Principal,
    server: &str,
    tool: &str,
    method: &str,
    args: &Value,
    now: SystemTime,
    info: &crate::pipeline::ServerInfo,
) -> Explanation {
    let call = Call {
        method,
        door: crate::pipeline::Door::Gateway.policy_name(),
        now,
        server_version: info.version.as_deref(),
        server_data_scope: info.data_scope.as_deref(),
        server_risk: info.risk,
        server_status: info.status.as_deref(),
        ..Call::tool_call(principal, server, tool, args)
    };
    let d = policy.explain(&call);
    Explanation {
        call: format!("{server}/{tool}"),
        principal: principal.id.clone(),
        effect: d.effect.as_str().to_string(),
        risk: d.risk.as_str().to_string(),
        flags: d.flags.clone(),
        rules: d.rule_ids.clone(),
        reasons: d.reasons.iter().map(|r| steward_scan::redact::redact_text(r)).collect(),
        operation: d.operation.clone(),
        approvers: d.approvers.as_ref().map(|a| {
            if a.roles.is_empty() {
                format!("{} approver(s)", a.count)
            } else {
                format!("{} of {}", a.count, a.roles.join(" or "))
            }
        }),
        shadow: d
            .shadow
            .as_ref()
            .map(|s| format!("would {} ({})", s.effect.as_str(), s.reasons.join("; "))),
        findings: d
            .findings
            .iter()
            .map(|f| json!({"flag": f.flag, "risk": f.risk.as_str(), "detail": steward_scan::redact::redact_text(&f.detail)}))
            .collect(),
        steps: d
            .steps
            .iter()
            .map(|s| steward_policy::Step {
                stage: s.stage,
                detail: steward_scan::redact::redact_text(&s.detail),
            })
            .collect(),
        policy: policy.source_name().to_string(),
        policy_version: d.policy_version.clone(),
    }
}

/// One rule as the policy file writes it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub id: String,
    pub effect: String,
    /// `match:` patterns, joined.
    pub tools: String,
    pub when: Option<String>,
    pub reason: Option<String>,
}

/// The running policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyView {
    pub version: String,
    pub source: String,
    pub mode: String,
    pub default: String,
    pub rules: Vec<RuleView>,
    /// The policy's text, when the file still holds the version in force.
    pub text: Option<String>,
    pub note: Option<String>,
}

pub fn policy_view(st: &AppState) -> PolicyView {
    let policy = st.relay.policy();
    let (text, note) = match &st.cfg.policy {
        None => (Some(steward_policy::BASELINE_POLICY_YAML.to_string()), None),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(t) if Policy::version_of(&t) == policy.version() => (Some(t), None),
            Ok(_) => (
                None,
                Some(format!(
                    "{} has changed since version {} was loaded; the running rules are not shown",
                    path.display(),
                    policy.version()
                )),
            ),
            Err(e) => (None, Some(format!("cannot read {}: {e}", path.display()))),
        },
    };
    PolicyView {
        version: policy.version().to_string(),
        source: policy.source_name().to_string(),
        mode: format!("{:?}", policy.mode()).to_ascii_lowercase(),
        default: policy.default_effect().as_str().to_string(),
        rules: text.as_deref().map(rules_of).unwrap_or_default(),
        text,
        note,
    }
}

/// The `rules:` of a policy text (already validated: it is the running policy).
fn rules_of(text: &str) -> Vec<RuleView> {
    let Ok(doc) = serde_saphyr::from_str::<Value>(text) else {
        return Vec::new();
    };
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    doc.get("rules")
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .map(|r| RuleView {
                    id: s(r.get("id")).unwrap_or_default(),
                    effect: s(r.get("effect")).unwrap_or_default(),
                    tools: match r.get("match") {
                        Some(Value::String(p)) => p.clone(),
                        Some(Value::Array(ps)) => ps.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
                        _ => "*".into(),
                    },
                    when: s(r.get("when")),
                    reason: s(r.get("reason")),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

pub async fn show(State(st): State<Arc<AppState>>) -> Response {
    reply(StatusCode::OK, json!(policy_view(&st)))
}

pub async fn explain_api(State(st): State<Arc<AppState>>, body: Bytes) -> Response {
    let req: ExplainRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "message": format!("expected {{\"tool\": \"server/tool\", \"args\": {{...}}}}: {e}")}),
            );
        }
    };
    match explain(&st, &req, SystemTime::now()) {
        Ok(x) => reply(StatusCode::OK, json!(x)),
        Err(m) => reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_request", "message": m}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_of_the_baseline() {
        let rules = rules_of(steward_policy::BASELINE_POLICY_YAML);
        assert!(
            rules
                .iter()
                .any(|r| r.id == "baseline-no-credential-access" && r.effect == "deny")
        );
        assert!(rules.iter().all(|r| r.tools == "*"));
    }
}
