//! Signing in and out: an API key typed into a form, or the OIDC authorization-code flow with
//! PKCE. Either way the credential is checked by the gateway's authenticator, exactly as on
//! `/mcp` and `/v1`; the console keeps only who it was and their roles, never the credential.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::guard::{self, local_next, same_origin};
use super::session::{SignIn, cookie_value};
use super::view::{self, Layout};
use crate::serve::AppState;

/// The cookie that binds an OIDC sign-in to the browser that started it (`SameSite=Lax`: it
/// must come back on the issuer's redirect).
const LOGIN_COOKIE: &str = "steward_console_login";

#[derive(Template)]
#[template(path = "console/signin.html")]
struct SignInPage {
    layout: Layout,
    next: String,
    api_keys: bool,
    oidc: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "console/continue.html")]
struct ContinuePage {
    layout: Layout,
    next: String,
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

fn signin_page(st: &AppState, next: String, error: Option<String>, status: StatusCode) -> Response {
    let c = st.console.as_ref();
    let page = SignInPage {
        layout: Layout::new(st, None, "signin", "Sign in"),
        next,
        api_keys: st.auth.accepts_api_keys(),
        oidc: c.and_then(|c| c.oidc.as_ref()).map(|o| o.issuer().to_string()),
        error,
    };
    view::render_status(&page, status)
}

pub async fn form(State(st): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let c = match guard::console(&st) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let next = local_next(q.next.as_deref());
    // The local operator needs no sign-in.
    if c.operator().is_some() {
        let uri: axum::http::Uri = next.parse().unwrap_or_else(|_| axum::http::Uri::from_static("/ui"));
        return match guard::page_session(&st, &headers, &uri) {
            Ok(_) => Redirect::to(&next).into_response(),
            Err(r) => r,
        };
    }
    let error = q.error.map(|e| e.chars().take(300).collect());
    signin_page(&st, next, error, StatusCode::OK)
}

#[derive(Deserialize, Default)]
struct KeyForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    next: Option<String>,
}

pub async fn api_key(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let c = match guard::console(&st) {
        Ok(c) => c.clone(),
        Err(r) => return r,
    };
    if let Err(r) = same_origin(&st, &headers) {
        return r;
    }
    let form: KeyForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let next = local_next(form.next.as_deref());
    let key = form.api_key.trim();
    if key.is_empty() {
        return signin_page(&st, next, Some("Enter an API key.".into()), StatusCode::BAD_REQUEST);
    }
    if !key.starts_with(steward_store::KEY_PREFIX) || !st.auth.accepts_api_keys() {
        return signin_page(
            &st,
            next,
            Some("That is not an API key this gateway accepts.".into()),
            StatusCode::UNAUTHORIZED,
        );
    }
    match st.auth.authenticate(Some(&format!("Bearer {key}"))).await {
        Ok(p) => {
            tracing::info!(principal = %p.id, "console: signed in with an API key");
            let (_, cookie) = c.sessions.create(p, SignIn::ApiKey);
            ([(header::SET_COOKIE, c.cookie(&cookie))], Redirect::to(&next)).into_response()
        }
        Err(e) => {
            tracing::info!(error = %e, "console: API key sign-in refused");
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            signin_page(&st, next, Some(format!("Sign-in refused: {e}")), status)
        }
    }
}

/// Where the issuer sends the browser back to.
fn redirect_uri(st: &AppState, headers: &HeaderMap, configured: Option<&str>) -> String {
    match configured {
        Some(u) => u.to_string(),
        None => format!("{}/ui/auth/callback", crate::serve::guard::base_url(st, headers)),
    }
}

