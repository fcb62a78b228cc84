//! The Claude Code hook protocol: the event on stdin, the decision on stdout.
//!
//! Claude Code runs a hook command with one JSON event on stdin. Exit 0 means "read my stdout";
//! exit 2 blocks and shows stderr to the model; any other code is non-blocking, so a policy hook
//! must never deny with exit 1 (see docs/claude-code.md).

use serde::Deserialize;
use serde_json::{Map, Value, json};
use steward_policy::Effect;

/// Hook events larger than this are refused (denied): a Write's content can be large, but not this.
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

/// The server name Claude Code's built-in tools are decided under.
pub const CLAUDE_CODE_SERVER: &str = "claude-code";

/// One hook event, as Claude Code sends it. Unknown fields are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct HookEvent {
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub transcript_path: Option<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    #[serde(default)]
    pub permission_mode: Option<String>,
    pub hook_event_name: String,
    #[serde(default)]
    pub tool_name: Option<String>,
    #[serde(default)]
    pub tool_input: Option<Value>,
    #[serde(default)]
    pub tool_use_id: Option<String>,
    #[serde(default)]
    pub tool_response: Option<Value>,
    #[serde(default)]
    pub duration_ms: Option<f64>,
    /// SessionStart: startup, resume, clear, compact. ConfigChange: which settings changed.
    #[serde(default)]
    pub source: Option<Value>,
}

/// Why an event cannot be handled; the hook denies (exit 2) with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    #[error("the hook event is larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
    #[error("the hook event is not valid JSON: {0}")]
    NotJson(String),
    #[error("the hook event is malformed: {0}")]
    Malformed(String),
}

/// Which events Steward handles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    PreToolUse,
    PostToolUse,
    SessionStart,
    ConfigChange,
    /// Any other event: Steward has no opinion on it.
    Other(String),
}

impl HookEvent {
    /// Parses and validates an event: tool events need a non-empty `tool_name` and an object `tool_input`.
    pub fn parse(bytes: &[u8]) -> Result<HookEvent, HookError> {
        if bytes.len() > MAX_EVENT_BYTES {
            return Err(HookError::TooLarge);
        }
        let value: Value = serde_json::from_slice(bytes).map_err(|e| HookError::NotJson(e.to_string()))?;
        if !value.is_object() {
            return Err(HookError::Malformed("expected a JSON object".into()));
        }
        let event: HookEvent = serde_json::from_value(value).map_err(|e| HookError::Malformed(e.to_string()))?;
        if matches!(event.kind(), EventKind::PreToolUse | EventKind::PostToolUse) {
            if event.tool_name.as_deref().is_none_or(|t| t.trim().is_empty()) {
                return Err(HookError::Malformed(format!(
                    "{} without a tool_name",
                    event.hook_event_name
                )));
            }
            if !event.tool_input.as_ref().is_some_and(Value::is_object) {
                return Err(HookError::Malformed(format!(
                    "{} without an object tool_input",
                    event.hook_event_name
                )));
            }
        }
        Ok(event)
    }

    pub fn kind(&self) -> EventKind {
        match self.hook_event_name.as_str() {
            "PreToolUse" => EventKind::PreToolUse,
            "PostToolUse" => EventKind::PostToolUse,
            "SessionStart" => EventKind::SessionStart,
            "ConfigChange" => EventKind::ConfigChange,
            other => EventKind::Other(other.to_string()),
        }
    }

    /// The call this tool event stands for (tool events only).
    pub fn tool_call(&self) -> Option<ToolCall> {
        let name = self.tool_name.as_deref()?;
        let input = self.tool_input.as_ref()?;
        Some(map_tool(name, input))
    }
}

/// A Claude Code tool use as a call the policy decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub server: String,
    pub tool: String,
    pub args: Value,
}

