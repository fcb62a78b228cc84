//! `/mcp/_approvals`: the approver's MCP server on the gateway (streamable HTTP, JSON answers,
//! no sessions). Authenticated by [`super::admit`] like every other endpoint; the tools act in
//! the name of the authenticated principal. Its answers are Steward's own (no upstream), so it
//! does not go through the relay's upstream path; what it changes is audited by the approval
//! transitions, and every refused attempt by [`crate::approver::Desk`].

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use steward_mcp::Message;

use super::admit::Admitted;
use super::guard;
use super::mcp::{is_stateless, rpc_error};
use super::state::AppState;
use crate::approver::{Channel, Desk, Via, mcp};

pub async fn post(
    State(st): State<Arc<AppState>>,
    Extension(Admitted(principal)): Extension<Admitted>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = guard::check_origin(&st, &headers) {
        return r;
    }
    let msg = match Message::parse(&body) {
        Ok(m) => m,
        Err(e) => return rpc_error(StatusCode::BAD_REQUEST, None, e.code(), &e.to_string()),
    };
    let stateless = is_stateless(&headers, &msg);
    let desk = Desk::new(st.relay.clone());
    let who = desk.approver(&principal);
    match mcp::answer(&desk, &who, &msg, stateless, &Via::new(Channel::Mcp)).await {
        Some(answer) => (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], answer).into_response(),
        // Notifications and responses get no answer.
        None => StatusCode::ACCEPTED.into_response(),
    }
}

/// There is no server-to-client stream and no session to end.
pub async fn no_stream() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "POST")],
        "the approver endpoint answers POST only (no stream, no sessions)",
    )
        .into_response()
}
