//! JSON-RPC 2.0 envelopes over borrowed raw values.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// JSON-RPC and MCP error codes Steward answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ParseError,
    InvalidRequest,
    MethodNotFound,
    InvalidParams,
    InternalError,
    /// MCP 2026-07-28: the `Mcp-Method`/`Mcp-Name` headers do not match the body.
    HeaderMismatch,
    /// Steward: the upstream server is gone.
    UpstreamUnavailable,
    /// Steward refused a governed request (a resource read, a prompt): `data` carries the
    /// decision id.
    Refused,
    /// Steward withheld an answer it could not inspect.
    Withheld,
}

impl ErrorCode {
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::InternalError => -32603,
            ErrorCode::HeaderMismatch => -32020,
            // In the implementation-defined range -32000..-32019.
            ErrorCode::UpstreamUnavailable => -32001,
            ErrorCode::Refused => -32003,
            ErrorCode::Withheld => -32004,
        }
    }
}

/// Why a line is not a JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    #[error("invalid JSON-RPC message: {0}")]
    InvalidMessage(String),
}

impl ParseError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ParseError::InvalidJson(_) => ErrorCode::ParseError,
            ParseError::InvalidMessage(_) => ErrorCode::InvalidRequest,
        }
    }
}

/// What a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Request,
    Notification,
    Response,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    jsonrpc: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<&'a RawValue>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
    #[serde(borrow, default)]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

/// A parsed JSON-RPC message that borrows from the line it was read from.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub kind: Kind,
    pub id: Option<&'a RawValue>,
    pub method: Option<Cow<'a, str>>,
    pub params: Option<&'a RawValue>,
    pub result: Option<&'a RawValue>,
    pub error: Option<&'a RawValue>,
}

impl<'a> Message<'a> {
    /// Parses one line. Duplicate top-level keys are refused: a peer that takes the last
    /// `method` must never see a different method than the one Steward governed.
    pub fn parse(line: &'a [u8]) -> Result<Message<'a>, ParseError> {
        let first = line.iter().find(|b| !b.is_ascii_whitespace()).copied();
        match first {
            Some(b'{') => {}
            Some(b'[') => {
                // Validate it is JSON at all, to pick the right error code.
                serde_json::from_slice::<serde::de::IgnoredAny>(line)
                    .map_err(|e| ParseError::InvalidJson(e.to_string()))?;
                return Err(ParseError::InvalidMessage(
                    "batches are not supported by MCP; send one message per line".into(),
                ));
            }
            None => return Err(ParseError::InvalidJson("empty message".into())),
            _ => {
                serde_json::from_slice::<serde::de::IgnoredAny>(line)
                    .map_err(|e| ParseError::InvalidJson(e.to_string()))?;
                return Err(ParseError::InvalidMessage("a message must be a JSON object".into()));
            }
        }
        let env: Envelope<'a> = serde_json::from_slice(line).map_err(|e| {
            if e.is_data() {
                ParseError::InvalidMessage(e.to_string())
            } else {
                ParseError::InvalidJson(e.to_string())
            }
        })?;
        if env.jsonrpc.as_deref() != Some("2.0") {
            return Err(ParseError::InvalidMessage("\"jsonrpc\" must be \"2.0\"".into()));
        }
        // `"id": null` deserializes as None; treat it as absent (MCP forbids null ids).
        if let Some(id) = env.id {
            let t = id.get().as_bytes().first().copied();
            if !matches!(t, Some(b'"') | Some(b'-') | Some(b'0'..=b'9')) {
                return Err(ParseError::InvalidMessage("\"id\" must be a string or a number".into()));
            }
        }
        let method = match env.method {
            Some(m) => Some(
                serde_json::from_str::<Cow<'a, str>>(m.get())
                    .map_err(|_| ParseError::InvalidMessage("\"method\" must be a string".into()))?,
            ),
            None => None,
        };
        let kind = match (&method, env.id, env.result.is_some() || env.error.is_some()) {
            (Some(_), _, true) => {
                return Err(ParseError::InvalidMessage(
                    "a message cannot have both a method and a result or error".into(),
                ));
            }
            (Some(_), Some(_), false) => Kind::Request,
            (Some(_), None, false) => Kind::Notification,
            (None, Some(_), true) => {
                if env.result.is_some() && env.error.is_some() {
                    return Err(ParseError::InvalidMessage(
                        "a response cannot have both result and error".into(),
                    ));
                }
                Kind::Response
            }
            (None, None, true) => Kind::Response,
            (None, _, false) => {
                return Err(ParseError::InvalidMessage(
                    "a message needs a \"method\" (request) or a \"result\"/\"error\" (response)".into(),
                ));
            }
        };
        Ok(Message {
            kind,
            id: env.id,
            method,
            params: env.params,
            result: env.result,
            error: env.error,
        })
    }

    pub fn method(&self) -> Option<&str> {
        self.method.as_deref()
    }

    /// A key for matching a response to its request, whatever the id's JSON spelling.
    pub fn id_key(&self) -> Option<IdKey> {
        self.id.map(IdKey::from_raw)
    }

    /// The id exactly as the peer wrote it (JSON text), for answering it.
    pub fn raw_id(&self) -> Option<&'a str> {
        self.id.map(RawValue::get)
    }

    /// The method, classified.
    pub fn method_kind(&self) -> crate::Method {
        self.method().map(crate::Method::parse).unwrap_or(crate::Method::Other)
    }
}

