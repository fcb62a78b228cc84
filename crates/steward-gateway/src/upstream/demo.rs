//! The built-in demo upstream: a tiny MCP server inside the binary whose tools let a newcomer see
//! allow, deny and approval at once. Nothing it does touches the machine: the shell is simulated.

use serde_json::{Value, json};
use steward_mcp::jsonrpc::{ErrorCode, error_response, result_response};
use steward_mcp::{Era, Kind, Message};
use tokio::sync::mpsc;

use super::Replies;

const VERSIONS: [&str; 2] = ["2025-11-25", "2026-07-28"];

#[derive(Default)]
pub struct DemoConn;

impl DemoConn {
    pub fn request(&self, line: &[u8]) -> Replies {
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(answer(line));
        rx
    }
}

/// The demo server's answer to one message (also used by the relay's in-process tests).
pub fn answer(line: &[u8]) -> Vec<u8> {
    let Ok(msg) = Message::parse(line) else {
        return error_response(None, ErrorCode::InvalidRequest, "invalid message", None);
    };
    let id = msg.id.map(|i| i.get().to_string()).unwrap_or_else(|| "null".into());
    if msg.kind != Kind::Request {
        return error_response(Some(&id), ErrorCode::InvalidRequest, "expected a request", None);
    }
    let params: Value = msg
        .params
        .and_then(|p| serde_json::from_str(p.get()).ok())
        .unwrap_or(Value::Null);
    let stateless = Era::of_params(msg.params) == Some(Era::Stateless);
    let mut result = match msg.method().unwrap_or_default() {
        "initialize" => {
            let asked = params
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or("2025-11-25");
            let version = if ("2024-11-05".."2026-07-28").contains(&asked) {
                asked
            } else {
                "2025-11-25"
            };
            json!({
                "protocolVersion": version,
                "capabilities": { "tools": { "listChanged": false } },
                "serverInfo": { "name": "steward-demo", "version": env!("CARGO_PKG_VERSION") },
                "instructions": "Steward's built-in demo server. Try run_command with `ls`, then `rm -rf /`, then `cat ~/.ssh/id_rsa`."
            })
        }
        "server/discover" => json!({
            "supportedVersions": VERSIONS,
            "capabilities": { "tools": { "listChanged": false } },
            "_meta": { "io.modelcontextprotocol/serverInfo": { "name": "steward-demo", "version": env!("CARGO_PKG_VERSION") } }
        }),
        "ping" => json!({}),
        "tools/list" => json!({ "tools": tools() }),
        "tools/call" => call(&params),
        other => {
            return error_response(
                Some(&id),
                ErrorCode::MethodNotFound,
                &format!("method not found: {other}"),
                None,
            );
        }
    };
    if stateless {
        result["resultType"] = json!("complete");
        if msg.method() == Some("tools/list") {
            result["ttlMs"] = json!(0);
            result["cacheScope"] = json!("public");
        }
    }
    result_response(&id, &result)
}

fn tools() -> Value {
    json!([
        {
            "name": "lookup_order",
            "description": "Look up an order by id (read-only).",
            "inputSchema": { "type": "object", "properties": { "order_id": { "type": "string" } }, "required": ["order_id"] },
            "annotations": { "readOnlyHint": true }
        },
        {
            "name": "run_command",
            "description": "Run a shell command on the build host (simulated: nothing is executed).",
            "inputSchema": { "type": "object", "properties": { "command": { "type": "string" } }, "required": ["command"] },
            "annotations": { "readOnlyHint": false, "destructiveHint": false }
        },
        {
            "name": "approve_expense",
            "description": "Approve an expense claim.",
            "inputSchema": {
                "type": "object",
                "properties": { "expense_id": { "type": "string" }, "amount": { "type": "number" } },
                "required": ["expense_id", "amount"]
            }
        }
    ])
}

fn call(params: &Value) -> Value {
    let args = params.get("arguments").cloned().unwrap_or(Value::Null);
    let text = |s: String| json!({ "content": [{ "type": "text", "text": s }] });
    match params.get("name").and_then(Value::as_str).unwrap_or_default() {
        "lookup_order" => {
            let id = args.get("order_id").and_then(Value::as_str).unwrap_or("?");
            text(format!("Order {id}: 3 items, shipped, total 42.50 EUR"))
        }
        "run_command" => {
            let cmd = args.get("command").and_then(Value::as_str).unwrap_or("");
            text(format!("(simulated) $ {cmd}\nREADME.md  src  target"))
        }
        "approve_expense" => {
            let id = args.get("expense_id").and_then(Value::as_str).unwrap_or("?");
            let amount = args.get("amount").and_then(Value::as_f64).unwrap_or(0.0);
            text(format!("Expense {id} for {amount:.2} approved"))
        }
        other => json!({ "content": [{ "type": "text", "text": format!("unknown tool: {other}") }], "isError": true }),
    }
}
