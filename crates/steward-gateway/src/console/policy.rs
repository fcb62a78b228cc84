//! `/ui/policy`: the running policy's version and rules, and a form that explains a
//! hypothetical call (principal, roles, tool, arguments) without running it.

use std::sync::Arc;
use std::time::SystemTime;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde::Deserialize;

use super::guard;
use super::view::{self, Layout};
use crate::serve::AppState;
use crate::serve::policy_api::{self, ExplainRequest, Explanation, PolicyView};

#[derive(Template)]
#[template(path = "console/policy.html")]
struct PolicyPage {
    layout: Layout,
    p: PolicyView,
    form: ExplainForm,
    x: Option<Explanation>,
    error: Option<String>,
}

/// The explain form, as posted (and shown again with the answer).
#[derive(Debug, Clone, Deserialize)]
pub struct ExplainForm {
    #[serde(default)]
    csrf: Option<String>,
    #[serde(default)]
    pub principal: String,
    #[serde(default)]
    pub roles: String,
    #[serde(default)]
    pub tool: String,
    #[serde(default)]
    pub args: String,
    #[serde(default)]
    pub method: String,
}

impl Default for ExplainForm {
    fn default() -> Self {
        ExplainForm {
            csrf: None,
            principal: String::new(),
            roles: String::new(),
            tool: "demo/run_command".into(),
            args: "{\"command\": \"rm -rf /\"}".into(),
            method: "tools/call".into(),
        }
    }
}

fn render(
    st: &AppState,
    s: &super::Session,
    form: ExplainForm,
    x: Option<Explanation>,
    error: Option<String>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut form = form;
    if form.principal.is_empty() {
        form.principal = s.principal.id.clone();
    }
    let page = PolicyPage {
        layout: Layout::new(st, Some(s), "policy", "Policy"),
        p: policy_api::policy_view(st),
        form,
        x,
        error,
    };
    view::render_status(&page, status)
}

pub async fn page(State(st): State<Arc<AppState>>, headers: HeaderMap, uri: Uri) -> Response {
    let s = match guard::page_session(&st, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    render(&st, &s, ExplainForm::default(), None, None)
}

pub async fn explain(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: ExplainForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let s = match guard::post_session(&st, &headers, form.csrf.as_deref()) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let args = if form.args.trim().is_empty() {
        Ok(serde_json::json!({}))
    } else {
        serde_json::from_str::<serde_json::Value>(&form.args).map_err(|e| format!("the arguments are not JSON: {e}"))
    };
    let args = match args {
        Ok(a) => a,
        Err(e) => return render(&st, &s, form, None, Some(e)),
    };
    let req = ExplainRequest {
        principal: Some(form.principal.clone()),
        roles: form
            .roles
            .split(',')
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty())
            .collect(),
        tool: form.tool.trim().to_string(),
        args: Some(args),
        method: Some(form.method.trim().to_string()).filter(|m| !m.is_empty()),
    };
    match policy_api::explain(&st, &req, SystemTime::now()) {
        Ok(x) => render(&st, &s, form, Some(x), None),
        Err(e) => render(&st, &s, form, None, Some(e)),
    }
}
