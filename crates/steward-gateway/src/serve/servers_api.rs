//! `/v1/servers`: the upstreams this gateway serves, what the registry says about each, and
//! their tool pins; admins accept a drifted tool (the same operation as `steward pins approve`).
//!
//! GET  /v1/servers                          → {"servers": [...], "registry": {...}?, "problems": [...]}
//! POST /v1/servers/{server}/pins/approve    {"tool": "...", "fingerprint": "sha256:..."}
//!                                           → the pin change (admins only: `console.admin_role`)

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use steward_store::{Pin, PinApproval, PinDiff, PinError, PinState, PinStore};

use super::state::AppState;
use crate::config::Transport;

/// What the registry says about a server.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RegistryView {
    /// `approved`, `pending_review`, `denied`, `expired`, `unlisted`.
    pub status: String,
    pub version: Option<String>,
    pub expires: Option<String>,
    pub data_scope: Option<String>,
    pub risk: Option<String>,
    pub approved_by: Option<String>,
    pub rationale: Option<String>,
    pub reason: Option<String>,
}

/// A drifted tool: the pinned and the offered definition, and what a description scan finds
/// in the offered one.
#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    #[serde(flatten)]
    pub diff: PinDiff,
    pub findings: Vec<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerView {
    pub name: String,
    /// `stdio`, `http`, `demo`, or `not served` for a registry entry the gateway does not serve.
    pub transport: String,
    /// The program (stdio, without arguments) or the URL's origin (http).
    pub target: String,
    pub served: bool,
    pub sandboxed: bool,
    pub registry: Option<RegistryView>,
    pub pins: Vec<Pin>,
    pub drifted: Vec<Drift>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServersView {
    pub servers: Vec<ServerView>,
    pub registry_source: Option<String>,
    pub problems: Vec<String>,
}

fn registry_view(r: &steward_registry::Registry, name: &str) -> RegistryView {
    let today = steward_registry::today();
    let mut v = RegistryView {
        status: r.policy_status(name, today).to_string(),
        ..RegistryView::default()
    };
    if let Some(a) = r.approved(name) {
        v.version = a.version.clone();
        v.expires = a.expires.map(|d| d.to_string());
        v.data_scope = Some(a.data_scope.as_str().to_string());
        v.risk = Some(a.risk.as_str().to_string());
        v.approved_by = a.approved_by.clone();
        v.rationale = a.rationale.clone();
    } else if let Some(d) = r.denied(name) {
        v.reason = d.reason.clone();
    } else if let Some(p) = r.pending(name) {
        v.reason = p.notes.clone();
    }
    v
}

fn origin_of(url: &str) -> String {
    reqwest::Url::parse(url)
        .map(|u| format!("{}{}", u.origin().ascii_serialization(), u.path()))
        .unwrap_or_else(|_| "(unreadable URL)".into())
}

/// Every served upstream (and every registry entry that is not served), with its pins.
pub async fn servers(st: &AppState) -> ServersView {
    let mut problems = Vec::new();
    let pins = match st.relay.catalog().pins().cloned() {
        Some(store) => match tokio::task::spawn_blocking(move || collect_pins(&store)).await {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                problems.push(format!("tool pins cannot be read: {e}"));
                Vec::new()
            }
            Err(e) => {
                problems.push(format!("tool pins cannot be read: {e}"));
                Vec::new()
            }
        },
        None => {
            problems.push("the tool pin store is unavailable: drift is not detected".into());
            Vec::new()
        }
    };
    let mut out: Vec<ServerView> = st
        .cfg
        .servers
        .values()
        .map(|s| {
            let (transport, target) = match &s.transport {
                Transport::Stdio { command, .. } => ("stdio", command.clone()),
                Transport::Http { url, .. } => ("http", origin_of(url)),
                Transport::Demo => ("demo", "built into steward".to_string()),
            };
            ServerView {
                name: s.name.clone(),
                transport: transport.into(),
                target,
                served: true,
                sandboxed: s.sandbox.is_some(),
                registry: st.registry.as_ref().map(|r| registry_view(r, &s.name)),
                pins: Vec::new(),
                drifted: Vec::new(),
            }
        })
        .collect();
    if let Some(r) = &st.registry {
        let names = r
            .approved
            .iter()
            .map(|a| a.name.as_str())
            .chain(r.pending_review.iter().map(|p| p.name.as_str()))
            .chain(r.denied.iter().map(|d| d.name.as_str()));
        for name in names {
            if !out.iter().any(|s| s.name == name) {
                out.push(ServerView {
                    name: name.to_string(),
                    transport: "not served".into(),
                    target: String::new(),
                    served: false,
                    sandboxed: false,
                    registry: Some(registry_view(r, name)),
                    pins: Vec::new(),
                    drifted: Vec::new(),
                });
            }
        }
    }
    for (pin, drift) in pins {
        let server = match out.iter_mut().find(|s| s.name == pin.server) {
            Some(s) => s,
            None => {
                // Pinned before and no longer configured: still shown, so its drift is reviewable.
                out.push(ServerView {
                    name: pin.server.clone(),
                    transport: "not served".into(),
                    target: String::new(),
                    served: false,
                    sandboxed: false,
                    registry: st.registry.as_ref().map(|r| registry_view(r, &pin.server)),
                    pins: Vec::new(),
                    drifted: Vec::new(),
                });
                out.last_mut().expect("just pushed")
            }
        };
        if let Some(d) = drift {
            server.drifted.push(d);
        }
        server.pins.push(pin);
    }
    ServersView {
        servers: out,
        registry_source: st.registry.as_ref().map(|r| r.source_name.clone()),
        problems,
    }
}

