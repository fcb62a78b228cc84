//! Slack's interaction payloads: an `application/x-www-form-urlencoded` body whose `payload`
//! field is JSON. Steward reads two kinds: `block_actions` (a click on its Approve or Deny
//! button) and `view_submission` (the deny-reason modal). Even signed, every field is checked.

use serde::Deserialize;
use serde_json::Value;

/// `action_id` of the Approve button.
pub const APPROVE_ACTION: &str = "steward_approve";
/// `action_id` of the Deny button.
pub const DENY_ACTION: &str = "steward_deny";
/// `callback_id` of the deny-reason modal, and the `block_id`/`action_id` of its text input.
pub const DENY_VIEW: &str = "steward_deny_reason";
pub const REASON_INPUT: &str = "reason";

/// What a Slack user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// Approve or Deny clicked on a Steward message.
    Button {
        user: String,
        approve: bool,
        approval: String,
        response_url: Option<String>,
        trigger_id: Option<String>,
    },
    /// The deny-reason modal was submitted.
    DenyReason {
        user: String,
        approval: String,
        reason: String,
        response_url: Option<String>,
    },
    /// Anything else (another app's button, a closed view): acknowledged and ignored.
    Other { kind: String, user: Option<String> },
}

impl Interaction {
    pub fn user(&self) -> Option<&str> {
        match self {
            Interaction::Button { user, .. } | Interaction::DenyReason { user, .. } => Some(user),
            Interaction::Other { user, .. } => user.as_deref(),
        }
    }

    pub fn approval(&self) -> Option<&str> {
        match self {
            Interaction::Button { approval, .. } | Interaction::DenyReason { approval, .. } => Some(approval),
            Interaction::Other { .. } => None,
        }
    }

    pub fn response_url(&self) -> Option<&str> {
        match self {
            Interaction::Button { response_url, .. } | Interaction::DenyReason { response_url, .. } => {
                response_url.as_deref()
            }
            Interaction::Other { .. } => None,
        }
    }

    /// `approve`, `deny` or the payload's type, for audit details.
    pub fn action(&self) -> &str {
        match self {
            Interaction::Button { approve: true, .. } => "approve",
            Interaction::Button { approve: false, .. } | Interaction::DenyReason { .. } => "deny",
            Interaction::Other { kind, .. } => kind,
        }
    }
}

/// What the deny modal carries back in `private_metadata`.
#[derive(Debug, Clone, serde::Serialize, Deserialize)]
pub struct DenyContext {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_url: Option<String>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    user: Option<User>,
    #[serde(default)]
    actions: Vec<Action>,
    #[serde(default)]
    response_url: Option<String>,
    #[serde(default)]
    trigger_id: Option<String>,
    #[serde(default)]
    view: Option<View>,
}

#[derive(Deserialize)]
struct User {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    #[serde(default)]
    action_id: String,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Deserialize)]
struct View {
    #[serde(default)]
    callback_id: Option<String>,
    #[serde(default)]
    private_metadata: Option<String>,
    #[serde(default)]
    state: Option<ViewState>,
}

#[derive(Deserialize)]
struct ViewState {
    #[serde(default)]
    values: serde_json::Map<String, Value>,
}

/// Why a body is not an interaction Steward can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("the body has no `payload` field")]
    NoPayload,
    #[error("the payload is not valid JSON: {0}")]
    Json(String),
    #[error("the payload has no valid user id")]
    NoUser,
    #[error("the payload names no valid approval id")]
    NoApproval,
}

/// Slack ids (users, teams) are short upper-case alphanumerics.
fn slack_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 32 && s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// Approval ids as the store makes them; anything else is refused here.
fn approval_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A `response_url` Steward will post to: an absolute http(s) URL with a host.
fn usable_url(s: Option<String>) -> Option<String> {
    let s = s?;
    let ok = s.len() <= 2_048
        && reqwest::Url::parse(&s).is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host_str().is_some());
    ok.then_some(s)
}

