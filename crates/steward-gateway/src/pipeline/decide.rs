//! Deciding one use of a tool, resource or prompt: the policy, the defences that stand before
//! its verdict, the audit row (committed before anything runs), and the approval flow. Every
//! door's decisions come from here, so they cannot drift apart.

use std::panic::AssertUnwindSafe;
use std::time::SystemTime;

use serde_json::{Value, json};
use steward_mcp::Method;
use steward_policy::{Call, Decision, Effect, Policy, Risk, ToolAnnotations, digest};
use steward_scan::{DriftAction, ScanVerdict, redact};
use steward_store::{AuditEvent, EventKind};

use super::Relay;
use super::approval::Terms;
use super::call::CallContext;
use super::catalog::ToolState;
use super::messages;
use super::verdict::{Decided, DenyKind, Outcome, Use};

/// A defence that refuses a call before the policy's verdict counts.
struct Defence {
    reason: String,
    rule: &'static str,
    canary: bool,
    /// Refused because a check could not run (the shared counters were unreachable).
    fail_closed: bool,
}

/// Armed while a decision row is being committed. A client that goes away then (its request
/// future is dropped) leaves a committed `allow` for a call that never ran: the outcome row says
/// so, rather than leave `audit verify` to report a forwarded call without outcome.
struct Unforwarded<'a> {
    relay: &'a Relay,
    ctx: &'a CallContext,
    call: &'a Use,
    decision_id: &'a str,
    started: std::time::Instant,
    armed: bool,
}

impl Drop for Unforwarded<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.relay.outcome(
                self.ctx,
                self.call.method,
                &self.call.target,
                self.decision_id,
                "client_gone",
                self.started,
                Some(json!({ "forwarded": false })),
            );
        }
    }
}

