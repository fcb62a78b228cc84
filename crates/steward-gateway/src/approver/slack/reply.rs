//! Steward's side of a Slack conversation: the message that replaces the clicked one (through
//! the interaction's `response_url`), and the deny-reason modal (`views.open`).

use serde_json::{Value, json};
use steward_store::Approval;

use super::payload::{DENY_VIEW, DenyContext, REASON_INPUT};

/// The longest reason the modal takes (the store keeps 2,000 bytes, the channel's note included).
const MAX_REASON: usize = 1_500;

/// The message that replaces the clicked one: the approval as posted, with `status` on top
/// (buttons only while it is still pending), or just `status` when the approval is unknown.
pub fn replacement(approval: Option<&Approval>, link: Option<&str>, status: &str) -> Value {
    let mut body = match (approval, link) {
        (Some(a), Some(link)) => crate::notify::slack_message(a, link, Some(status)),
        _ => json!({ "text": status }),
    };
    body["replace_original"] = json!(true);
    body
}

/// POSTs `body` to a `response_url` (once; the client has a time-out).
pub async fn post(http: &reqwest::Client, url: &str, body: &Value) -> Result<(), String> {
    match http.post(url).json(body).send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
        // reqwest errors name the URL, which carries a token: keep only what went wrong.
        Err(e) if e.is_timeout() => Err("timed out".into()),
        Err(_) => Err("request failed".into()),
    }
}

/// The deny-reason modal; `private_metadata` carries the approval and where to update.
pub fn reason_modal(trigger_id: &str, approval: &str, response_url: Option<&str>) -> Value {
    let context = DenyContext {
        id: approval.to_string(),
        response_url: response_url.map(str::to_string),
    };
    json!({
        "trigger_id": trigger_id,
        "view": {
            "type": "modal",
            "callback_id": DENY_VIEW,
            "private_metadata": serde_json::to_string(&context).unwrap_or_default(),
            "title": { "type": "plain_text", "text": "Deny the call" },
            "submit": { "type": "plain_text", "text": "Deny" },
            "close": { "type": "plain_text", "text": "Cancel" },
            "blocks": [
                { "type": "section", "text": { "type": "mrkdwn", "text": format!("Deny approval `{approval}`. The requester reads your reason.") } },
                {
                    "type": "input",
                    "block_id": REASON_INPUT,
                    "label": { "type": "plain_text", "text": "Why may it not run?" },
                    "element": { "type": "plain_text_input", "action_id": REASON_INPUT, "multiline": true, "max_length": MAX_REASON },
                },
            ],
        },
    })
}

/// Opens the deny-reason modal with the bot token.
pub async fn open_reason_modal(
    http: &reqwest::Client,
    api_base: &str,
    token: &str,
    trigger_id: &str,
    approval: &str,
    response_url: Option<&str>,
) -> Result<(), String> {
    let answer = http
        .post(format!("{api_base}/views.open"))
        .bearer_auth(token)
        .json(&reason_modal(trigger_id, approval, response_url))
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_string()
            } else {
                "request failed".to_string()
            }
        })?;
    let doc: Value = answer.json().await.map_err(|_| "unreadable answer".to_string())?;
    if doc.get("ok").and_then(Value::as_bool) == Some(true) {
        Ok(())
    } else {
        let error = doc.get("error").and_then(Value::as_str).unwrap_or("unknown error");
        Err(format!("views.open: {}", error.chars().take(100).collect::<String>()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_modal_carries_the_approval_back() {
        let m = reason_modal("1.2.3", "apr-0123456789ab", Some("https://hooks.slack.com/actions/x"));
        assert_eq!(m["view"]["callback_id"], DENY_VIEW);
        let meta: DenyContext = serde_json::from_str(m["view"]["private_metadata"].as_str().unwrap_or("")).unwrap();
        assert_eq!(meta.id, "apr-0123456789ab");
        assert_eq!(m["view"]["blocks"][1]["block_id"], REASON_INPUT);
        assert_eq!(m["view"]["blocks"][1]["element"]["action_id"], REASON_INPUT);
    }

    #[test]
    fn an_unknown_approval_is_replaced_by_the_status_alone() {
        let r = replacement(None, None, "refused");
        assert_eq!(r, json!({ "text": "refused", "replace_original": true }));
    }
}