/// Parses a form-encoded interaction body.
pub fn parse(body: &[u8]) -> Result<Interaction, Malformed> {
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| Malformed::NoPayload)?;
    let payload = fields
        .into_iter()
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v)
        .ok_or(Malformed::NoPayload)?;
    let raw: Raw = steward_mcp::json::parse_strict(payload.as_bytes())
        .map_err(|e| Malformed::Json(e.to_string()))
        .and_then(|v| serde_json::from_value(v).map_err(|e| Malformed::Json(e.to_string())))?;
    let user = raw.user.as_ref().map(|u| u.id.clone());
    match raw.kind.as_str() {
        "block_actions" => {
            let Some(action) = raw
                .actions
                .iter()
                .find(|a| a.action_id == APPROVE_ACTION || a.action_id == DENY_ACTION)
            else {
                return Ok(Interaction::Other { kind: raw.kind, user });
            };
            let user = user.filter(|u| slack_id(u)).ok_or(Malformed::NoUser)?;
            let approval = action
                .value
                .clone()
                .filter(|v| approval_id(v))
                .ok_or(Malformed::NoApproval)?;
            Ok(Interaction::Button {
                user,
                approve: action.action_id == APPROVE_ACTION,
                approval,
                response_url: usable_url(raw.response_url),
                trigger_id: raw.trigger_id.filter(|t| t.len() <= 256),
            })
        }
        "view_submission" if raw.view.as_ref().and_then(|v| v.callback_id.as_deref()) == Some(DENY_VIEW) => {
            let user = user.filter(|u| slack_id(u)).ok_or(Malformed::NoUser)?;
            let view = raw.view.ok_or(Malformed::NoApproval)?;
            let context: DenyContext = view
                .private_metadata
                .as_deref()
                .and_then(|m| serde_json::from_str(m).ok())
                .filter(|c: &DenyContext| approval_id(&c.id))
                .ok_or(Malformed::NoApproval)?;
            let reason = view
                .state
                .as_ref()
                .and_then(|s| s.values.get(REASON_INPUT))
                .and_then(|b| b.get(REASON_INPUT))
                .and_then(|i| i.get("value"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Ok(Interaction::DenyReason {
                user,
                approval: context.id,
                reason,
                response_url: usable_url(context.response_url),
            })
        }
        _ => Ok(Interaction::Other { kind: raw.kind, user }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(payload: &Value) -> Vec<u8> {
        serde_urlencoded::to_string([("payload", payload.to_string())])
            .unwrap_or_default()
            .into_bytes()
    }

    #[test]
    fn a_button_click() {
        let p = json!({
            "type": "block_actions",
            "user": { "id": "U024BE7LH", "username": "bob" },
            "actions": [{ "action_id": "steward_approve", "block_id": "b", "value": "apr-0123456789ab", "type": "button" }],
            "response_url": "https://hooks.slack.com/actions/T0/1/abc",
            "trigger_id": "1.2.3",
        });
        assert_eq!(
            parse(&form(&p)),
            Ok(Interaction::Button {
                user: "U024BE7LH".into(),
                approve: true,
                approval: "apr-0123456789ab".into(),
                response_url: Some("https://hooks.slack.com/actions/T0/1/abc".into()),
                trigger_id: Some("1.2.3".into()),
            })
        );
    }

    #[test]
    fn a_submitted_reason() {
        let p = json!({
            "type": "view_submission",
            "user": { "id": "U0G9QF9C6" },
            "view": {
                "callback_id": DENY_VIEW,
                "private_metadata": json!({"id": "apr-0123456789ab", "response_url": "file:///etc/passwd"}).to_string(),
                "state": { "values": { "reason": { "reason": { "type": "plain_text_input", "value": "not now" } } } },
            },
        });
        assert_eq!(
            parse(&form(&p)),
            Ok(Interaction::DenyReason {
                user: "U0G9QF9C6".into(),
                approval: "apr-0123456789ab".into(),
                reason: "not now".into(),
                response_url: None,
            })
        );
    }

    #[test]
    fn what_is_not_ours_or_not_valid() {
        let other =
            json!({"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "x", "value": "y"}]});
        assert!(matches!(parse(&form(&other)), Ok(Interaction::Other { .. })));
        assert_eq!(parse(b"text=hi"), Err(Malformed::NoPayload));
        assert!(matches!(parse(b"payload=%7B"), Err(Malformed::Json(_))));
        let dup = "payload=%7B%22type%22%3A%22a%22%2C%22type%22%3A%22b%22%7D";
        assert!(
            matches!(parse(dup.as_bytes()), Err(Malformed::Json(_))),
            "duplicate keys"
        );
        let bad_id = json!({"type": "block_actions", "user": {"id": "U1"}, "actions": [{"action_id": "steward_deny", "value": "apr-1; DROP"}]});
        assert_eq!(parse(&form(&bad_id)), Err(Malformed::NoApproval));
        let bad_user = json!({"type": "block_actions", "user": {"id": "u<script>"}, "actions": [{"action_id": "steward_deny", "value": "apr-1"}]});
        assert_eq!(parse(&form(&bad_user)), Err(Malformed::NoUser));
    }
}
