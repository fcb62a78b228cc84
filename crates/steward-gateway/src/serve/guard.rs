//! Checks every request passes before it is read: Host and Origin (DNS rebinding), credentials.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use steward_policy::Principal;

use super::state::AppState;
use crate::auth::{self, AuthError};

/// Middleware: every route refuses requests a browser on another site could have produced.
pub async fn origin_layer(
    axum::extract::State(st): axum::extract::State<std::sync::Arc<AppState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Err(r) = check_origin(&st, req.headers()) {
        return r;
    }
    next.run(req).await
}

/// Refuses requests whose Host or Origin a browser on another site could have produced.
pub fn check_origin(st: &AppState, headers: &HeaderMap) -> Result<(), Response> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let host_name = strip_port(host);
    if !st.cfg.allowed_hosts.is_empty() {
        if !st
            .cfg
            .allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(host_name))
        {
            return Err(forbidden(&format!("Host '{host}' is not in allowed_hosts")));
        }
    } else if st.cfg.loopback() && !host.is_empty() && !is_loopback_name(host_name) {
        return Err(forbidden(&format!(
            "Host '{host}' is not a loopback name; a loopback gateway only answers localhost (set allowed_hosts to change this)"
        )));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let allowed = if !st.cfg.allowed_origins.is_empty() {
            st.cfg
                .allowed_origins
                .iter()
                .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
        } else {
            let origin_host = strip_port(
                origin
                    .split_once("://")
                    .map(|(_, h)| h)
                    .unwrap_or(origin)
                    .trim_end_matches('/'),
            );
            if st.cfg.loopback() {
                is_loopback_name(origin_host)
            } else {
                origin_host.eq_ignore_ascii_case(host_name)
            }
        };
        if !allowed {
            return Err(forbidden(&format!(
                "Origin '{origin}' is not allowed (see allowed_origins)"
            )));
        }
    }
    Ok(())
}

fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    host.rsplit_once(':')
        .map(|(h, p)| if p.chars().all(|c| c.is_ascii_digit()) { h } else { host })
        .unwrap_or(host)
}

fn is_loopback_name(h: &str) -> bool {
    h.eq_ignore_ascii_case("localhost") || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn forbidden(message: &str) -> Response {
    tracing::warn!(%message, "request refused");
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": "forbidden", "message": message }).to_string(),
    )
        .into_response()
}

/// Whether the registry (when configured) lets this server be served today, and what it says about
/// it; a refusal names the registry entry.
pub fn check_registry(st: &AppState, server: &str) -> Result<crate::pipeline::ServerInfo, Response> {
    let Some(registry) = &st.registry else {
        return Ok(Default::default());
    };
    match registry.servable_today(server) {
        Ok(s) => Ok(crate::pipeline::ServerInfo {
            version: s.version.map(str::to_string),
            data_scope: Some(s.data_scope.as_str().to_string()),
            risk: Some(s.risk),
            status: Some("approved".into()),
        }),
        Err(refused) => {
            tracing::warn!(server, status = %refused.status, "server refused by the registry");
            Err((
                StatusCode::FORBIDDEN,
                [(header::CONTENT_TYPE, "application/json")],
                steward_mcp::jsonrpc::error_response(
                    None,
                    steward_mcp::ErrorCode::InvalidRequest,
                    &format!("{} ({})", refused.message, refused.status),
                    None,
                ),
            )
                .into_response())
        }
    }
}

/// What the registry says about a server, servable or not (for the decision API, which answers
/// about any server): `server.status` is `unlisted` for a server the registry does not know.
pub fn registry_info(st: &AppState, server: &str) -> crate::pipeline::ServerInfo {
    match &st.registry {
        None => Default::default(),
        Some(r) => crate::pipeline::ServerInfo::from_registry(r, server),
    }
}

/// The base URL clients reach the gateway at.
pub fn base_url(st: &AppState, headers: &HeaderMap) -> String {
    if let Some(u) = &st.cfg.public_url {
        return u.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// Authenticates the caller; a refusal is a 401 (or 403) with the challenge clients follow. An
/// `Authorization` header that is not visible ASCII is a 400, never "no credentials".
pub async fn authenticate(st: &AppState, headers: &HeaderMap, resource_path: &str) -> Result<Principal, Response> {
    let authorization = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(s) => Some(s),
            Err(_) => {
                // Never "no credentials": a header that cannot be read is a bad request.
                tracing::info!("Authorization header is not visible ASCII; refused");
                return Err((
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "application/json")],
                    serde_json::json!({ "error": "invalid_request", "message": "the Authorization header is not visible ASCII" })
                        .to_string(),
                )
                    .into_response());
            }
        },
    };
    match st.auth.authenticate(authorization).await {
        Ok(p) => Ok(p),
        Err(e) => Err(unauthorized(st, headers, resource_path, &e)),
    }
}

pub fn unauthorized(st: &AppState, headers: &HeaderMap, resource_path: &str, e: &AuthError) -> Response {
    let metadata = format!(
        "{}/.well-known/oauth-protected-resource{resource_path}",
        base_url(st, headers)
    );
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::UNAUTHORIZED);
    tracing::info!(error = %e, "authentication failed");
    (
        status,
        [
            (header::WWW_AUTHENTICATE, auth::www_authenticate(&metadata, Some(e))),
            (header::CONTENT_TYPE, "application/json".to_string()),
        ],
        serde_json::json!({ "error": e.error_code().unwrap_or("invalid_request"), "message": e.to_string() })
            .to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert_eq!(strip_port("localhost:8787"), "localhost");
        assert_eq!(strip_port("[::1]:8787"), "::1");
        assert_eq!(strip_port("example.com"), "example.com");
        assert!(is_loopback_name("127.0.0.1"));
        assert!(is_loopback_name("::1"));
        assert!(!is_loopback_name("evil.example"));
    }
}
