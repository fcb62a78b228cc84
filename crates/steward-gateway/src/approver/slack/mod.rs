//! `POST /v1/slack/interactions`: Approve and Deny clicks on Steward's Slack messages.
//!
//! Authenticated by Slack's request signature, not by API keys: the timestamp is checked on the
//! headers, the raw body is read with a small limit and a time-out, then the signature is
//! verified over it before anything in it is believed. The Slack user must be mapped to a
//! principal in `approvals.slack.users`; the decision then goes through [`Desk`] and the store
//! (every approval rule applies, and the transition writes its audit row naming the principal,
//! with the Slack user in the recorded reason). Every refusal answers 401/403 (400 for a signed
//! but unreadable body) with a `system` audit row naming the reason, never the secret or the
//! signature. The message is updated in place through the interaction's `response_url` from a
//! task of its own, so Slack's 3-second answer never waits for it.

pub mod payload;
mod reply;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use steward_policy::Principal;
use steward_store::{AuditEvent, EventKind};

use super::{Channel, Desk, Via};
use crate::config::SlackConfig;
pub use payload::{APPROVE_ACTION, DENY_ACTION, Interaction};
use signature::{Forgery, Seen};

/// Slack's interaction bodies are a few KiB; anything larger is not one.
pub const MAX_BODY: usize = 64 * 1024;
/// Calls to Slack (the message update, `views.open`) give up after this long.
const SLACK_TIMEOUT: Duration = Duration::from_secs(5);
/// The reason a Deny click records when no reason could be asked for.
pub const DENIED_FROM_SLACK: &str = "denied from Slack";

/// What the Slack route needs: the approval flow, the app's settings, the signatures already
/// seen, and an HTTP client for Slack's side.
pub struct SlackDoor {
    desk: Desk,
    cfg: SlackConfig,
    seen: Seen,
    http: reqwest::Client,
    body_timeout: Duration,
    /// `https://slack.com/api`: where `views.open` is.
    api_base: String,
}