impl Relay {
    /// Decides one use at `ctx`'s door. `known` is what Steward knows of the tool (its scan
    /// findings, drift and annotations); `can_ask`: the door can ask its user to confirm.
    pub async fn decide(&self, ctx: &CallContext, call: &Use, known: Option<&ToolState>, can_ask: bool) -> Decided {
        let decision_id = uuid::Uuid::now_v7().to_string();
        let policy = self.policy();
        let annotations: Option<&ToolAnnotations> = known.and_then(|k| k.annotations.as_ref());
        let mut decision = evaluate(&policy, ctx, call, annotations);
        if decision.effect == Effect::Ask && !can_ask {
            decision.effect = Effect::Approve;
            decision
                .reasons
                .push("the client cannot ask its user (no elicitation), so a human approves instead".into());
        }

        let args_digest = digest::args_digest(&call.args);
        let target = ctx.target(&call.target);
        let defence = match call.method {
            Method::ToolsCall => {
                self.defence(&policy, ctx, &call.target, known, &target, &args_digest)
                    .await
            }
            _ => None,
        };
        let mut deny_kind = DenyKind::Policy;
        let mut canary = false;
        if let Some(d) = defence {
            canary = d.canary;
            deny_kind = if d.fail_closed {
                DenyKind::FailClosed
            } else {
                DenyKind::Defence
            };
            decision.effect = Effect::Deny;
            if canary {
                decision.risk = Risk::Critical;
            }
            decision.reasons = vec![d.reason];
            decision.rule_ids = vec![d.rule.to_string()];
        }

        // Approval flow: a grant of this exact call, or the approval it will wait for.
        let plan = match (&self.approvals, decision.effect) {
            (Some(a), Effect::Approve) => Some(a.plan(ctx, &call.target, &args_digest, &decision.policy_version).await),
            _ => None,
        };

        let mut event = self.decision_event(ctx, &decision_id, call, &decision, args_digest);
        if let Some(Ok(plan)) = &plan {
            event.approval_id = Some(plan.id().to_string());
            let detail = event.detail.get_or_insert_with(|| json!({}));
            detail["approval"] = plan.detail();
        }
        let mut gone = Unforwarded {
            relay: self,
            ctx,
            call,
            decision_id: &decision_id,
            started: std::time::Instant::now(),
            armed: true,
        };
        let committed = match &self.audit {
            Ok(log) => log.append(event).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        gone.armed = false;
        drop(gone);
        if canary {
            self.canary_alert(ctx, &call.target, &decision_id);
        }
        let outcome = match committed {
            Err(e) => {
                tracing::error!(error = %e, %target, "audit log unavailable; refusing the call");
                Outcome::Denied {
                    kind: DenyKind::FailClosed,
                    message: messages::audit_unavailable(&target, &e, &decision_id),
                }
            }
            Ok(_) => match (plan, &self.approvals) {
                (Some(Ok(plan)), Some(approvals)) => {
                    let terms = Terms::of(&decision, &policy);
                    approvals
                        .settle(plan, ctx, call, (&decision_id, &decision), terms)
                        .await
                }
                (Some(Err(e)), _) => {
                    tracing::error!(error = %e, %target, "approval store unavailable; refusing the call");
                    Outcome::Denied {
                        kind: DenyKind::FailClosed,
                        message: messages::approvals_unavailable(&target, &e, &decision_id),
                    }
                }
                _ => match decision.effect {
                    Effect::Allow => Outcome::Allowed { approval: None },
                    Effect::Ask => Outcome::Ask,
                    Effect::Approve | Effect::Deny => Outcome::Denied {
                        kind: if decision.rule_ids.first().is_some_and(|r| r == "steward:internal") {
                            DenyKind::FailClosed
                        } else {
                            deny_kind
                        },
                        message: messages::denied(&target, &decision, &decision_id),
                    },
                },
            },
        };
        self.metrics.decision(
            ctx.door.as_str(),
            call.method.as_str(),
            outcome.enforced(),
            decision.risk.as_str(),
        );
        Decided {
            decision_id,
            decision,
            outcome,
        }
    }

    async fn defence(
        &self,
        policy: &Policy,
        ctx: &CallContext,
        tool: &str,
        known: Option<&ToolState>,
        target: &str,
        args_digest: &str,
    ) -> Option<Defence> {
        let prot = policy.protections();
        if prot.canaries.iter().any(|c| c.name == tool) {
            return Some(Defence {
                reason: messages::canary(tool),
                rule: "steward:canary",
                canary: true,
                fail_closed: false,
            });
        }
        if let Some(k) = known {
            if prot.scan.verdict(&k.findings) == ScanVerdict::Block {
                let kinds: Vec<&str> = k.findings.iter().map(|f| f.kind).collect();
                return Some(Defence {
                    reason: messages::tool_blocked(&messages::description_flagged(&kinds.join(", "))),
                    rule: "steward:tool-blocked",
                    canary: false,
                    fail_closed: false,
                });
            }
            if prot.on_drift == DriftAction::Block
                && let Some(d) = &k.drift
            {
                return Some(Defence {
                    reason: messages::tool_blocked(&messages::tool_drifted(&ctx.server, tool, d)),
                    rule: "steward:tool-drift",
                    canary: false,
                    fail_closed: false,
                });
            }
        }
        self.runaway
            .admit(policy, &ctx.principal.id, target, args_digest)
            .await
            .map(|t| Defence {
                reason: t.reason,
                rule: t.rule,
                canary: false,
                fail_closed: t.fail_closed,
            })
    }

    fn decision_event(
        &self,
        ctx: &CallContext,
        decision_id: &str,
        call: &Use,
        decision: &Decision,
        args_digest: String,
    ) -> AuditEvent {
        let mut event = self.event(
            EventKind::Decision,
            ctx,
            decision_id,
            Some(&call.target),
            call.method.as_str(),
        );
        event.args = Some(redact::redact_args(&call.args));
        event.args_digest = Some(args_digest);
        event.effect = Some(decision.effect.as_str().to_string());
        event.risk = Some(decision.risk.as_str().to_string());
        event.flags = decision.flags.clone();
        event.reason = Some(redact::redact_text(&decision.reason()));
        event.rule_ids = decision.rule_ids.clone();
        event.policy_version = Some(decision.policy_version.clone());
        event.operation = decision.operation.clone();
        if !decision.findings.is_empty() {
            let findings: Vec<Value> = decision
                .findings
                .iter()
                .map(|f| json!({"flag": f.flag, "risk": f.risk.as_str(), "detail": redact::redact_text(&f.detail)}))
                .collect();
            event.detail = Some(json!({ "findings": findings }));
        }
        if let Some(shadow) = &decision.shadow {
            // Shadow mode: the call runs with the enforced effect; the row says what would have happened.
            event.reason = Some(redact::redact_text(&format!(
                "[shadow] would {}: {}",
                shadow.effect,
                shadow.reasons.join("; ")
            )));
            let detail = event.detail.get_or_insert_with(|| json!({}));
            detail["shadow_effect"] = json!(shadow.effect.as_str());
            detail["shadow_rule_ids"] = json!(shadow.rule_ids);
        }
        event
    }

    fn canary_alert(&self, ctx: &CallContext, tool: &str, decision_id: &str) {
        let target = ctx.target(tool);
        tracing::error!(%target, principal = %ctx.principal.id, decision = %decision_id, "canary tool called");
        if let Some(a) = &self.approvals {
            a.notifier().alert(
                &format!("Canary tool {target} called by {}", ctx.principal.id),
                json!({ "server": ctx.server, "tool": tool, "principal": ctx.principal.id, "decision_id": decision_id, "risk": "CRITICAL" }),
            );
        }
    }

    /// Records a use refused before the policy saw it (a limit, unreadable params); returns the
    /// decision id quoted to the client.
    pub(crate) fn refused_use(&self, ctx: &CallContext, method: Method, target: Option<&str>, reason: &str) -> String {
        let decision_id = uuid::Uuid::now_v7().to_string();
        let mut event = self.event(EventKind::Decision, ctx, &decision_id, target, method.as_str());
        event.effect = Some("deny".into());
        event.reason = Some(redact::redact_text(reason));
        event.policy_version = Some(self.policy().version().to_string());
        self.append_nowait(event);
        self.metrics.decision(ctx.door.as_str(), method.as_str(), "deny", "-");
        decision_id
    }
}

/// The policy's decision; a panic in the engine denies (fail closed).
fn evaluate(policy: &Policy, ctx: &CallContext, call: &Use, annotations: Option<&ToolAnnotations>) -> Decision {
    let c = Call {
        annotations,
        method: call.method.as_str(),
        door: ctx.door.policy_name(),
        client_name: ctx.client_name.as_deref(),
        client_version: ctx.client_version.as_deref(),
        now: SystemTime::now(),
        server_version: ctx.server_info.version.as_deref(),
        server_data_scope: ctx.server_info.data_scope.as_deref(),
        server_risk: ctx.server_info.risk,
        server_status: ctx.server_info.status.as_deref(),
        ..Call::tool_call(&ctx.principal, &ctx.server, &call.target, &call.args)
    };
    match std::panic::catch_unwind(AssertUnwindSafe(|| policy.decide(&c))) {
        Ok(d) => d,
        Err(_) => {
            let mut d = Decision::fail_closed(
                "internal error while evaluating the policy; denied (fail closed)",
                policy.version(),
            );
            d.rule_ids = vec!["steward:internal".into()];
            d
        }
    }
}
