//! Approvers deciding where they already are: Slack buttons ([`slack`]), and an MCP server of
//! Steward's own whose tools list and decide approvals ([`mcp`]), served at `/mcp/_approvals`
//! on the gateway and over stdio by `steward proxy --approvals` ([`stdio`]).
//!
//! Nothing here decides who may approve: every approve and deny goes through
//! [`crate::pipeline::Approvals`] and the store, which refuse the requester, a missing role, a
//! second vote by the same person and an expired approval, and write each transition's audit
//! row. This module adds what the store cannot know: an approver the policy marks
//! `kind: agent`, or one holding no role at all, is refused before the store is asked. Every
//! refused attempt leaves a `system` audit row naming who tried what and why it was refused.

pub mod mcp;
pub mod slack;
pub mod stdio;
mod tools;
mod view;

use std::sync::Arc;

use serde_json::{Value, json};
use steward_policy::{Policy, Principal};
use steward_store::{
    APPROVER_ROLE, Actor, Approval, ApprovalError, ApprovalState, Approved, AuditEvent, EventKind, MAX_LIST,
};

use crate::pipeline::{Approvals, Relay};

/// The name under `/mcp/` where the approver endpoint is served; no upstream may take it.
pub const ENDPOINT_NAME: &str = "_approvals";

/// Longest reason an approver may give: the store takes 2,000 bytes and the channel's note is
/// appended.
const MAX_REASON_CHARS: usize = 1_500;

/// The roles `p` acts with on approvals: those their credential carries plus those the
/// policy's `principals:` entry gives them.
///
/// A principal the policy marks `kind: agent` holds no roles here, so it can never decide an
/// approval at any door (the store refuses a principal without roles), whatever its credential
/// says.
pub fn actor(policy: &Policy, p: &Principal) -> Actor {
    if policy.is_agent(&p.id) {
        return Actor {
            name: p.id.clone(),
            roles: Vec::new(),
        };
    }
    let mut roles = p.roles.clone();
    for r in policy.principal_roles(&p.id) {
        if !roles.contains(&r) {
            roles.push(r);
        }
    }
    Actor {
        name: p.id.clone(),
        roles,
    }
}

/// Who is deciding, as the approval flow sees them.
#[derive(Debug, Clone)]
pub struct Approver {
    pub actor: Actor,
    /// The policy marks them `kind: agent`: they never decide an approval.
    pub agent: bool,
}

/// Where an approver acted; named in audit rows and in the reason the store records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// A button in a Slack message (`POST /v1/slack/interactions`).
    Slack,
    /// `/mcp/_approvals` on the gateway.
    Mcp,
    /// `steward proxy --approvals`.
    Stdio,
}

impl Channel {
    /// The `door` of audit rows about refused attempts.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Slack => "slack",
            Channel::Mcp => "approver-mcp",
            Channel::Stdio => "approver-stdio",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Channel::Slack => "from Slack",
            Channel::Mcp => "through /mcp/_approvals",
            Channel::Stdio => "through steward proxy --approvals",
        }
    }
}

/// One approver's act: the channel, and what identifies them there (the Slack user id).
#[derive(Debug, Clone)]
pub struct Via {
    pub channel: Channel,
    /// Shown in the recorded reason, e.g. `Slack user U024BE7LH`.
    pub who_there: Option<String>,
    /// Added to the `detail` of refusal rows.
    pub detail: Option<Value>,
}

impl Via {
    pub fn new(channel: Channel) -> Via {
        Via {
            channel,
            who_there: None,
            detail: None,
        }
    }