impl SlackDoor {
    pub fn new(desk: Desk, cfg: SlackConfig, body_timeout: Duration) -> SlackDoor {
        let http = reqwest::Client::builder()
            .timeout(SLACK_TIMEOUT)
            .connect_timeout(SLACK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        SlackDoor {
            desk,
            cfg,
            seen: Seen::default(),
            http,
            body_timeout,
            api_base: "https://slack.com/api".into(),
        }
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn problem(status: StatusCode, error: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": error, "message": message }).to_string(),
    )
        .into_response()
}

/// The route's handler.
pub async fn interactions(State(door): State<Arc<SlackDoor>>, headers: HeaderMap, body: Body) -> Response {
    let now = unix_now();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let timestamp = header(signature::TIMESTAMP_HEADER);
    let ts = match signature::fresh(timestamp, now) {
        Ok(ts) => ts,
        Err(f) => return door.forged(&f).await,
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return door.unreadable(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    }
    let body = match tokio::time::timeout(door.body_timeout, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return door.unreadable(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await,
        Err(_) => return door.unreadable(StatusCode::REQUEST_TIMEOUT, "body_timeout").await,
    };
    let sig = match signature::verify(
        door.cfg.secret.as_bytes(),
        timestamp.unwrap_or_default(),
        &body,
        header(signature::SIGNATURE_HEADER),
    ) {
        Ok(sig) => sig,
        Err(f) => return door.forged(&f).await,
    };
    if let Err(f) = door.seen.first_time(sig, ts, now) {
        return door.forged(&f).await;
    }
    let interaction = match payload::parse(&body) {
        Ok(i) => i,
        Err(e) => return door.unreadable_signed(&e.to_string()).await,
    };
    if let Interaction::Other { .. } = interaction {
        return StatusCode::OK.into_response();
    }
    let user = interaction.user().unwrap_or_default().to_string();
    let Some(name) = door.cfg.users.get(&user).cloned() else {
        return door.unmapped(&interaction).await;
    };
    door.act(interaction, &user, &name).await
}

impl SlackDoor {
    /// A signed click from a mapped user: decide, answer Slack, update the message.
    async fn act(self: &Arc<Self>, interaction: Interaction, user: &str, name: &str) -> Response {
        let who = self.desk.approver(&Principal::new(name, "slack"));
        let mut via = Via::new(Channel::Slack);
        via.who_there = Some(format!("Slack user {user}"));
        via.detail = Some(json!({ "slack_user": user }));
        match interaction {
            Interaction::Button {
                approve: true,
                approval,
                response_url,
                ..
            } => match self.desk.approve(&who, &approval, None, &via).await {
                Ok(done) => {
                    let a = &done.approval;
                    let status = if done.complete {
                        format!(":white_check_mark: Approved by {name} (Slack user {user}): the call may run once.")
                    } else {
                        format!(
                            ":ballot_box_with_check: {name} (Slack user {user}) approved ({}); waiting for {} more approver(s).",
                            a.progress(),
                            a.required_count.saturating_sub(a.approvals.len() as u32)
                        )
                    };
                    self.update(response_url, Some(a.clone()), status);
                    StatusCode::OK.into_response()
                }
                Err(e) => {
                    let status = format!(
                        ":no_entry: {name}'s approval (Slack user {user}) was refused: {}",
                        e.message()
                    );
                    let current = self.desk.current(&approval).await;
                    self.update(response_url, current, status);
                    refusal(&e)
                }
            },
            Interaction::Button {
                approve: false,
                approval,
                response_url,
                trigger_id,
                ..
            } => {
                if let (Some(token), Some(trigger)) = (self.cfg.token.clone(), trigger_id) {
                    // views.open must happen within 3 s of the click; the answer to Slack does not
                    // wait for it. If the modal cannot open, the click still denies.
                    let door = self.clone();
                    let (user, name) = (user.to_string(), name.to_string());
                    tokio::spawn(async move {
                        let opened = reply::open_reason_modal(
                            &door.http,
                            &door.api_base,
                            &token,
                            &trigger,
                            &approval,
                            response_url.as_deref(),
                        )
                        .await;
                        if let Err(e) = opened {
                            tracing::warn!(approval = %approval, error = %e, "cannot open Slack's deny-reason modal; denying without a reason");
                            // A refusal is audited and shown in the message by `deny`.
                            let _ = door
                                .deny(&who, &approval, DENIED_FROM_SLACK, &via, response_url, &user, &name)
                                .await;
                        }
                    });
                    return StatusCode::OK.into_response();
                }
                match self
                    .deny(&who, &approval, DENIED_FROM_SLACK, &via, response_url, user, name)
                    .await
                {
                    Ok(()) => StatusCode::OK.into_response(),
                    Err(r) => r,
                }
            }
            Interaction::DenyReason {
                approval,
                reason,
                response_url,
                ..
            } => {
                let reason = if reason.trim().is_empty() {
                    DENIED_FROM_SLACK.to_string()
                } else {
                    reason
                };
                // An empty 200 closes the modal; a refusal is audited and shown in the message.
                let _ = self
                    .deny(&who, &approval, &reason, &via, response_url, user, name)
                    .await;
                StatusCode::OK.into_response()
            }
            Interaction::Other { .. } => StatusCode::OK.into_response(),
        }
    }

    /// Denies through the desk and updates the message; `Err` is the refusal's answer.
    #[allow(clippy::too_many_arguments)]
    async fn deny(
        &self,
        who: &super::Approver,
        approval: &str,
        reason: &str,
        via: &Via,
        response_url: Option<String>,
        user: &str,
        name: &str,
    ) -> Result<(), Response> {
        match self.desk.deny(who, approval, reason, via).await {
            Ok(a) => {
                let status = format!(":x: Denied by {name} (Slack user {user}): {reason}");
                self.update(response_url, Some(a), status);
                Ok(())
            }
            Err(e) => {
                let status = format!(
                    ":no_entry: {name}'s denial (Slack user {user}) was refused: {}",
                    e.message()
                );
                let current = self.desk.current(approval).await;
                self.update(response_url, current, status);
                Err(refusal(&e))
            }
        }
    }

    /// Replaces the message the click came from, from a task with a time-out.
    fn update(&self, response_url: Option<String>, approval: Option<steward_store::Approval>, status: String) {
        let Some(url) = response_url else {
            return;
        };
        let link = approval.as_ref().map(|a| self.desk.link(&a.id));
        let http = self.http.clone();
        tokio::spawn(async move {
            let body = reply::replacement(approval.as_ref(), link.as_deref(), &status);
            if let Err(e) = reply::post(&http, &url, &body).await {
                tracing::warn!(error = %e, "cannot update the Slack message");
            }
        });
    }

    /// A request that is not Slack's (or is a replay): 401 and an audit row.
    async fn forged(&self, f: &Forgery) -> Response {
        self.audit_refusal(f.code(), &format!("Slack interaction refused: {f}"), None)
            .await;
        problem(StatusCode::UNAUTHORIZED, f.code(), &f.to_string())
    }

    /// A body that could not be read in time or within the limit (not yet verified).
    async fn unreadable(&self, status: StatusCode, code: &str) -> Response {
        let why = if status == StatusCode::REQUEST_TIMEOUT {
            format!("the body did not arrive within {}s", self.body_timeout.as_secs_f32())
        } else {
            format!("the body is larger than {MAX_BODY} bytes")
        };
        self.audit_refusal(code, &format!("Slack interaction refused: {why}"), None)
            .await;
        problem(status, code, &why)
    }

    /// A correctly signed body Steward cannot read.
    async fn unreadable_signed(&self, why: &str) -> Response {
        self.audit_refusal("malformed", &format!("Slack interaction refused: {why}"), None)
            .await;
        problem(StatusCode::BAD_REQUEST, "malformed", why)
    }

    /// A signed click from a Slack user `approvals.slack.users` does not name: 403.
    async fn unmapped(&self, i: &Interaction) -> Response {
        let user = i.user().unwrap_or_default();
        let why = format!("Slack user {user} is not mapped to a principal in approvals.slack.users");
        let mut detail = json!({ "slack_user": user, "action": i.action() });
        if let Some(id) = i.approval() {
            detail["approval"] = json!(id);
        }
        self.audit_refusal(
            "unmapped_user",
            &format!("Slack interaction refused: {why}"),
            Some((i.approval(), detail)),
        )
        .await;
        if let Some(url) = i.response_url() {
            let current = match i.approval() {
                Some(id) => self.desk.current(id).await,
                None => None,
            };
            self.update(
                Some(url.to_string()),
                current,
                format!(":no_entry: The click was refused: {why}."),
            );
        }
        problem(StatusCode::FORBIDDEN, "unmapped_user", &why)
    }

    async fn audit_refusal(&self, code: &str, reason: &str, about: Option<(Option<&str>, serde_json::Value)>) {
        tracing::info!(refusal = code, "{reason}");
        let mut event = AuditEvent::new(EventKind::System);
        event.principal = Some(steward_store::SYSTEM_ACTOR.into());
        event.door = Some(Channel::Slack.as_str().into());
        event.outcome = Some("refused".into());
        event.reason = Some(reason.to_string());
        let mut detail = json!({ "channel": Channel::Slack.as_str(), "refusal": code });
        if let Some((approval, extra)) = about {
            event.approval_id = approval.map(str::to_string);
            if let (Some(map), Some(extra)) = (detail.as_object_mut(), extra.as_object()) {
                map.extend(extra.clone());
            }
        }
        event.detail = Some(detail);
        self.desk.record(event).await;
    }
}

/// The HTTP answer to a refused decision: its status, and why.
fn refusal(e: &super::Refused) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::FORBIDDEN);
    problem(status, e.code(), &e.message())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slack_config_never_prints_its_secret() {
        let cfg = SlackConfig {
            signing_secret: crate::config::SecretValue::Env { env: "X".into() },
            users: Default::default(),
            bot_token: None,
            secret: "s3cr3t-value".into(),
            token: Some("xoxb-token".into()),
        };
        let shown = format!("{cfg:?}");
        assert!(!shown.contains("s3cr3t") && !shown.contains("xoxb"), "{shown}");
    }
}