/// Maps a tool use to a call: `mcp__server__tool` is `server/tool` with its input as arguments;
/// built-in tools are `claude-code/<tool_name>` with the input fields that say what the tool
/// touches (Bash `command`, Read/Edit/Write `file_path`, WebFetch `url`, Glob/Grep `pattern` and
/// `path`...). Bodies (file contents, edit strings, prompts, descriptions) are left out: they are
/// data, not actions, and would raise false alarms.
pub fn map_tool(tool_name: &str, input: &Value) -> ToolCall {
    if let Some(rest) = tool_name.strip_prefix("mcp__")
        && let Some((server, tool)) = rest.split_once("__")
        && !server.is_empty()
        && !tool.is_empty()
    {
        return ToolCall {
            server: server.to_string(),
            tool: tool.to_string(),
            args: input.clone(),
        };
    }
    let keep: Option<&[&str]> = match tool_name {
        "Bash" => Some(&["command", "run_in_background", "timeout"]),
        "BashOutput" | "KillBash" | "KillShell" => Some(&["bash_id", "shell_id"]),
        "Read" => Some(&["file_path", "offset", "limit"]),
        "Write" | "MultiEdit" => Some(&["file_path"]),
        "Edit" => Some(&["file_path", "replace_all"]),
        "NotebookEdit" | "NotebookRead" => Some(&["notebook_path", "edit_mode"]),
        "WebFetch" => Some(&["url"]),
        "WebSearch" => Some(&["query", "allowed_domains", "blocked_domains"]),
        "Glob" => Some(&["pattern", "path"]),
        "Grep" => Some(&["pattern", "path", "glob", "type"]),
        "LS" => Some(&["path"]),
        _ => None,
    };
    let args = match (keep, input.as_object()) {
        (Some(keys), Some(obj)) => {
            let mut m = Map::new();
            for k in keys {
                if let Some(v) = obj.get(*k) {
                    m.insert((*k).to_string(), v.clone());
                }
            }
            Value::Object(m)
        }
        _ => input.clone(),
    };
    ToolCall {
        server: CLAUDE_CODE_SERVER.to_string(),
        tool: tool_name.to_string(),
        args,
    }
}

/// The PreToolUse decision Claude Code reads: allow → allow, deny → deny, approve → ask (the
/// human at the keyboard approves it in Claude Code's own prompt).
pub fn pre_tool_use_output(effect: Effect, reason: &str) -> Value {
    let decision = match effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
        Effect::Approve | Effect::Ask => "ask",
    };
    json!({
        "hookSpecificOutput": {
            "hookEventName": "PreToolUse",
            "permissionDecision": decision,
            "permissionDecisionReason": reason,
        }
    })
}

/// Context for the model and a message for the user (SessionStart, ConfigChange).
pub fn context_output(event: &str, context: &str) -> Value {
    json!({
        "systemMessage": context,
        "hookSpecificOutput": {
            "hookEventName": event,
            "additionalContext": context,
        }
    })
}

/// A message for the user only (events without a context field, such as ConfigChange).
pub fn message_output(message: &str) -> Value {
    json!({ "systemMessage": message })
}

/// How a tool use ended, from its `tool_response`: `ok` or `tool_error`.
pub fn outcome_of(response: Option<&Value>) -> &'static str {
    let Some(r) = response else { return "ok" };
    let flag = |k: &str| r.get(k).and_then(Value::as_bool);
    let failed = flag("is_error") == Some(true)
        || flag("isError") == Some(true)
        || flag("success") == Some(false)
        || flag("interrupted") == Some(true)
        || r.get("error").is_some_and(|e| !e.is_null() && e != &Value::Bool(false));
    if failed { "tool_error" } else { "ok" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_tools() {
        let c = map_tool("Bash", &json!({"command": "ls", "description": "rm -rf /"}));
        assert_eq!((c.server.as_str(), c.tool.as_str()), ("claude-code", "Bash"));
        assert_eq!(c.args, json!({"command": "ls"}));
        let c = map_tool("mcp__github__create_issue", &json!({"title": "x"}));
        assert_eq!((c.server.as_str(), c.tool.as_str()), ("github", "create_issue"));
        assert_eq!(c.args, json!({"title": "x"}));
        let c = map_tool("Write", &json!({"file_path": "/p/a.sh", "content": "curl x | sh"}));
        assert_eq!(c.args, json!({"file_path": "/p/a.sh"}));
        let c = map_tool("Task", &json!({"prompt": "p"}));
        assert_eq!(c.args, json!({"prompt": "p"}));
    }

    #[test]
    fn validates_events() {
        assert!(matches!(HookEvent::parse(b"not json"), Err(HookError::NotJson(_))));
        assert!(matches!(HookEvent::parse(b"[1]"), Err(HookError::Malformed(_))));
        assert!(matches!(
            HookEvent::parse(br#"{"hook_event_name":"PreToolUse","tool_input":{}}"#),
            Err(HookError::Malformed(_))
        ));
        assert!(matches!(
            HookEvent::parse(br#"{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"ls"}"#),
            Err(HookError::Malformed(_))
        ));
        let e = HookEvent::parse(br#"{"hook_event_name":"SessionStart","source":"startup","cwd":"/p"}"#).unwrap();
        assert_eq!(e.kind(), EventKind::SessionStart);
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome_of(None), "ok");
        assert_eq!(outcome_of(Some(&json!({"stdout": "x", "interrupted": false}))), "ok");
        assert_eq!(outcome_of(Some(&json!({"success": false}))), "tool_error");
        assert_eq!(outcome_of(Some(&json!({"is_error": true}))), "tool_error");
    }
}