    /// The reason the store records: the approver's words, then where they acted.
    fn reason(&self, given: Option<&str>) -> String {
        let place = match &self.who_there {
            Some(w) => format!("{} ({w})", self.channel.label()),
            None => self.channel.label().to_string(),
        };
        match given.map(str::trim).filter(|r| !r.is_empty()) {
            Some(r) => format!("{} [{place}]", cut(r, MAX_REASON_CHARS)),
            None => place,
        }
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Why an approver's act was refused (or could not be carried out).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error(
        "{who} is an agent (kind: agent in the policy's principals:): an agent never approves or denies a call; a person has to"
    )]
    Agent { who: String },
    #[error(
        "{who} holds no role, so it cannot approve anything: approvers need {APPROVER_ROLE} or a role the policy's approvers name"
    )]
    NoRole { who: String },
    #[error("approvals are not available here (the approval store could not be opened)")]
    Unavailable,
    #[error(transparent)]
    Approval(#[from] ApprovalError),
}

impl Refused {
    /// The HTTP status that says what kind of refusal this is.
    pub fn status(&self) -> u16 {
        match self {
            Refused::Agent { .. } | Refused::NoRole { .. } => 403,
            Refused::Unavailable => 503,
            Refused::Approval(e) => match e {
                ApprovalError::NotFound(_) => 404,
                ApprovalError::SelfApproval { .. } | ApprovalError::MissingRole { .. } => 403,
                ApprovalError::NotPending { .. }
                | ApprovalError::Expired { .. }
                | ApprovalError::AlreadyApproved { .. } => 409,
                ApprovalError::InvalidInput(_) => 400,
                ApprovalError::Store(_) => 503,
            },
        }
    }

    /// A short name for the refusal, for audit details.
    pub fn code(&self) -> &'static str {
        match self {
            Refused::Agent { .. } => "agent",
            Refused::NoRole { .. } => "no_role",
            Refused::Unavailable => "unavailable",
            Refused::Approval(e) => match e {
                ApprovalError::NotFound(_) => "not_found",
                ApprovalError::SelfApproval { .. } => "self_approval",
                ApprovalError::MissingRole { .. } => "missing_role",
                ApprovalError::NotPending { .. } => "not_pending",
                ApprovalError::Expired { .. } => "expired",
                ApprovalError::AlreadyApproved { .. } => "already_approved",
                ApprovalError::InvalidInput(_) => "invalid_request",
                ApprovalError::Store(_) => "unavailable",
            },
        }
    }

    /// What to tell the approver. A store failure is not described (it may name paths).
    pub fn message(&self) -> String {
        match self {
            Refused::Approval(ApprovalError::Store(_)) => "the approval store is unavailable; try again".into(),
            other => other.to_string(),
        }
    }
}

/// The approval flow as approvers reach it: the relay's policy (for roles and agents), its
/// approvals and its audit log.
#[derive(Clone)]
pub struct Desk {
    relay: Arc<Relay>,
}

impl Desk {
    pub fn new(relay: Arc<Relay>) -> Desk {
        Desk { relay }
    }

    pub fn relay(&self) -> &Arc<Relay> {
        &self.relay
    }

    /// `p` as an approver, with the policy in force now.
    pub fn approver(&self, p: &Principal) -> Approver {
        let policy = self.relay.policy();
        Approver {
            actor: actor(&policy, p),
            agent: policy.is_agent(&p.id),
        }
    }

    fn approvals(&self) -> Result<&Arc<Approvals>, Refused> {
        self.relay.approvals().ok_or(Refused::Unavailable)
    }

    /// Where people are pointed for an approval (the gateway's API, or the CLI command).
    pub fn link(&self, id: &str) -> String {
        match self.relay.approvals() {
            Some(a) => a.notifier().link(id),
            None => format!("steward approvals show {id}"),
        }
    }

    /// The pending approvals `who` could decide, newest first.
    pub async fn pending(&self, who: &Approver) -> Result<Vec<Approval>, Refused> {
        let all = self.approvals()?.list(Some(ApprovalState::Pending), MAX_LIST).await?;
        Ok(all.into_iter().filter(|a| may_decide(a, who)).collect())
    }

    /// One approval, if `who` asked for it or could decide it; otherwise "not found", the same
    /// answer as for an id that does not exist.
    pub async fn show(&self, who: &Approver, id: &str) -> Result<Approval, Refused> {
        match self.approvals()?.get(id).await? {
            Some(a) if same_person(&a.principal, &who.actor.name) || may_decide_any_state(&a, who) => Ok(a),
            _ => Err(ApprovalError::NotFound(id.to_string()).into()),
        }
    }

