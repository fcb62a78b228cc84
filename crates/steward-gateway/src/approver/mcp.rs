//! The approver's MCP server: one JSON-RPC message in, at most one out, in either protocol era.
//! Its answers are Steward's own (there is no upstream); what it changes is audited by the
//! approval transitions themselves. No sessions: every request is authenticated by its door.
//!
//! legacy (2025-11-25 and earlier): `initialize`, `notifications/initialized`, `ping`,
//! `tools/list`, `tools/call`. 2026-07-28: `server/discover` and per-request `_meta`; results
//! carry `resultType`, and cacheable ones `ttlMs: 0` and `cacheScope: private` (what an
//! approver may decide changes from one moment to the next, and differs between approvers).

use serde_json::{Map, Value, json};
use steward_mcp::jsonrpc::{ErrorCode, error_response, result_response};
use steward_mcp::{Kind, Message, Method};

use super::{Approver, Desk, Via, tools};

pub const SERVER_NAME: &str = "steward-approvals";
/// The handshake versions `initialize` accepts as asked; any other gets the newest.
const LEGACY_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
pub const MODERN_VERSION: &str = "2026-07-28";

const INSTRUCTIONS: &str = "Steward's approval queue. list_pending_approvals shows the tool calls waiting for a human approval that you may decide; show_approval reads one; approve and deny decide it in your name. Your own calls never appear: someone else has to approve them. Only decide what the person you act for has decided.";

fn capabilities() -> Value {
    json!({ "tools": { "listChanged": false } })
}

/// The answer to one message (`None` for notifications and responses, which get none).
/// `stateless`: the message belongs to the 2026-07-28 era.
pub async fn answer(desk: &Desk, who: &Approver, msg: &Message<'_>, stateless: bool, via: &Via) -> Option<Vec<u8>> {
    if msg.kind != Kind::Request {
        return None;
    }
    let id = msg.raw_id().unwrap_or("null").to_string();
    let finish = |mut result: Value, cacheable: bool| {
        if stateless {
            result["resultType"] = json!("complete");
            if cacheable {
                result["ttlMs"] = json!(0);
                result["cacheScope"] = json!("private");
            }
        }
        Some(result_response(&id, &result))
    };
    match msg.method_kind() {
        Method::Initialize => {
            let asked = msg
                .params
                .and_then(|p| serde_json::from_str::<Value>(p.get()).ok())
                .and_then(|p| p.get("protocolVersion").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_default();
            let version = LEGACY_VERSIONS
                .iter()
                .find(|v| **v == asked)
                .copied()
                .unwrap_or(LEGACY_VERSIONS[LEGACY_VERSIONS.len() - 1]);
            finish(
                json!({
                    "protocolVersion": version,
                    "capabilities": capabilities(),
                    "serverInfo": { "name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION") },
                    "instructions": INSTRUCTIONS,
                }),
                false,
            )
        }
        Method::ServerDiscover => finish(
            json!({
                "supportedVersions": [MODERN_VERSION],
                "capabilities": capabilities(),
                "instructions": INSTRUCTIONS,
                "_meta": { "io.modelcontextprotocol/serverInfo": { "name": SERVER_NAME, "version": env!("CARGO_PKG_VERSION") } },
            }),
            true,
        ),
        Method::Ping => finish(json!({}), false),
        Method::ToolsList => finish(json!({ "tools": tools::definitions() }), true),
        Method::ToolsCall => {
            let params = match msg.params.map(|p| steward_mcp::json::parse_strict(p.get().as_bytes())) {
                Some(Ok(Value::Object(p))) => p,
                Some(Err(e)) => {
                    return Some(error_response(
                        Some(&id),
                        ErrorCode::InvalidParams,
                        &format!("invalid tools/call params: {e}"),
                        None,
                    ));
                }
                _ => {
                    return Some(error_response(
                        Some(&id),
                        ErrorCode::InvalidParams,
                        "tools/call needs params {name, arguments}",
                        None,
                    ));
                }
            };
            let name = params.get("name").and_then(Value::as_str).unwrap_or_default();
            let empty = Map::new();
            let args = match params.get("arguments") {
                None | Some(Value::Null) => &empty,
                Some(Value::Object(a)) => a,
                Some(_) => {
                    return Some(error_response(
                        Some(&id),
                        ErrorCode::InvalidParams,
                        "tools/call arguments must be an object",
                        None,
                    ));
                }
            };
            match tools::call(desk, who, via, name, args).await {
                Some(result) => finish(result, false),
                None => Some(error_response(
                    Some(&id),
                    ErrorCode::InvalidParams,
                    &format!("Unknown tool: {}", name.chars().take(100).collect::<String>()),
                    None,
                )),
            }
        }
        _ => Some(error_response(
            Some(&id),
            ErrorCode::MethodNotFound,
            &format!(
                "the approver endpoint serves initialize, server/discover, ping, tools/list and tools/call, not {}",
                msg.method().unwrap_or_default().chars().take(100).collect::<String>()
            ),
            None,
        )),
    }
}
