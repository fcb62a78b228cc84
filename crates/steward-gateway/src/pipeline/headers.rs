//! The 2026-07-28 routing headers (`Mcp-Method`, `Mcp-Name`, `MCP-Protocol-Version`). A client's
//! headers are checked against its body on every era; what goes upstream is derived from the
//! body alone, so a header-routing upstream runs exactly what the policy decided.

use base64::Engine;
use serde::Deserialize;
use steward_mcp::era::{META_PROTOCOL_VERSION, request_meta};
use steward_mcp::{Kind, Message};

use super::verdict::UpstreamHeaders;

/// The routing headers a client sent (as text; a header that is not visible ASCII is refused
/// by the door before it gets here).
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientHeaders<'a> {
    pub method: Option<&'a str>,
    pub name: Option<&'a str>,
    pub protocol_version: Option<&'a str>,
}

#[derive(Deserialize)]
struct Target<'a> {
    #[serde(borrow, default)]
    name: Option<std::borrow::Cow<'a, str>>,
    #[serde(borrow, default)]
    uri: Option<std::borrow::Cow<'a, str>>,
}

/// What `Mcp-Name` stands for in a message: the tool or prompt name, or the resource URI.
fn body_name(msg: &Message<'_>) -> Option<String> {
    let member = msg.method_kind().target_member()?;
    let t: Target<'_> = serde_json::from_str(msg.params?.get()).ok()?;
    match member {
        "uri" => t.uri.map(|s| s.into_owned()),
        _ => t.name.map(|s| s.into_owned()),
    }
}

/// A header value as the 2026-07-28 encoding rule writes it.
pub fn encode_value(v: &str) -> String {
    if is_plain(v) {
        v.to_string()
    } else {
        format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(v))
    }
}

/// Whether a value can go into a header as it is: visible ASCII with inner spaces, not looking
/// like the base64 sentinel.
fn is_plain(v: &str) -> bool {
    if v.is_empty() || v.starts_with([' ', '\t']) || v.ends_with([' ', '\t']) {
        return false;
    }
    if v.starts_with("=?base64?") && v.ends_with("?=") {
        return false;
    }
    v.bytes().all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b))
}

fn decode_value(v: &str) -> Result<String, String> {
    match v.strip_prefix("=?base64?").and_then(|r| r.strip_suffix("?=")) {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| "a base64-encoded header value is malformed".to_string()),
        None => Ok(v.to_string()),
    }
}

/// Checks the client's routing headers against the body (`required`: the 2026-07-28 era, where
/// they must be present) and derives the headers an HTTP upstream gets. `Err` is the mismatch,
/// answered with HTTP 400 and JSON-RPC -32020.
pub fn check(msg: &Message<'_>, client: ClientHeaders<'_>, required: bool) -> Result<UpstreamHeaders, String> {
    let method = msg.method();
    if let Some(method) = method {
        match client.method {
            Some(h) if h != method => {
                return Err(format!(
                    "Mcp-Method header value '{h}' does not match body value '{method}'"
                ));
            }
            None if required && msg.kind == Kind::Request => return Err("the Mcp-Method header is missing".into()),
            _ => {}
        }
    } else if let Some(h) = client.method {
        return Err(format!("Mcp-Method header '{h}' on a message that has no method"));
    }
    let name = body_name(msg);
    match (&name, client.name.map(decode_value)) {
        (_, Some(Err(e))) => return Err(e),
        (Some(body), Some(Ok(h))) if &h != body => {
            return Err(format!(
                "Mcp-Name header value '{h}' does not match body value '{body}'"
            ));
        }
        (None, Some(Ok(h))) => return Err(format!("Mcp-Name header '{h}' on a message that names nothing")),
        (Some(_), None) if required => return Err("the Mcp-Name header is missing".into()),
        _ => {}
    }
    let body_version = request_meta(msg.params).and_then(|m| {
        m.get(META_PROTOCOL_VERSION)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    });
    match (client.protocol_version, &body_version) {
        (Some(h), Some(b)) if h != b => {
            return Err(format!(
                "MCP-Protocol-Version header value '{h}' does not match body value '{b}'"
            ));
        }
        (None, _) if required => return Err("the MCP-Protocol-Version header is missing".into()),
        _ => {}
    }
    Ok(UpstreamHeaders {
        method: method.map(str::to_string),
        name: name.as_deref().map(encode_value),
        protocol_version: body_version.or_else(|| client.protocol_version.map(str::to_string)),
    })
}

/// The headers an HTTP upstream gets for a message Steward writes or forwards without a client
/// header to check (stdio doors, Steward's own requests).
pub fn derive(msg: &Message<'_>) -> UpstreamHeaders {
    check(msg, ClientHeaders::default(), false).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str) -> Vec<u8> {
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{}}}}}}"#)
            .into_bytes()
    }

    #[test]
    fn headers_must_agree_with_the_body() {
        let line = call("echo");
        let msg = Message::parse(&line).unwrap();
        let ok = check(
            &msg,
            ClientHeaders {
                method: Some("tools/call"),
                name: Some("echo"),
                protocol_version: None,
            },
            false,
        )
        .unwrap();
        assert_eq!(ok.name.as_deref(), Some("echo"));
        assert!(
            check(
                &msg,
                ClientHeaders {
                    name: Some("rm"),
                    ..Default::default()
                },
                false
            )
            .is_err()
        );
        assert!(
            check(
                &msg,
                ClientHeaders {
                    method: Some("tools/list"),
                    ..Default::default()
                },
                false
            )
            .is_err()
        );
        // Base64 spellings are decoded before comparing.
        assert!(
            check(
                &msg,
                ClientHeaders {
                    name: Some("=?base64?ZWNobw==?="),
                    ..Default::default()
                },
                false
            )
            .is_ok()
        );
        // Derived names are encoded when they are not plain header text.
        let line = call("héllo");
        let msg = Message::parse(&line).unwrap();
        assert_eq!(derive(&msg).name.as_deref(), Some("=?base64?aMOpbGxv?="));
        assert!(check(&msg, ClientHeaders::default(), true).is_err());
    }
}
