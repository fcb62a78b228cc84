//! The one decision pipeline: build a call, ask the policy, record the decision, say what to do.
//! Doors never decide and never write audit rows themselves.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};
use steward_policy::{Call, Decision, Effect, Policy, Principal, ToolAnnotations, digest, redact};
use steward_store::{AuditEvent, AuditLog, EventKind};

/// Who is calling through which door, for one session.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub principal: Principal,
    pub server: String,
    pub door: &'static str,
    pub session: String,
    pub client_name: Option<String>,
    pub client_version: Option<String>,
}

impl CallContext {
    fn client(&self) -> Option<String> {
        self.client_name.as_ref().map(|n| match &self.client_version {
            Some(v) => format!("{n}/{v}"),
            None => n.clone(),
        })
    }
}

/// What a door must do with a governed call.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub decision_id: String,
    pub decision: Decision,
    /// Forward the call upstream (the decision allowed it and its audit row is committed).
    pub forward: bool,
    /// For refused calls: the text the model reads.
    pub message: String,
}

/// The shared pipeline: the policy in force and the audit log.
pub struct Pipeline {
    policy: RwLock<Arc<Policy>>,
    audit: Result<AuditLog, String>,
}

impl Pipeline {
    /// `audit` is the opened audit log, or why it could not be opened: then every governed
    /// call is refused (fail closed) with that reason.
    pub fn new(policy: Arc<Policy>, audit: Result<AuditLog, String>) -> Pipeline {
        Pipeline { policy: RwLock::new(policy), audit }
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref().ok()
    }