/// A request id in canonical form, for comparing ids whatever their spelling: `7`, `7.0` and
/// `70e-1` are one id, `"7"` is another. Answers carry the client's own bytes, never this.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdKey(String);

impl IdKey {
    pub fn from_raw(raw: &RawValue) -> IdKey {
        let text = raw.get();
        if text.starts_with('"') {
            return match serde_json::from_str::<String>(text) {
                Ok(s) => IdKey(serde_json::Value::String(s).to_string()),
                Err(_) => IdKey(text.to_string()),
            };
        }
        if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
            // An integer: as written, without leading zeros (JSON has none) or a negative zero.
            return IdKey(if text == "-0" { "0".into() } else { text.to_string() });
        }
        match text.parse::<f64>() {
            Ok(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => IdKey(format!("{}", f as i64)),
            Ok(f) => IdKey(format!("{f:e}")),
            Err(_) => IdKey(text.to_string()),
        }
    }

    /// The canonical id as JSON text.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// The id Steward gave a request it forwarded, if `raw` is one: Steward's ids are plain
/// non-negative integers, so any other spelling is not an answer to it.
pub fn steward_id(raw: &RawValue) -> Option<u64> {
    let t = raw.get();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) || (t.len() > 1 && t.starts_with('0')) {
        return None;
    }
    t.parse().ok()
}

/// A JSON-RPC error response. `id` is the request's id as raw JSON, or `None` for `null`.
pub fn error_response(id: Option<&str>, code: ErrorCode, message: &str, data: Option<serde_json::Value>) -> Vec<u8> {
    let mut error = serde_json::json!({ "code": code.code(), "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":{},\"error\":{}}}",
        id.unwrap_or("null"),
        error
    )
    .into_bytes()
}

/// A JSON-RPC result response with the request's raw id.
pub fn result_response(id: &str, result: &serde_json::Value) -> Vec<u8> {
    format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":{result}}}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_messages() {
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}}"#).unwrap();
        assert_eq!(m.kind, Kind::Request);
        assert_eq!(m.method(), Some("tools/call"));
        assert_eq!(m.id_key().unwrap().as_json(), "7");
        let m = Message::parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(m.kind, Kind::Notification);
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(m.kind, Kind::Response);
        assert_eq!(m.id_key().unwrap().as_json(), "\"a\"");
        // Escaped method names are decoded before they are classified.
        let m = Message::parse(br#"{"jsonrpc":"2.0","id":1,"method":"tools\/call"}"#).unwrap();
        assert_eq!(m.method(), Some("tools/call"));
    }

    #[test]
    fn rejects_malformed_messages() {
        let code = |s: &[u8]| Message::parse(s).unwrap_err().code();
        assert_eq!(code(b"{not json"), ErrorCode::ParseError);
        assert_eq!(code(b""), ErrorCode::ParseError);
        assert_eq!(
            code(br#"[{"jsonrpc":"2.0","id":1,"method":"x"}]"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code(br#"{"id":1,"method":"x"}"#), ErrorCode::InvalidRequest);
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            ErrorCode::InvalidRequest
        );
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1}"#), ErrorCode::InvalidRequest);
        assert_eq!(code(b"42"), ErrorCode::InvalidRequest);
    }

    #[test]
    fn ids_compare_whatever_their_spelling() {
        let key = |s: &str| IdKey::from_raw(&RawValue::from_string(s.to_string()).unwrap());
        assert_eq!(key("7"), key("7.0"));
        assert_eq!(key("7"), key("70e-1"));
        assert_eq!(key("1"), key("1e0"));
        assert_ne!(key("7"), key("\"7\""));
        assert_eq!(key("\"a\""), key("\"\\u0061\""));
        assert_eq!(key("-0"), key("0"));
        let sid = |s: &str| steward_id(&RawValue::from_string(s.to_string()).unwrap());
        assert_eq!(sid("12"), Some(12));
        assert_eq!(sid("12.0"), None);
        assert_eq!(sid("\"12\""), None);
        assert_eq!(sid("-1"), None);
    }

    #[test]
    fn builds_responses() {
        let e = error_response(None, ErrorCode::ParseError, "bad", None);
        let v: serde_json::Value = serde_json::from_slice(&e).unwrap();
        assert_eq!(v["id"], serde_json::Value::Null);
        assert_eq!(v["error"]["code"], -32700);
    }
}
