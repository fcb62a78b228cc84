//! The approver's four MCP tools: `list_pending_approvals`, `show_approval {id}`,
//! `approve {id, reason}` and `deny {id, reason}`. Results are text for the model to read and
//! the same facts as structured content; a refusal is an `isError` result saying why.

use serde_json::{Map, Value, json};
use steward_store::ApprovalState;

use super::{Approver, Desk, Refused, Via, view};

pub const LIST: &str = "list_pending_approvals";
pub const SHOW: &str = "show_approval";
pub const APPROVE: &str = "approve";
pub const DENY: &str = "deny";

/// `tools/list`'s entries.
pub fn definitions() -> Value {
    let id = json!({ "type": "string", "description": "the approval id, e.g. apr-3f9c0a1b2c3d" });
    json!([
        {
            "name": LIST,
            "title": "List pending approvals",
            "description": "Tool calls waiting for a human approval that you may decide: who asked, what would run (arguments with secrets redacted), the risk, why it needs approval, approvals so far and the time left. Your own calls are never listed: someone else has to approve them.",
            "inputSchema": { "type": "object", "properties": {} },
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
        {
            "name": SHOW,
            "title": "Show an approval",
            "description": "One approval in full, by id: one you asked for or may decide.",
            "inputSchema": { "type": "object", "properties": { "id": id }, "required": ["id"] },
            "annotations": { "readOnlyHint": true, "openWorldHint": false },
        },
        {
            "name": APPROVE,
            "title": "Approve a pending call",
            "description": "Records your approval of a pending call, in your name. Once enough distinct approvers have approved, the call runs once. Read it with show_approval first; only approve what the person you act for has decided to approve.",
            "inputSchema": {
                "type": "object",
                "properties": { "id": id, "reason": { "type": "string", "description": "why it may run (recorded in the audit trail)" } },
                "required": ["id"],
            },
            "annotations": { "readOnlyHint": false, "destructiveHint": false, "idempotentHint": false, "openWorldHint": false },
        },
        {
            "name": DENY,
            "title": "Deny a pending call",
            "description": "Denies a pending call, in your name, with a reason the requester is told. Denying your own call withdraws it.",
            "inputSchema": {
                "type": "object",
                "properties": { "id": id, "reason": { "type": "string", "description": "why it may not run (the requester reads it)" } },
                "required": ["id", "reason"],
            },
            "annotations": { "readOnlyHint": false, "destructiveHint": true, "idempotentHint": false, "openWorldHint": false },
        },
    ])
}

fn done(text: String, structured: Value) -> Value {
    json!({ "content": [{ "type": "text", "text": text }], "structuredContent": structured, "isError": false })
}

fn failed(text: String, code: &str) -> Value {
    json!({
        "content": [{ "type": "text", "text": text }],
        "structuredContent": { "refused": code, "message": text },
        "isError": true,
    })
}

fn refused(e: &Refused) -> Value {
    failed(e.message(), e.code())
}

/// A string argument; `Err` is the tool result saying what is wrong.
fn text_arg<'a>(args: &'a Map<String, Value>, key: &str, required: bool) -> Result<Option<&'a str>, Value> {
    match args.get(key) {
        None | Some(Value::Null) if !required => Ok(None),
        Some(Value::String(s)) if !required || !s.trim().is_empty() => Ok(Some(s)),
        _ => Err(failed(
            format!("`{key}` must be a{} string", if required { " non-empty" } else { "" }),
            "invalid_request",
        )),
    }
}

/// Runs one of the four tools for `who`; `None` when `name` is none of them.
pub async fn call(desk: &Desk, who: &Approver, via: &Via, name: &str, args: &Map<String, Value>) -> Option<Value> {
    let now = chrono::Utc::now();
    let result = match name {
        LIST => list(desk, who, now).await,
        SHOW => match text_arg(args, "id", true) {
            Ok(Some(id)) => match desk.show(who, id).await {
                Ok(a) => done(view::text(&a, now), view::summary(&a, now)),
                Err(e) => refused(&e),
            },
            Ok(None) | Err(_) => failed("`id` must be a non-empty string".into(), "invalid_request"),
        },
        APPROVE => match (text_arg(args, "id", true), text_arg(args, "reason", false)) {
            (Ok(Some(id)), Ok(reason)) => match desk.approve(who, id, reason, via).await {
                Ok(d) => {
                    let a = &d.approval;
                    let text = if d.complete {
                        format!(
                            "Approved {} ({}): {} may now run once for {}.",
                            a.id,
                            a.progress(),
                            a.target(),
                            a.principal
                        )
                    } else {
                        format!(
                            "Recorded {}'s approval of {} ({}); it needs {} more approver(s) other than {} and {}.",
                            who.actor.name,
                            a.id,
                            a.progress(),
                            a.required_count.saturating_sub(a.approvals.len() as u32),
                            a.principal,
                            a.approvals.iter().map(|v| v.by.as_str()).collect::<Vec<_>>().join(", ")
                        )
                    };
                    let mut s = view::summary(a, now);
                    s["complete"] = json!(d.complete);
                    done(text, s)
                }
                Err(e) => refused(&e),
            },
            (Err(r), _) | (_, Err(r)) => r,
            (Ok(None), _) => failed("`id` must be a non-empty string".into(), "invalid_request"),
        },
        DENY => match (text_arg(args, "id", true), text_arg(args, "reason", true)) {
            (Ok(Some(id)), Ok(Some(reason))) => match desk.deny(who, id, reason, via).await {
                Ok(a) => {
                    let verb = if a.state == ApprovalState::Cancelled {
                        "Withdrew"
                    } else {
                        "Denied"
                    };
                    done(
                        format!("{verb} {}: {} will not run for {}.", a.id, a.target(), a.principal),
                        view::summary(&a, now),
                    )
                }
                Err(e) => refused(&e),
            },
            (Err(r), _) | (_, Err(r)) => r,
            _ => failed("`id` and `reason` must be non-empty strings".into(), "invalid_request"),
        },
        _ => return None,
    };
    Some(result)
}

async fn list(desk: &Desk, who: &Approver, now: chrono::DateTime<chrono::Utc>) -> Value {
    if who.agent {
        let text = format!(
            "{} is an agent (kind: agent in the policy): agents never decide approvals, so nothing is listed.",
            who.actor.name
        );
        return done(text, json!({ "approvals": [] }));
    }
    match desk.pending(who).await {
        Ok(list) if list.is_empty() => done(
            format!("No pending approval is waiting for {}.", who.actor.name),
            json!({ "approvals": [] }),
        ),
        Ok(list) => {
            let mut text = format!(
                "{} pending approval(s) {} may decide (newest first):",
                list.len(),
                who.actor.name
            );
            for a in &list {
                text.push_str("\n\n");
                text.push_str(&view::text(a, now));
            }
            let items: Vec<Value> = list.iter().map(|a| view::summary(a, now)).collect();
            done(text, json!({ "approvals": items }))
        }
        Err(e) => refused(&e),
    }
}
