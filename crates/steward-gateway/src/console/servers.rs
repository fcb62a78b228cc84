//! `/ui/servers`: each upstream with its registry status, expiry, risk and data scope; drifted
//! tools with the pinned and offered definitions side by side, and for admins an approve button
//! (the same operation as `steward pins approve --fingerprint`).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::guard;
use super::view::{self, Layout};
use crate::serve::AppState;
use crate::serve::servers_api::{self, ServerView};

/// A drifted tool as the page shows it.
pub struct DriftView {
    pub tool: String,
    pub changed: String,
    pub pinned_fingerprint: String,
    pub current_fingerprint: String,
    pub pinned: String,
    pub current: String,
    pub findings: Vec<String>,
}

pub struct ServerRow {
    pub name: String,
    pub transport: String,
    pub target: String,
    pub served: bool,
    pub sandboxed: bool,
    pub status: String,
    pub version: String,
    pub expires: String,
    pub risk: String,
    pub data_scope: String,
    pub note: String,
    pub pins: usize,
    pub pinned_tools: String,
    pub drifted: Vec<DriftView>,
}

impl ServerRow {
    fn of(s: &ServerView) -> ServerRow {
        let r = s.registry.as_ref();
        let o = |v: Option<&Option<String>>| {
            v.and_then(|x| x.as_deref())
                .map(view::safe)
                .unwrap_or_else(|| "-".into())
        };
        ServerRow {
            name: view::safe(&s.name),
            transport: s.transport.clone(),
            target: view::safe(&s.target),
            served: s.served,
            sandboxed: s.sandboxed,
            status: r.map(|r| r.status.clone()).unwrap_or_else(|| "no registry".into()),
            version: o(r.map(|r| &r.version)),
            expires: o(r.map(|r| &r.expires)),
            risk: o(r.map(|r| &r.risk)),
            data_scope: o(r.map(|r| &r.data_scope)),
            note: r
                .and_then(|r| r.rationale.as_deref().or(r.reason.as_deref()))
                .map(view::safe)
                .unwrap_or_default(),
            pins: s.pins.len(),
            pinned_tools: s
                .pins
                .iter()
                .map(|p| view::safe(&p.tool))
                .collect::<Vec<_>>()
                .join(", "),
            drifted: s
                .drifted
                .iter()
                .map(|d| DriftView {
                    tool: view::safe(&d.diff.tool),
                    changed: if d.diff.changed.is_empty() {
                        "differs from its declared fingerprint".into()
                    } else {
                        format!("{} changed", d.diff.changed.join(", "))
                    },
                    pinned_fingerprint: d.diff.pinned_fingerprint.clone(),
                    current_fingerprint: d.diff.current_fingerprint.clone(),
                    pinned: if d.diff.pinned.is_null() {
                        "(declared by fingerprint only: the reviewed definition is unknown)".into()
                    } else {
                        view::safe(&view::pretty(&d.diff.pinned, 20_000))
                    },
                    current: view::safe(&view::pretty(&d.diff.current, 20_000)),
                    findings: d
                        .findings
                        .iter()
                        .map(|f| {
                            view::safe(&format!(
                                "{} {} at {}: {}",
                                f["severity"].as_str().unwrap_or(""),
                                f["kind"].as_str().unwrap_or(""),
                                f["location"].as_str().unwrap_or(""),
                                f["message"].as_str().unwrap_or("")
                            ))
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "console/servers.html")]
struct ServersPage {
    layout: Layout,
    servers: Vec<ServerRow>,
    registry: Option<String>,
    problems: Vec<String>,
    admin: bool,
    admin_role: String,
    done: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct PageQuery {
    #[serde(default)]
    done: Option<String>,
}

async fn render_page(
    st: &AppState,
    s: &super::Session,
    done: Option<String>,
    error: Option<(StatusCode, String)>,
) -> Response {
    let v = servers_api::servers(st).await;
    let (status, error) = match error {
        Some((status, e)) => (status, Some(e)),
        None => (StatusCode::OK, None),
    };
    let page = ServersPage {
        layout: Layout::new(st, Some(s), "servers", "Servers"),
        servers: v.servers.iter().map(ServerRow::of).collect(),
        registry: v.registry_source.clone(),
        problems: v.problems.clone(),
        admin: guard::is_admin(st, &s.principal),
        admin_role: st
            .console
            .as_ref()
            .map(|c| c.cfg.admin_role.clone())
            .unwrap_or_default(),
        done,
        error,
    };
    view::render_status(&page, status)
}

pub async fn page(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<PageQuery>,
) -> Response {
    let s = match guard::page_session(&st, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let done = q.done.map(|d| view::safe(&d.chars().take(300).collect::<String>()));
    render_page(&st, &s, done, None).await
}

#[derive(Deserialize, Default)]
struct ApproveForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    server: String,
    #[serde(default)]
    tool: String,
    #[serde(default)]
    fingerprint: String,
}

pub async fn approve(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: ApproveForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let s = match guard::post_session(&st, &headers, form.csrf.as_deref()) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !guard::is_admin(&st, &s.principal) {
        let role = st
            .console
            .as_ref()
            .map(|c| c.cfg.admin_role.clone())
            .unwrap_or_default();
        return render_page(
            &st,
            &s,
            None,
            Some((StatusCode::FORBIDDEN, format!("approving a tool pin needs role {role}"))),
        )
        .await;
    }
    match servers_api::approve_pin(&st, &form.server, &form.tool, &form.fingerprint, &s.principal.id).await {
        Ok(done) => {
            let msg = format!("{}/{} is now pinned at {}", done.server, done.tool, done.to);
            let q = serde_urlencoded::to_string([("done", msg)]).unwrap_or_default();
            Redirect::to(&format!("/ui/servers?{q}")).into_response()
        }
        Err(e) => render_page(&st, &s, None, Some((servers_api::pin_status(&e), e.to_string()))).await,
    }
}
