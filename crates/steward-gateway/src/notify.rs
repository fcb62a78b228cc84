//! Webhooks for new pending approvals: a generic JSON payload, or a Slack-compatible one.
//!
//! Delivery runs in its own task with retries and backoff; it never delays a decision. A
//! delivery that fails for good is logged and audited (by host only: webhook URLs often carry
//! a secret in their path).

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use steward_store::{Approval, ApprovalStore, AuditEvent, EventKind};

/// Attempts per delivery, and the pause before each retry.
const BACKOFF: [Duration; 3] = [Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)];
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Arguments are cut to this many characters in messages for people.
const ARGS_PREVIEW: usize = 600;

/// The shape of the payload a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// `{"type": "steward.approval.pending", "approval": {...}, "summary", "link"}`.
    #[default]
    Json,
    /// Slack incoming-webhook: `{"text", "blocks"}`.
    Slack,
}

impl std::str::FromStr for WebhookFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(WebhookFormat::Json),
            "slack" => Ok(WebhookFormat::Slack),
            other => Err(format!("unknown webhook format '{other}' (expected json or slack)")),
        }
    }
}

/// One webhook: `{url, format}` in steward.yaml's `approvals.webhooks`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    #[serde(default)]
    pub format: WebhookFormat,
}

impl Webhook {
    /// Checks the URL is http(s): a webhook is configuration, refused at start if wrong.
    pub fn validate(&self) -> Result<(), String> {
        let ok = reqwest::Url::parse(&self.url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        if ok {
            Ok(())
        } else {
            Err(format!(
                "webhook url '{}' is not an http(s) URL",
                redacted_url(&self.url)
            ))
        }
    }
}

/// How a message points people at an approval.
#[derive(Debug, Clone)]
pub enum ApprovalLink {
    /// The gateway's base URL: links go to `{base}/v1/approvals/{id}`.
    Http(String),
    /// The gateway's base URL, with the console on: links open `{base}/ui/approvals/{id}`.
    Console(String),
    /// No HTTP API (the stdio proxy): the command that shows it.
    Cli { db: String },
}

impl ApprovalLink {
    pub fn for_approval(&self, id: &str) -> String {
        match self {
            ApprovalLink::Http(base) => format!("{}/v1/approvals/{id}", base.trim_end_matches('/')),
            ApprovalLink::Console(base) => format!("{}/ui/approvals/{id}", base.trim_end_matches('/')),
            ApprovalLink::Cli { db } => format!("steward approvals show {id} --db {db}"),
        }
    }
}

/// Sends new pending approvals to the configured webhooks.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    hooks: Vec<Webhook>,
    link: ApprovalLink,
    http: reqwest::Client,
}

impl Notifier {
    pub fn new(hooks: Vec<Webhook>, link: ApprovalLink) -> Notifier {
        let http = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(ATTEMPT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Notifier {
            inner: Arc::new(Inner { hooks, link, http }),
        }
    }

    /// A notifier with no webhooks.
    pub fn none(link: ApprovalLink) -> Notifier {
        Notifier::new(Vec::new(), link)
    }

    pub fn link(&self, id: &str) -> String {
        self.inner.link.for_approval(id)
    }

    /// Starts delivering `approval` to every webhook; returns at once. Failures that persist
    /// after the retries are logged and recorded in the audit log through `store`.
    pub fn pending(&self, approval: &Approval, store: &ApprovalStore) {
        if self.inner.hooks.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(approval = %approval.id, "no async runtime: webhooks not sent");
            return;
        };
        let link = self.link(&approval.id);
        for hook in &self.inner.hooks {
            let body = match hook.format {
                WebhookFormat::Json => json_payload(approval, &link),
                WebhookFormat::Slack => slack_payload(approval, &link),
            };
            let (inner, hook, store, approval) = (self.inner.clone(), hook.clone(), store.clone(), approval.clone());
            runtime.spawn(async move {
                if let Err(e) = deliver(&inner.http, &hook.url, &body).await {
                    let host = redacted_url(&hook.url);
                    tracing::warn!(approval = %approval.id, webhook = %host, error = %e, "approval webhook failed");
                    let mut event = AuditEvent::new(EventKind::Approval);
                    event.approval_id = Some(approval.id.clone());
                    event.decision_id = Some(approval.decision_id.clone());
                    event.principal = Some(steward_store::SYSTEM_ACTOR.into());
                    event.server = Some(approval.server.clone());
                    event.tool = Some(approval.tool.clone());
                    event.outcome = Some("notify_failed".into());
                    event.reason = Some(format!(
                        "webhook {host} failed after {} attempts: {e}",
                        BACKOFF.len() + 1
                    ));
                    let _ = tokio::task::spawn_blocking(move || store.record(event)).await;
                }
            });
        }
    }
}

impl Notifier {
    /// Sends a security alert (a canary call) to every webhook; returns at once.
    pub fn alert(&self, title: &str, fields: Value) {
        if self.inner.hooks.is_empty() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for hook in &self.inner.hooks {
            let body = match hook.format {
                WebhookFormat::Json => serde_json::json!({ "event": "steward.alert", "title": title, "alert": fields }),
                WebhookFormat::Slack => serde_json::json!({
                    "text": format!(":rotating_light: {title}"),
                    "blocks": [{ "type": "section", "text": { "type": "mrkdwn", "text": format!("*{title}*\n```{}```", fields) } }],
                }),
            };
            let (inner, url) = (self.inner.clone(), hook.url.clone());
            runtime.spawn(async move {
                if let Err(e) = deliver(&inner.http, &url, &body).await {
                    tracing::error!(webhook = %redacted_url(&url), error = %e, "alert webhook failed");
                }
            });
        }
    }
}

