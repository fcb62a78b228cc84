//! Admission: a request that carries work is authenticated on its headers before a byte of its
//! body is read; only an authenticated request's body is read, up to `limits.max_body_bytes`
//! and within `limits.body_read_timeout`. Handlers take the principal from [`Admitted`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use steward_policy::Principal;

use super::guard;
use super::mcp::SESSION_HEADER;
use super::state::{AppState, session_label};
use crate::console::ApiCaller;

/// The principal a request authenticated as (set by [`admit`]).
#[derive(Clone)]
pub struct Admitted(pub Principal);

/// Middleware for every route that needs a principal. The endpoints the console's scripts call
/// also accept its session cookie ([`crate::console::api_caller`]); MCP and decide never do.
pub async fn admit(State(st): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let resource = resource_of(req.uri().path());
    let version = req.version();
    let admitted = if console_api(req.uri().path()) {
        crate::console::api_caller(&st, req.headers(), &resource).await
    } else {
        guard::authenticate(&st, req.headers(), &resource)
            .await
            .map(|principal| ApiCaller {
                principal,
                session: None,
            })
    };
    let caller = match admitted {
        Ok(c) => c,
        Err(refused) => {
            let named = named_sessions(&req);
            end_sessions(&st, named).await;
            // The body was never read: the connection cannot carry another request.
            return closing(refused, version);
        }
    };
    let principal = caller.principal.clone();
    let limits = &st.cfg.limits;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes as u64) {
        return closing(too_large(limits.max_body_bytes), version);
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(
        limits.body_read_timeout,
        axum::body::to_bytes(body, limits.max_body_bytes),
    )
    .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            tracing::info!(error = %e, principal = %principal.id, "request body refused");
            return closing(too_large(limits.max_body_bytes), version);
        }
        Err(_) => {
            tracing::info!(principal = %principal.id, "request body not received in time; connection closed");
            let answer = problem(
                StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                &format!(
                    "the request body did not arrive within {}s (limits.body_read_timeout)",
                    limits.body_read_timeout.as_secs_f32()
                ),
            );
            return closing(answer, version);
        }
    };
    parts.extensions.insert(Admitted(principal));
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// The `/v1` endpoints behind the console's pages.
fn console_api(path: &str) -> bool {
    [
        "/v1/approvals",
        "/v1/activity",
        "/v1/stats",
        "/v1/servers",
        "/v1/policy",
    ]
    .iter()
    .any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

/// The resource a refusal's `WWW-Authenticate` points clients at.
fn resource_of(path: &str) -> String {
    let mut parts = path.trim_start_matches('/').splitn(3, '/');
    match (parts.next(), parts.next()) {
        (Some("mcp" | "sse" | "messages"), Some(server)) if !server.is_empty() => format!("/mcp/{server}"),
        (Some("mcp"), _) => "/mcp".to_string(),
        (Some("v1"), Some("approvals")) => "/v1/approvals".to_string(),
        _ => String::new(),
    }
}

/// The sessions a request names: `Mcp-Session-Id`, or the legacy SSE transport's `sessionId`.
fn named_sessions(req: &Request) -> Vec<String> {
    let header = req.headers().get(SESSION_HEADER).and_then(|v| v.to_str().ok());
    let query = req.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|kv| kv.strip_prefix("sessionId="))
            .map(str::to_string)
    });
    header.map(str::to_string).into_iter().chain(query).collect()
}

/// A refused credential ends the sessions its request names, whichever endpoint opened them.
async fn end_sessions(st: &Arc<AppState>, named: Vec<String>) {
    for sid in named {
        if let Some(s) = st.sessions.remove(&sid) {
            tracing::info!(session = %session_label(&s.id), "credential refused; session ended");
            super::close_session(st, &s).await;
        }
        if st.federation.end(&sid) {
            st.metrics().session_closed();
            tracing::info!(session = %session_label(&sid), "credential refused; federated session ended");
        }
    }
}

fn too_large(max: usize) -> Response {
    problem(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        &format!("the request body is larger than {max} bytes (limits.max_body_bytes) or could not be read"),
    )
}

fn problem(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": error, "message": message }).to_string(),
    )
        .into_response()
}

/// Asks HTTP/1 to close the connection after this answer (HTTP/2 streams end on their own).
fn closing(mut r: Response, version: Version) -> Response {
    if version <= Version::HTTP_11 {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::resource_of;

    #[test]
    fn refusals_point_at_the_resource() {
        assert_eq!(resource_of("/mcp/demo"), "/mcp/demo");
        assert_eq!(resource_of("/messages/demo"), "/mcp/demo");
        assert_eq!(resource_of("/sse/demo"), "/mcp/demo");
        assert_eq!(resource_of("/mcp"), "/mcp");
        assert_eq!(resource_of("/v1/approvals/apr-1/approve"), "/v1/approvals");
        assert_eq!(resource_of("/v1/decide"), "");
    }
}
