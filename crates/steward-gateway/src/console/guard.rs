//! Who is looking at a console page or calling a `/v1` endpoint the console uses, and whether
//! a POST really came from a console form.

use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use steward_policy::Principal;
use steward_store::Actor;

use super::session::{COOKIE, Session, SignIn, cookie_value};
use super::{Console, view};
use crate::serve::AppState;

/// The header a script (the console's own JavaScript) sends its CSRF token in when it writes
/// through `/v1` with the session cookie.
pub const CSRF_HEADER: &str = "x-steward-csrf";

/// The console, or 404 when it is switched off.
pub fn console(st: &AppState) -> Result<&Arc<Console>, Response> {
    st.console.as_ref().ok_or_else(|| {
        (
            StatusCode::NOT_FOUND,
            "the console is switched off (console.enabled: false)",
        )
            .into_response()
    })
}

fn session_of(c: &Console, headers: &HeaderMap) -> Option<Arc<Session>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie_value(h, COOKIE))
        .and_then(|v| c.sessions.get(v))
}

/// A local path to come back to after signing in: anything else is `/ui`.
pub fn local_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/ui") && !n.starts_with("//") && !n.contains('\\') && n.len() <= 2048 => {
            n.to_string()
        }
        _ => "/ui".to_string(),
    }
}

/// The session behind a page request. Without one: the local operator gets one at once (under
/// `auth: none`), anyone else is sent to sign in and brought back.
pub fn page_session(st: &AppState, headers: &HeaderMap, uri: &Uri) -> Result<Arc<Session>, Response> {
    let c = console(st)?;
    if let Some(s) = session_of(c, headers) {
        return Ok(s);
    }
    let here = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/ui");
    if let Some(name) = c.operator() {
        let (_, cookie) = c.sessions.create(operator_principal(c, name), SignIn::Operator);
        tracing::info!(operator = %name, "console: local operator session started");
        return Err((
            [(header::SET_COOKIE, c.cookie(&cookie))],
            Redirect::to(&local_next(Some(here))),
        )
            .into_response());
    }
    let next = serde_urlencoded::to_string([("next", local_next(Some(here)))]).unwrap_or_default();
    Err(Redirect::to(&format!("/ui/signin?{next}")).into_response())
}

/// The local operator: not `anonymous`, and holding the approver and admin roles (they run the
/// gateway on their own machine).
fn operator_principal(c: &Console, name: &str) -> Principal {
    let mut p = Principal::new(name, "console-operator");
    p.roles = vec![c.cfg.approver_role.clone(), c.cfg.admin_role.clone()];
    p
}

/// The session behind a console form POST, once the request is shown to come from a console
/// page: same origin, and the session's CSRF token. Anything else is 403.
pub fn post_session(st: &AppState, headers: &HeaderMap, csrf: Option<&str>) -> Result<Arc<Session>, Response> {
    let c = console(st)?;
    same_origin(st, headers)?;
    let Some(s) = session_of(c, headers) else {
        return Err(forbidden(
            st,
            "you are not signed in (or your session ended): sign in again",
        ));
    };
    match csrf {
        Some(t) if c.sessions.csrf_ok(&s, t) => Ok(s),
        _ => Err(forbidden(
            st,
            "the form's CSRF token is missing or wrong: reload the page and try again",
        )),
    }
}

/// Refuses a request a page of another origin sent: its `Origin` must be this gateway's, and a
/// browser's `Sec-Fetch-Site` must not say cross-site.
pub fn same_origin(st: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let own = crate::serve::guard::base_url(st, headers);
    if let Some(origin) = headers.get(header::ORIGIN) {
        let ok = origin
            .to_str()
            .is_ok_and(|o| o.trim_end_matches('/').eq_ignore_ascii_case(own.trim_end_matches('/')));
        if !ok {
            return Err(forbidden(st, "this form was not sent from a page of this gateway"));
        }
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok())
        && !matches!(site, "same-origin" | "none")
    {
        return Err(forbidden(st, "this form was not sent from a page of this gateway"));
    }
    Ok(())
}

fn forbidden(st: &AppState, message: &str) -> Response {
    tracing::warn!(%message, "console: POST refused");
    view::error_page(st, None, StatusCode::FORBIDDEN, message)
}

/// The approver a principal is: their roles plus those the policy's `principals:` gives them.
pub fn actor(st: &AppState, p: &Principal) -> Actor {
    crate::serve::approvals_api::actor(st, p)
}

/// Whether `p` holds the console's admin role (may review tool pins).
pub fn is_admin(st: &AppState, p: &Principal) -> bool {
    st.console
        .as_ref()
        .is_some_and(|c| actor(st, p).roles.iter().any(|r| r == &c.cfg.admin_role))
}

/// Who calls a `/v1` endpoint: the bearer credential when there is one, else a console session
/// (the console's own scripts), else what the gateway's authentication says (anonymous or 401).
#[derive(Clone)]
pub struct ApiCaller {
    pub principal: Principal,
    pub session: Option<Arc<Session>>,
}

impl ApiCaller {
    /// A write with the session cookie must carry the session's CSRF token in
    /// [`CSRF_HEADER`]; a bearer credential cannot be sent by another site, so needs none.
    pub fn check_write(&self, st: &AppState, headers: &HeaderMap) -> Result<(), Response> {
        let Some(s) = &self.session else {
            return Ok(());
        };
        same_origin(st, headers)?;
        let token = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        match (console(st), token) {
            (Ok(c), Some(t)) if c.sessions.csrf_ok(s, t) => Ok(()),
            _ => Err((
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "application/json")],
                serde_json::json!({ "error": "forbidden", "message": format!("a write with the console session needs its CSRF token in {CSRF_HEADER}") })
                    .to_string(),
            )
                .into_response()),
        }
    }
}

pub async fn api_caller(st: &AppState, headers: &HeaderMap, resource: &str) -> Result<ApiCaller, Response> {
    if headers.get(header::AUTHORIZATION).is_none()
        && let Some(c) = st.console.as_ref()
        && let Some(s) = session_of(c, headers)
    {
        return Ok(ApiCaller {
            principal: s.principal.clone(),
            session: Some(s),
        });
    }
    let principal = crate::serve::guard::authenticate(st, headers, resource).await?;
    Ok(ApiCaller {
        principal,
        session: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(local_next(Some("/ui/approvals/apr-1")), "/ui/approvals/apr-1");
        for bad in [
            "https://evil.example/ui",
            "//evil.example/ui",
            "/v1/approvals",
            "/ui\\..",
            "",
        ] {
            assert_eq!(local_next(Some(bad)), "/ui", "{bad}");
        }
        assert_eq!(local_next(None), "/ui");
    }
}
