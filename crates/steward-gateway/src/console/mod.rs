//! The console: `/ui` on the gateway, for approvers, security and compliance staff.
//!
//! Server-rendered HTML (askama templates in `templates/console/`), a few hundred lines of plain
//! JavaScript for live updates, no CDN: everything is embedded in the binary and works offline.
//! Every page carries a strict Content-Security-Policy; every state-changing form carries a
//! CSRF token bound to the session, and a POST without it, or from another origin, gets 403.
//! The data comes from the same functions (and `/v1` endpoints) scripts use, and every action
//! goes through the same store and relay calls as the CLI and the API: the console decides
//! nothing itself.
//!
//! ```text
//! GET  /ui                         overview: charts and alerts
//! GET  /ui/approvals[/{id}]        pending approvals and history; POST …/{id}/approve|deny
//! GET  /ui/activity[/{seq}]        the audit stream live (SSE from /v1/activity/stream); a row's explanation
//! GET  /ui/servers                 registry status and tool pins; POST /ui/servers/approve (admins)
//! GET  /ui/policy                  version and rules; POST /ui/policy/explain
//! GET  /ui/signin, POST /ui/signin (API key), GET /ui/auth/oidc, GET /ui/auth/callback, POST /ui/signout
//! ```

// Handlers return early with ready-made responses; boxing them would buy nothing.
#![allow(clippy::result_large_err)]

mod activity;
mod approvals;
mod assets;
pub mod config;
mod guard;
mod oidc;
mod overview;
mod policy;
mod servers;
pub mod session;
mod signin;
pub mod svg;
mod view;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::routing::{get, post};

pub use config::{ConsoleConfig, ConsoleOidc};
pub use guard::{ApiCaller, api_caller, is_admin};
pub use session::{Session, SignIn};

use crate::config::GatewayConfig;
use crate::serve::AppState;

/// The Content-Security-Policy of every console page.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's state in a running gateway.
pub struct Console {
    pub cfg: ConsoleConfig,
    pub sessions: session::Sessions,
    oidc: Option<oidc::Oidc>,
    /// Open live streams (`/v1/activity/stream`), bounded.
    pub streams: AtomicUsize,
    /// `Secure` on cookies: the gateway is reached over https.
    secure: bool,
    /// `auth: none`: the console opens as the local operator.
    operator: Option<String>,
}

impl Console {
    /// The console of a gateway with `cfg`, or `None` when `console.enabled` is false.
    pub fn new(cfg: &GatewayConfig) -> Option<Arc<Console>> {
        let c = &cfg.console;
        if !c.enabled {
            return None;
        }
        let oidc = c.oidc.as_ref().and_then(|o| {
            let issuer = match &o.issuer {
                Some(name) => cfg.auth.oidc.iter().find(|i| &i.issuer == name),
                None => cfg.auth.oidc.first(),
            }?;
            match oidc::Oidc::new(o.clone(), issuer.clone()) {
                Ok(client) => Some(client),
                Err(e) => {
                    tracing::error!(error = %e, "console: OIDC sign-in unavailable");
                    None
                }
            }
        });
        let operator = cfg
            .auth
            .none
            .then(|| c.operator.clone().unwrap_or_else(crate::identity::os_user))
            // Never the anonymous requester: the operator approves what local clients ask for.
            .map(|name| {
                if name.eq_ignore_ascii_case(crate::auth::ANONYMOUS) {
                    "local-operator".to_string()
                } else {
                    name
                }
            });
        Some(Arc::new(Console {
            cfg: c.clone(),
            sessions: session::Sessions::new(c.session_ttl),
            oidc,
            streams: AtomicUsize::new(0),
            secure: cfg
                .public_url
                .as_deref()
                .is_some_and(|u| u.to_ascii_lowercase().starts_with("https://")),
            operator,
        }))
    }

    /// The local operator's name, under `auth: none`.
    pub fn operator(&self) -> Option<&str> {
        self.operator.as_deref()
    }

    /// `Set-Cookie` for a session cookie value (empty: clear it).
    pub fn cookie(&self, value: &str) -> String {
        let age = if value.is_empty() {
            0
        } else {
            self.sessions.ttl().as_secs()
        };
        format!(
            "{}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict{}",
            session::COOKIE,
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// The console's routes (merged under `/ui` by [`crate::serve::router`]).
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/ui", get(overview::page))
        .route("/ui/", get(overview::page))
        .route("/ui/approvals", get(approvals::list))
        .route("/ui/approvals/{id}", get(approvals::show))
        .route("/ui/approvals/{id}/approve", post(approvals::approve))
        .route("/ui/approvals/{id}/deny", post(approvals::deny))
        .route("/ui/activity", get(activity::page))
        .route("/ui/activity/{seq}", get(activity::show))
        .route("/ui/servers", get(servers::page))
        .route("/ui/servers/approve", post(servers::approve))
        .route("/ui/policy", get(policy::page))
        .route("/ui/policy/explain", post(policy::explain))
        .route("/ui/signin", get(signin::form).post(signin::api_key))
        .route("/ui/auth/oidc", get(signin::oidc_begin))
        .route("/ui/auth/callback", get(signin::oidc_callback))
        .route("/ui/signout", post(signin::signout))
        .route("/ui/static/{file}", get(assets::file))
        .layer(axum::middleware::map_response(security_headers))
}

/// Headers every console response carries: no scripts but ours, no framing, no caching, and a
/// referrer only to this gateway (an OIDC code in a URL never leaks onwards; `no-referrer` would
/// make browsers send `Origin: null` on form posts).
async fn security_headers(mut resp: axum::response::Response) -> axum::response::Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_strict_and_secure_behind_https() {
        let mut cfg = GatewayConfig::embedded();
        let c = Console::new(&cfg).expect("on by default");
        let cookie = c.cookie("v");
        for part in [
            "steward_console=v",
            "HttpOnly",
            "SameSite=Strict",
            "Max-Age=28800",
            "Path=/",
        ] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert!(!cookie.contains("Secure"));
        assert!(c.cookie("").contains("Max-Age=0"));
        cfg.public_url = Some("https://gw.example".into());
        assert!(Console::new(&cfg).unwrap().cookie("v").ends_with("; Secure"));
        cfg.console.enabled = false;
        assert!(Console::new(&cfg).is_none());
    }

    #[test]
    fn the_operator_is_never_anonymous() {
        let mut cfg = GatewayConfig::embedded();
        cfg.console.operator = Some("ops-lead".into());
        assert_eq!(Console::new(&cfg).unwrap().operator(), Some("ops-lead"));
        cfg.console.operator = Some("Anonymous".into());
        assert_eq!(Console::new(&cfg).unwrap().operator(), Some("local-operator"));
        cfg.auth.none = false;
        assert_eq!(Console::new(&cfg).unwrap().operator(), None, "only under auth: none");
    }
}