    /// An approval as the store holds it now, whoever asks (for messages about it).
    pub async fn current(&self, id: &str) -> Option<Approval> {
        self.approvals().ok()?.get(id).await.ok().flatten()
    }

    /// Records `who`'s approval through the store (which applies every rule). A refusal is
    /// audited.
    pub async fn approve(
        &self,
        who: &Approver,
        id: &str,
        reason: Option<&str>,
        via: &Via,
    ) -> Result<Approved, Refused> {
        let r = async {
            if who.agent {
                return Err(Refused::Agent {
                    who: who.actor.name.clone(),
                });
            }
            if who.actor.roles.is_empty() {
                return Err(Refused::NoRole {
                    who: who.actor.name.clone(),
                });
            }
            Ok(self
                .approvals()?
                .approve(id, who.actor.clone(), Some(via.reason(reason)))
                .await?)
        }
        .await;
        match &r {
            Ok(done) => {
                tracing::info!(approval = %id, by = %who.actor.name, channel = via.channel.as_str(), complete = done.complete, "approval recorded")
            }
            Err(e) => self.refused(who, id, "approve", e, via).await,
        }
        r
    }

    /// Records `who`'s denial through the store (the requester's own denial withdraws the
    /// call). A refusal is audited.
    pub async fn deny(&self, who: &Approver, id: &str, reason: &str, via: &Via) -> Result<Approval, Refused> {
        let r = async {
            if who.agent {
                return Err(Refused::Agent {
                    who: who.actor.name.clone(),
                });
            }
            if reason.trim().is_empty() {
                return Err(ApprovalError::InvalidInput("a denial needs a reason".into()).into());
            }
            Ok(self
                .approvals()?
                .deny(id, who.actor.clone(), via.reason(Some(reason)))
                .await?)
        }
        .await;
        match &r {
            Ok(a) => {
                tracing::info!(approval = %id, by = %who.actor.name, channel = via.channel.as_str(), state = %a.state, "approval denied")
            }
            Err(e) => self.refused(who, id, "deny", e, via).await,
        }
        r
    }

    /// Audits a refused attempt: who tried which act on which approval, and why it failed.
    async fn refused(&self, who: &Approver, id: &str, action: &str, e: &Refused, via: &Via) {
        tracing::info!(approval = %cut(id, 64), by = %who.actor.name, channel = via.channel.as_str(), refusal = e.code(), "approver's {action} refused");
        let mut event = AuditEvent::new(EventKind::System);
        event.principal = Some(who.actor.name.clone());
        event.door = Some(via.channel.as_str().into());
        event.approval_id = looks_like_id(id).then(|| id.to_string());
        event.outcome = Some("refused".into());
        event.reason = Some(format!(
            "{} {} refused: {action} of approval {}: {}",
            who.actor.name,
            via.channel.label(),
            cut(id, 64),
            e.message()
        ));
        let mut detail = json!({
            "channel": via.channel.as_str(),
            "action": action,
            "refusal": e.code(),
            "roles": who.actor.roles,
        });
        if let (Some(extra), Some(map)) = (via.detail.as_ref().and_then(Value::as_object), detail.as_object_mut()) {
            map.extend(extra.clone());
        }
        event.detail = Some(detail);
        self.record(event).await;
    }

    /// Appends an audit row and waits for it to be committed (refusals are answered after their
    /// row exists). A log that cannot be written is logged.
    pub async fn record(&self, event: AuditEvent) {
        match self.relay.audit() {
            Some(log) => {
                if let Err(e) = log.append(event).await {
                    tracing::error!(error = %e, "cannot record an approver's refusal");
                }
            }
            None => tracing::error!("audit log unavailable: an approver's refusal is not recorded"),
        }
    }
}