    /// Decides a `tools/call`, records the decision, and returns what to do.
    pub async fn tool_call(&self, ctx: &CallContext, tool: &str, args: &Value, annotations: Option<&ToolAnnotations>) -> Verdict {
        let decision_id = uuid::Uuid::now_v7().to_string();
        let policy = self.policy();
        let call = Call {
            annotations,
            door: ctx.door,
            client_name: ctx.client_name.as_deref(),
            client_version: ctx.client_version.as_deref(),
            now: SystemTime::now(),
            ..Call::tool_call(&ctx.principal, &ctx.server, tool, args)
        };
        let decision = match std::panic::catch_unwind(AssertUnwindSafe(|| policy.decide(&call))) {
            Ok(d) => d,
            Err(_) => internal_error_decision(&policy),
        };

        let mut event = self.event(EventKind::Decision, ctx, &decision_id, tool, "tools/call");
        event.args = Some(redact::redact_args(args));
        event.args_digest = Some(digest::args_digest(args));
        event.effect = Some(decision.effect.as_str().to_string());
        event.risk = Some(decision.risk.as_str().to_string());
        event.flags = decision.flags.clone();
        event.reason = Some(redact::redact_text(&decision.reason()));
        event.rule_ids = decision.rule_ids.clone();
        event.policy_version = Some(decision.policy_version.clone());
        if !decision.findings.is_empty() {
            let findings: Vec<Value> = decision
                .findings
                .iter()
                .map(|f| json!({"flag": f.flag, "risk": f.risk.as_str(), "detail": redact::redact_text(&f.detail)}))
                .collect();
            event.detail = Some(json!({ "findings": findings }));
        }

        let committed = match &self.audit {
            Ok(log) => log.append(event).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        let target = format!("{}/{}", ctx.server, tool);
        match committed {
            Err(e) => {
                tracing::error!(error = %e, %target, "audit log unavailable; refusing the call");
                Verdict {
                    message: format!(
                        "Steward refused the call to {target}: the audit log cannot be written ({e}), and calls are only run once they are recorded. Decision {decision_id}."
                    ),
                    decision_id,
                    decision,
                    forward: false,
                }
            }
            Ok(_) => {
                let message = refusal_message(&target, &decision, &decision_id);
                Verdict { forward: decision.effect == Effect::Allow, decision_id, decision, message }
            }
        }
    }

    /// Records how a forwarded call ended. Never blocks the caller.
    pub fn outcome(&self, ctx: &CallContext, decision_id: &str, tool: &str, outcome: &str, started: Instant) {
        let mut event = self.event(EventKind::Outcome, ctx, decision_id, tool, "tools/call");
        event.outcome = Some(outcome.to_string());
        event.duration_ms = Some((started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0);
        self.append_nowait(event);
    }

    /// Records that `tools/list` answered with some tools hidden from this principal.
    pub fn tools_hidden(&self, ctx: &CallContext, hidden: &[String]) {
        let decision_id = uuid::Uuid::now_v7().to_string();
        let mut event = self.event(EventKind::Decision, ctx, &decision_id, "", "tools/list");
        event.tool = None;
        event.effect = Some("allow".into());
        event.reason = Some(format!("{} tool(s) hidden: the principal may never call them", hidden.len()));
        event.policy_version = Some(self.policy().version().to_string());
        event.detail = Some(json!({ "hidden": hidden }));
        self.append_nowait(event);
    }

    /// Records a call refused by a rate or concurrency limit before the policy saw it; returns
    /// the decision id quoted to the client.
    pub fn limited(&self, ctx: &CallContext, tool: &str, reason: &str) -> String {
        let decision_id = uuid::Uuid::now_v7().to_string();
        let mut event = self.event(EventKind::Decision, ctx, &decision_id, tool, "tools/call");
        event.effect = Some("deny".into());
        event.reason = Some(reason.to_string());
        event.policy_version = Some(self.policy().version().to_string());
        self.append_nowait(event);
        decision_id
    }

    /// Records a message refused before it reached the policy (malformed, oversized, no id).
    pub fn refused_message(&self, ctx: &CallContext, method: Option<&str>, reason: &str) {
        let mut event = AuditEvent::new(EventKind::System);
        event.principal = Some(ctx.principal.id.clone());
        event.session = Some(ctx.session.clone());
        event.door = Some(ctx.door.into());
        event.server = Some(ctx.server.clone());
        event.method = method.map(str::to_string);
        event.effect = Some("deny".into());
        event.reason = Some(reason.to_string());
        self.append_nowait(event);
    }

    /// Whether `tools/list` may show this tool to this principal.
    pub fn visible(&self, ctx: &CallContext, tool: &str) -> bool {
        self.policy().visible(&ctx.principal, &ctx.server, tool)
    }

    fn event(&self, kind: EventKind, ctx: &CallContext, decision_id: &str, tool: &str, method: &str) -> AuditEvent {
        let mut e = AuditEvent::new(kind);
        e.decision_id = Some(decision_id.to_string());
        e.principal = Some(ctx.principal.id.clone());
        e.client = ctx.client();
        e.session = Some(ctx.session.clone());
        e.door = Some(ctx.door.to_string());
        e.server = Some(ctx.server.clone());
        e.tool = Some(tool.to_string());
        e.method = Some(method.to_string());
        e
    }

    fn append_nowait(&self, event: AuditEvent) {
        if let Ok(log) = &self.audit
            && let Err(e) = log.append_nowait(event)
        {
            tracing::error!(error = %e, "cannot record audit event");
        }
    }
}

fn internal_error_decision(policy: &Policy) -> Decision {
    Decision::fail_closed("internal error while evaluating the policy; denied (fail closed)", policy.version())
}

/// The text a model reads when its call is refused: what, why, and what not to do next.
fn refusal_message(target: &str, d: &Decision, decision_id: &str) -> String {
    let rules = if d.rule_ids.is_empty() { String::new() } else { format!(" (rule {})", d.rule_ids.join(", ")) };
    let reason = redact::redact_text(&d.reason());
    match d.effect {
        Effect::Approve => format!(
            "Steward blocked the call to {target}: it requires human approval ({reason}){rules}. Approval is not available through this door, so the call was denied and not run. Risk {}. Decision {decision_id}.",
            d.risk
        ),
        _ => format!(
            "Steward denied the call to {target}: {reason}{rules}. The call was not run. Risk {}. Decision {decision_id}. Do not retry it with the same arguments.",
            d.risk
        ),
    }
}