/// POSTs `body`, retrying with backoff; the last error when every attempt failed.
async fn deliver(http: &reqwest::Client, url: &str, body: &Value) -> Result<(), String> {
    let mut last = String::new();
    for attempt in 0..=BACKOFF.len() {
        if attempt > 0 {
            tokio::time::sleep(BACKOFF[attempt - 1]).await;
        }
        match http.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("HTTP {}", r.status().as_u16()),
            // reqwest errors name the URL; keep only what went wrong.
            Err(e) => {
                last = if e.is_timeout() {
                    "timed out".into()
                } else if e.is_connect() {
                    "cannot connect".into()
                } else {
                    "request failed".into()
                }
            }
        }
    }
    Err(last)
}

/// `scheme://host[:port]`: webhook paths are often secrets.
fn redacted_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "<invalid url>".into(),
    }
}

/// One line for people: who wants to run what, at which risk.
pub fn summary(a: &Approval) -> String {
    format!(
        "{} wants to run {} ({} risk): approval {} needs {} approver(s){}",
        a.principal,
        a.target(),
        a.risk,
        a.id,
        a.required_count,
        roles(a)
    )
}

fn roles(a: &Approval) -> String {
    if a.required_roles.is_empty() {
        String::new()
    } else {
        format!(" with role {}", a.required_roles.join(" or "))
    }
}

fn args_preview(a: &Approval) -> String {
    let text = a.args.to_string();
    if text.chars().count() > ARGS_PREVIEW {
        format!("{}…", text.chars().take(ARGS_PREVIEW).collect::<String>())
    } else {
        text
    }
}

pub fn json_payload(a: &Approval, link: &str) -> Value {
    json!({
        "type": "steward.approval.pending",
        "summary": summary(a),
        "link": link,
        "approval": {
            "id": a.id,
            "state": a.state.as_str(),
            "principal": a.principal,
            "server": a.server,
            "tool": a.tool,
            "risk": a.risk,
            "reasons": a.reasons,
            "rule_ids": a.rule_ids,
            "flags": a.flags,
            "args": a.args,
            "args_digest": a.args_digest,
            "required_roles": a.required_roles,
            "required_count": a.required_count,
            "mode": a.mode,
            "created_at": a.created_at,
            "expires_at": a.expires_at,
            "decision_id": a.decision_id,
        },
    })
}

/// Slack's `mrkdwn` needs `&`, `<` and `>` escaped.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The Slack message announcing a new pending approval, with Approve and Deny buttons.
pub fn slack_payload(a: &Approval, link: &str) -> Value {
    slack_message(a, link, None)
}

/// The Slack message for `a`: `status` (what a click did) goes under the header; the Approve and
/// Deny buttons (their `value` is the approval id) are there while `a` is pending.
pub fn slack_message(a: &Approval, link: &str, status: Option<&str>) -> Value {
    let reasons = if a.reasons.is_empty() {
        "-".to_string()
    } else {
        a.reasons
            .iter()
            .map(|r| format!("• {}", esc(r)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let open = if link.starts_with("http://") || link.starts_with("https://") {
        format!("<{}|Open approval {}>", esc(link), esc(&a.id))
    } else {
        format!("`{}`", esc(link))
    };
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": format!("Approval needed: {}", a.target()) } }),
    ];
    if let Some(status) = status {
        blocks.push(json!({ "type": "section", "text": { "type": "mrkdwn", "text": esc(status) } }));
    }
    blocks.extend([
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("*{}* wants to run `{}`", esc(&a.principal), esc(&a.target())) } }),
        json!({ "type": "section", "fields": [
            { "type": "mrkdwn", "text": format!("*Risk*\n{}", esc(&a.risk)) },
            { "type": "mrkdwn", "text": format!("*Approval*\n`{}`", esc(&a.id)) },
            { "type": "mrkdwn", "text": format!("*Approvers*\n{}{}", a.required_count, esc(&roles(a))) },
            { "type": "mrkdwn", "text": format!("*Expires*\n{}", esc(&a.expires_at)) },
        ] }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("*Reasons*\n{reasons}") } }),
        json!({ "type": "section", "text": { "type": "mrkdwn", "text": format!("*Arguments* (secrets redacted)\n```{}```", esc(&args_preview(a))) } }),
    ]);
    if a.state == steward_store::ApprovalState::Pending {
        blocks.push(json!({ "type": "actions", "block_id": "steward_approval", "elements": [
            { "type": "button", "action_id": crate::approver::slack::APPROVE_ACTION, "style": "primary",
              "text": { "type": "plain_text", "text": "Approve" }, "value": a.id },
            { "type": "button", "action_id": crate::approver::slack::DENY_ACTION, "style": "danger",
              "text": { "type": "plain_text", "text": "Deny" }, "value": a.id },
        ] }));
    }
    blocks.push(json!({ "type": "context", "elements": [
        { "type": "mrkdwn", "text": format!("{open} · approve with `steward approvals approve {}`", esc(&a.id)) },
    ] }));
    json!({
        "text": match status {
            Some(s) => format!("{}: {s}", summary(a)),
            None => summary(a),
        },
        "blocks": blocks,
    })
}
