//! HTTP answers: one JSON-RPC message as JSON, or a stream of them as server-sent events.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A JSON-RPC message as an HTTP 200 JSON answer.
pub fn json(bytes: Vec<u8>, extra: HeaderMap) -> Response {
    let mut resp = (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], bytes).into_response();
    resp.headers_mut().extend(extra);
    resp
}

pub fn sse_response(body: Body, extra: HeaderMap) -> Response {
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.extend(extra);
    resp
}