fn collect_pins(store: &PinStore) -> Result<Vec<(Pin, Option<Drift>)>, PinError> {
    let mut out = Vec::new();
    for p in store.list(None)? {
        let drift = if p.state == PinState::Drifted {
            match store.diff(&p.server, &p.tool) {
                Ok(diff) => Some(Drift {
                    findings: steward_scan::scan_tool(&diff.current)
                        .iter()
                        .map(|f| json!({"severity": f.severity.as_str(), "kind": f.kind, "location": f.location, "message": f.message}))
                        .collect(),
                    diff,
                }),
                // Approved or reverted a moment ago.
                Err(PinError::NotDrifted(_)) | Err(PinError::NotFound(_)) => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        out.push((p, drift));
    }
    Ok(out)
}

/// Accepts the offered definition of `server`/`tool` if it is still `fingerprint`, as `by`.
pub async fn approve_pin(
    st: &AppState,
    server: &str,
    tool: &str,
    fingerprint: &str,
    by: &str,
) -> Result<PinApproval, PinError> {
    let Some(store) = st.relay.catalog().pins().cloned() else {
        return Err(PinError::InvalidInput("the tool pin store is unavailable".into()));
    };
    let (server, tool, fingerprint, by) = (
        server.to_string(),
        tool.to_string(),
        fingerprint.to_string(),
        by.to_string(),
    );
    let done = tokio::task::spawn_blocking(move || store.approve_fingerprint(&server, &tool, &by, &fingerprint))
        .await
        .map_err(|e| PinError::InvalidInput(format!("the pin store task failed: {e}")))??;
    tracing::info!(server = %done.server, tool = %done.tool, by = %done.by, from = %done.from, to = %done.to, "tool pin approved");
    Ok(done)
}

/// The HTTP status for a pin refusal.
pub fn pin_status(e: &PinError) -> StatusCode {
    match e {
        PinError::NotFound(_) => StatusCode::NOT_FOUND,
        PinError::NotDrifted(_) | PinError::Moved { .. } => StatusCode::CONFLICT,
        PinError::InvalidInput(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn reply(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

pub async fn list(State(st): State<Arc<AppState>>) -> Response {
    reply(StatusCode::OK, json!(servers(&st).await))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    tool: String,
    fingerprint: String,
}

pub async fn approve(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::Extension(caller): axum::Extension<crate::console::ApiCaller>,
    Path(server): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = caller.check_write(&st, &headers) {
        return r;
    }
    if !crate::console::is_admin(&st, &caller.principal) {
        let role = st
            .console
            .as_ref()
            .map(|c| c.cfg.admin_role.clone())
            .unwrap_or_else(|| "steward:admin".into());
        return reply(
            StatusCode::FORBIDDEN,
            json!({"error": "forbidden", "message": format!("approving a tool pin needs role {role}")}),
        );
    }
    let body: ApproveBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": "invalid_request", "message": format!("expected {{\"tool\": \"...\", \"fingerprint\": \"sha256:...\"}}: {e}")}),
            );
        }
    };
    match approve_pin(&st, &server, &body.tool, &body.fingerprint, &caller.principal.id).await {
        Ok(done) => reply(StatusCode::OK, json!(done)),
        Err(e) => reply(pin_status(&e), json!({"error": "refused", "message": e.to_string()})),
    }
}