pub async fn oidc_begin(State(st): State<Arc<AppState>>, headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let c = match guard::console(&st) {
        Ok(c) => c.clone(),
        Err(r) => return r,
    };
    let next = local_next(q.next.as_deref());
    let Some(oidc) = c.oidc.as_ref() else {
        return signin_page(
            &st,
            next,
            Some("OIDC sign-in is not configured (console.oidc).".into()),
            StatusCode::NOT_FOUND,
        );
    };
    let redirect = redirect_uri(&st, &headers, oidc.redirect_url());
    match oidc.begin(&redirect, next.clone()).await {
        Ok((url, state)) => {
            let cookie = format!(
                "{LOGIN_COOKIE}={state}; Path=/ui/auth; Max-Age=600; HttpOnly; SameSite=Lax{}",
                if c.secure { "; Secure" } else { "" }
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to(&url)).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "console: cannot start an OIDC sign-in");
            signin_page(
                &st,
                next,
                Some(format!("The identity provider cannot be reached: {e}")),
                StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    }
}

#[derive(Deserialize, Default)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

pub async fn oidc_callback(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<CallbackQuery>,
) -> Response {
    let c = match guard::console(&st) {
        Ok(c) => c.clone(),
        Err(r) => return r,
    };
    let Some(oidc) = c.oidc.as_ref() else {
        return signin_page(
            &st,
            "/ui".into(),
            Some("OIDC sign-in is not configured.".into()),
            StatusCode::NOT_FOUND,
        );
    };
    let refuse = |message: String| {
        tracing::info!(reason = %message, "console: OIDC sign-in refused");
        signin_page(&st, "/ui".into(), Some(message), StatusCode::UNAUTHORIZED)
    };
    if let Some(e) = q.error {
        let e: String = e.chars().filter(|c| c.is_ascii_graphic()).take(80).collect();
        return refuse(format!("The identity provider refused the sign-in ({e})."));
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return refuse("The identity provider's answer has no code.".into());
    };
    // The state must be the one this browser was given when it set out.
    let bound = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|h| cookie_value(h, LOGIN_COOKIE).map(str::to_string));
    let same = bound
        .as_deref()
        .is_some_and(|b| aws_lc_rs::constant_time::verify_slices_are_equal(b.as_bytes(), state.as_bytes()).is_ok());
    if !same {
        return refuse("This sign-in was not started in this browser; start again.".into());
    }
    let tokens = match oidc.finish(&state, &code).await {
        Ok(t) => t,
        Err(e) => return refuse(e),
    };
    let principal = match st.auth.authenticate(Some(&format!("Bearer {}", tokens.id_token))).await {
        Ok(p) => p,
        Err(e) => return refuse(format!("The ID token was refused: {e}")),
    };
    if super::oidc::nonce_of(&tokens.id_token).as_deref() != Some(tokens.nonce.as_str()) {
        return refuse("The ID token does not carry this sign-in's nonce.".into());
    }
    let mut principal = principal;
    // Identity providers often put roles in the access token only: take them when it verifies
    // as the same person.
    if let Some(access) = &tokens.access_token
        && let Ok(a) = st.auth.authenticate(Some(&format!("Bearer {access}"))).await
        && a.id == principal.id
    {
        for r in a.roles {
            if !principal.roles.contains(&r) {
                principal.roles.push(r);
            }
        }
    }
    tracing::info!(principal = %principal.id, "console: signed in with OIDC");
    let (_, cookie) = c.sessions.create(principal, SignIn::Oidc);
    // A page rather than a redirect: the browser arrived from the issuer's site, and a
    // SameSite=Strict cookie is only sent once it moves on from a page of ours.
    let page = ContinuePage {
        layout: Layout::new(&st, None, "signin", "Signed in"),
        next: tokens.next,
    };
    let html = match page.render() {
        Ok(h) => h,
        Err(_) => return view::error_page(&st, None, StatusCode::INTERNAL_SERVER_ERROR, "cannot render the page"),
    };
    let clear = format!("{LOGIN_COOKIE}=; Path=/ui/auth; Max-Age=0; HttpOnly; SameSite=Lax");
    let mut resp = Html(html).into_response();
    if let (Ok(a), Ok(b)) = (
        header::HeaderValue::from_str(&c.cookie(&cookie)),
        header::HeaderValue::from_str(&clear),
    ) {
        resp.headers_mut().append(header::SET_COOKIE, a);
        resp.headers_mut().append(header::SET_COOKIE, b);
    }
    resp
}

#[derive(Deserialize, Default)]
struct CsrfForm {
    #[serde(default)]
    csrf: Option<String>,
}

pub async fn signout(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let form: CsrfForm = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let s = match guard::post_session(&st, &headers, form.csrf.as_deref()) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(c) = st.console.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    c.sessions.end(&s.sid);
    tracing::info!(principal = %s.principal.id, "console: signed out");
    let target = if c.operator().is_some() {
        "/ui/signin?next=/ui"
    } else {
        "/ui/signin"
    };
    ([(header::SET_COOKIE, c.cookie(""))], Redirect::to(target)).into_response()
}