/// Principal names compare as the store compares them: trimmed, without case.
fn same_person(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Approval ids are `apr-` and hex; anything else is not put in an audit column.
fn looks_like_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Whether `who` is someone who could decide `a` (whatever its state): not its requester, not an
/// agent, holding a role it asks for ([`Actor::may_decide`]). The store has the final word when
/// they act.
fn may_decide_any_state(a: &Approval, who: &Approver) -> bool {
    !who.agent && !same_person(&a.principal, &who.actor.name) && who.actor.may_decide(a)
}

/// [`may_decide_any_state`] for a pending approval.
fn may_decide(a: &Approval, who: &Approver) -> bool {
    a.state == ApprovalState::Pending && may_decide_any_state(a, who)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_holds_no_approver_role_at_any_door() {
        let policy = Policy::from_yaml(
            "version: 1\nprincipals:\n  bot: { kind: agent, roles: [\"steward:approver\"] }\n  bob: { roles: [\"steward:approver\"] }\n",
            "p.yaml",
        )
        .unwrap();
        let mut bot = Principal::new("bot", "api-key");
        bot.roles = vec!["steward:approver".into()];
        assert!(
            actor(&policy, &bot).roles.is_empty(),
            "the credential's roles do not count for an agent"
        );
        assert_eq!(
            actor(&policy, &Principal::new("bob", "api-key")).roles,
            vec!["steward:approver".to_string()]
        );
    }

    fn approval(principal: &str, roles: &[&str]) -> Approval {
        Approval {
            id: "apr-000000000001".into(),
            state: ApprovalState::Pending,
            principal: principal.into(),
            server: "ops".into(),
            tool: "run".into(),
            risk: "CRITICAL".into(),
            decision_id: "d".into(),
            args: json!({}),
            args_digest: "sha256:x".into(),
            policy_version: "v".into(),
            reasons: vec![],
            rule_ids: vec![],
            flags: vec![],
            required_roles: roles.iter().map(|r| r.to_string()).collect(),
            required_count: 1,
            mode: "hold".into(),
            door: None,
            session: None,
            client: None,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            expires_at: "2026-01-01T01:00:00.000Z".into(),
            grant_window_seconds: 60,
            approvals: vec![],
            decided_at: None,
            decided_by: None,
            decision_reason: None,
            grant_expires_at: None,
            consumed_at: None,
            consumed_by: None,
            finished_at: None,
        }
    }

    fn who(name: &str, roles: &[&str], agent: bool) -> Approver {
        Approver {
            actor: Actor {
                name: name.into(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
            },
            agent,
        }
    }

    #[test]
    fn only_people_who_could_decide_see_an_approval_listed() {
        let a = approval("alice", &["admin"]);
        assert!(may_decide(&a, &who("bob", &["admin"], false)));
        assert!(!may_decide(&a, &who("Alice", &["admin"], false)), "not the requester");
        assert!(
            !may_decide(&a, &who("dave", &["auditor"], false)),
            "not without the role"
        );
        assert!(!may_decide(&a, &who("bot", &["admin"], true)), "not an agent");
        let open = approval("alice", &[]);
        assert!(!may_decide(&open, &who("eve", &[], false)), "not without any role");
        assert!(!may_decide(&open, &who("bob", &["admin"], false)));
        assert!(may_decide(&open, &who("carol", &[APPROVER_ROLE], false)));
        let mut done = a.clone();
        done.state = ApprovalState::Approved;
        assert!(!may_decide(&done, &who("bob", &["admin"], false)));
    }

    #[test]
    fn the_recorded_reason_names_the_channel() {
        let mut via = Via::new(Channel::Slack);
        via.who_there = Some("Slack user U024BE7LH".into());
        assert_eq!(via.reason(None), "from Slack (Slack user U024BE7LH)");
        assert_eq!(
            via.reason(Some(" planned ")),
            "planned [from Slack (Slack user U024BE7LH)]"
        );
        let long = "x".repeat(5_000);
        assert!(Via::new(Channel::Mcp).reason(Some(&long)).len() < 2_000);
    }
}
