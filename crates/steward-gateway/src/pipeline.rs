//! The one decision pipeline: build a call, ask the policy, record the decision, say what to do.
//! Doors never decide and never write audit rows themselves.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime};

use serde_json::{Value, json};
use steward_policy::{Call, Decision, Effect, Policy, Principal, ToolAnnotations, digest};
use steward_scan::redact;
use steward_store::{AuditEvent, AuditLog, EventKind};

use crate::approval::{ApprovalTicket, Approvals, Confirmation, Decided, Progress, Terms};

/// What the approved-server registry says about a server, for `server.*` in policy.
#[derive(Debug, Clone, Default)]
pub struct ServerInfo {
    pub version: Option<String>,
    pub data_scope: Option<String>,
    pub risk: Option<steward_policy::Risk>,
}

/// Who is calling through which door, for one session.
#[derive(Debug, Clone)]
pub struct CallContext {
    pub principal: Principal,
    pub server: String,
    pub server_info: ServerInfo,
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
    /// For `approve` decisions, with approvals enabled: the approval the call runs on
    /// (`granted`) or waits for.
    pub approval: Option<ApprovalTicket>,
}

impl Verdict {
    /// Whether the door should hold the request until an approver decides
    /// ([`Pipeline::hold`]); a door that cannot hold sends `message` (it names the approval).
    pub fn must_hold(&self) -> bool {
        !self.forward
            && self
                .approval
                .as_ref()
                .is_some_and(|t| !t.granted && t.mode == steward_policy::ApprovalMode::Hold)
    }

    /// Whether the door should ask its user to confirm the call (an `ask` decision, at a door
    /// that said it can); then it reports the answer with [`Pipeline::confirm`].
    pub fn must_ask(&self) -> bool {
        !self.forward && self.decision.effect == Effect::Ask
    }
}

/// The shared pipeline: the policy in force and the audit log.
pub struct Pipeline {
    policy: RwLock<Arc<Policy>>,
    audit: Result<AuditLog, String>,
    inspector: crate::inspect::Inspector,
    /// Tool annotations learnt from `tools/list`, by (server, tool), for classifying tools.
    annotations: std::sync::Mutex<std::collections::HashMap<(String, String), ToolAnnotations>>,
    /// The approval flow; without it an `approve` decision is refused like a deny.
    approvals: Option<Arc<Approvals>>,
}

impl Pipeline {
    /// `audit` is the opened audit log, or why it could not be opened: then every governed
    /// call is refused (fail closed) with that reason.
    pub fn new(policy: Arc<Policy>, audit: Result<AuditLog, String>) -> Pipeline {
        let inspector = crate::inspect::Inspector::new(audit.as_ref().ok().map(|a| a.path()));
        Pipeline {
            policy: RwLock::new(policy),
            audit,
            inspector,
            annotations: Default::default(),
            approvals: None,
        }
    }

    /// Enables the approval flow: `approve` decisions create approvals (see [`crate::approval`]).
    pub fn with_approvals(mut self, approvals: Approvals) -> Pipeline {
        self.approvals = Some(Arc::new(approvals));
        self
    }

    pub fn approvals(&self) -> Option<&Arc<Approvals>> {
        self.approvals.as_ref()
    }

    /// Holds a call whose verdict [`Verdict::must_hold`] until its approval is decided or the
    /// hold times out (a denial). The returned verdict forwards the call or refuses it with the
    /// reason. Progress notifications go out through `progress` every ~10 s. Cancel-safe:
    /// dropping the future leaves the approval pending.
    pub async fn hold(&self, ctx: &CallContext, tool: &str, verdict: Verdict, progress: Option<Progress>) -> Verdict {
        match &self.approvals {
            Some(a) if verdict.must_hold() => a.hold(ctx, tool, verdict, progress).await,
            _ => verdict,
        }
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.policy.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Puts a new policy in force (a hot reload) and records it: a `system` audit event
    /// "policy reloaded" with the old and new versions. Calls already being decided finish with
    /// the policy they started with.
    pub fn replace_policy(&self, new: Arc<Policy>) {
        let old = {
            let mut slot = self.policy.write().unwrap_or_else(|e| e.into_inner());
            std::mem::replace(&mut *slot, new.clone())
        };
        tracing::info!(old_version = %old.version(), new_version = %new.version(), source = %new.source_name(), "policy reloaded");
        let mut event = AuditEvent::new(EventKind::System);
        event.reason = Some("policy reloaded".into());
        event.policy_version = Some(new.version().to_string());
        event.detail =
            Some(json!({ "old_version": old.version(), "new_version": new.version(), "source": new.source_name() }));
        self.append_nowait(event);
    }

    pub fn audit(&self) -> Option<&AuditLog> {
        self.audit.as_ref().ok()
    }

    /// Decides a `tools/call`, records the decision, and returns what to do. An `ask` decision
    /// becomes `approve` here: this door cannot ask the user (see [`Pipeline::tool_call_with`]).
    pub async fn tool_call(
        &self,
        ctx: &CallContext,
        tool: &str,
        args: &Value,
        annotations: Option<&ToolAnnotations>,
    ) -> Verdict {
        self.tool_call_with(ctx, tool, args, annotations, false).await
    }

    /// [`Pipeline::tool_call`] for a door that can ask its user through the client's
    /// elicitation (`can_ask`): an `ask` decision then comes back with [`Verdict::must_ask`], and
    /// the door reports the user's answer with [`Pipeline::confirm`].
    pub async fn tool_call_with(
        &self,
        ctx: &CallContext,
        tool: &str,
        args: &Value,
        annotations: Option<&ToolAnnotations>,
        can_ask: bool,
    ) -> Verdict {
        let decision_id = uuid::Uuid::now_v7().to_string();
        let policy = self.policy();
        let call = Call {
            annotations,
            door: ctx.door,
            client_name: ctx.client_name.as_deref(),
            client_version: ctx.client_version.as_deref(),
            now: SystemTime::now(),
            server_version: ctx.server_info.version.as_deref(),
            server_data_scope: ctx.server_info.data_scope.as_deref(),
            server_risk: ctx.server_info.risk,
            ..Call::tool_call(&ctx.principal, &ctx.server, tool, args)
        };
        let mut decision = match std::panic::catch_unwind(AssertUnwindSafe(|| policy.decide(&call))) {
            Ok(d) => d,
            Err(_) => internal_error_decision(&policy),
        };
        if decision.effect == Effect::Ask && !can_ask {
            decision.effect = Effect::Approve;
            decision
                .reasons
                .push("the client cannot ask its user (no elicitation), so a human approves instead".into());
        }

        let args_digest = digest::args_digest(args);
        // Defences that stand before any policy verdict: canaries, blocked or drifted tools,
        // the repeat breaker and budgets.
        let mut canary = false;
        if let Some(refusal) = self
            .inspector
            .precheck(&policy, &ctx.principal.id, &ctx.server, tool, &args_digest)
        {
            canary = refusal.canary;
            decision.effect = Effect::Deny;
            if canary {
                decision.risk = steward_policy::Risk::Critical;
            }
            decision.reasons = vec![refusal.reason];
            decision.rule_ids = vec![refusal.rule.to_string()];
        }

        // Approval flow: a grant of this exact call, or the approval it will wait for.
        let plan = match (&self.approvals, decision.effect) {
            (Some(a), Effect::Approve) => Some(a.plan(ctx, tool, &args_digest, &decision.policy_version).await),
            _ => None,
        };

        let mut event = self.event(EventKind::Decision, ctx, &decision_id, tool, "tools/call");
        event.args = Some(redact::redact_args(args));
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
        record_shadow(&mut event, &decision);
        if let Some(Ok(plan)) = &plan {
            event.approval_id = Some(plan.id().to_string());
            let detail = event.detail.get_or_insert_with(|| json!({}));
            detail["approval"] = plan.detail();
        }

        let committed = match &self.audit {
            Ok(log) => log.append(event).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        let target = format!("{}/{}", ctx.server, tool);
        if canary {
            tracing::error!(%target, principal = %ctx.principal.id, decision = %decision_id, "canary tool called");
            if let Some(a) = &self.approvals {
                a.notifier().alert(
                    &format!("Canary tool {target} called by {}", ctx.principal.id),
                    json!({ "server": ctx.server, "tool": tool, "principal": ctx.principal.id, "decision_id": decision_id, "risk": "CRITICAL" }),
                );
            }
        }
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
                    approval: None,
                }
            }
            Ok(_) => match (plan, &self.approvals) {
                (Some(Ok(plan)), Some(approvals)) => {
                    let terms = Terms::of(&decision, &policy);
                    approvals
                        .settle(
                            plan,
                            ctx,
                            tool,
                            args,
                            Decided {
                                decision_id,
                                decision,
                                terms,
                            },
                        )
                        .await
                }
                (Some(Err(e)), _) => {
                    tracing::error!(error = %e, %target, "approval store unavailable; refusing the call");
                    let message = format!(
                        "Steward refused the call to {target}: it needs human approval, and the approval store cannot be read ({e}). The call was not run. Decision {decision_id}."
                    );
                    Verdict {
                        forward: false,
                        decision_id,
                        decision,
                        message,
                        approval: None,
                    }
                }
                _ => {
                    let message = refusal_message(&target, &decision, &decision_id);
                    Verdict {
                        forward: decision.effect == Effect::Allow,
                        decision_id,
                        decision,
                        message,
                        approval: None,
                    }
                }
            },
        }
    }

    /// Records the user's answer to an `ask` and says what to do: forward the call when they
    /// confirmed it (and the answer is recorded), refuse it otherwise.
    pub async fn confirm(&self, ctx: &CallContext, tool: &str, mut verdict: Verdict, answer: Confirmation) -> Verdict {
        if !verdict.must_ask() {
            return verdict;
        }
        let mut event = self.event(EventKind::Approval, ctx, &verdict.decision_id, tool, "tools/call");
        event.risk = Some(verdict.decision.risk.as_str().to_string());
        event.policy_version = Some(verdict.decision.policy_version.clone());
        event.outcome = Some(answer.outcome().to_string());
        event.reason = Some(answer.describe(&ctx.principal.id));
        event.detail = Some(json!({ "via": "elicitation", "answer": answer.outcome() }));
        let committed = match &self.audit {
            Ok(log) => log.append(event).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        let target = format!("{}/{}", ctx.server, tool);
        match (committed, answer) {
            (Ok(_), Confirmation::Accepted) => {
                verdict.forward = true;
                verdict.message.clear();
            }
            (Err(e), _) => {
                verdict.message = format!(
                    "Steward refused the call to {target}: the audit log cannot be written ({e}), and calls are only run once they are recorded. Decision {}.",
                    verdict.decision_id
                );
            }
            (Ok(_), answer) => {
                verdict.message = format!(
                    "Steward did not run the call to {target}: {}. Decision {}. Do not retry it unless the user asks you to.",
                    answer.describe("the user"),
                    verdict.decision_id
                );
            }
        }
        verdict
    }

    /// Records how a forwarded call ended. Never blocks the caller.
    pub fn outcome(&self, ctx: &CallContext, decision_id: &str, tool: &str, outcome: &str, started: Instant) {
        self.outcome_with(ctx, decision_id, tool, outcome, started, None);
    }

    fn outcome_with(
        &self,
        ctx: &CallContext,
        decision_id: &str,
        tool: &str,
        outcome: &str,
        started: Instant,
        detail: Option<Value>,
    ) {
        let mut event = self.event(EventKind::Outcome, ctx, decision_id, tool, "tools/call");
        event.outcome = Some(outcome.to_string());
        event.detail = detail;
        if let Some(approvals) = &self.approvals
            && let Some(approval_id) = approvals.take_running(decision_id)
        {
            event.approval_id = Some(approval_id.clone());
            approvals.finished(approval_id, outcome);
        }
        event.duration_ms = Some((started.elapsed().as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0);
        self.append_nowait(event);
    }

    /// The annotations `tools/list` gave for a tool, for classifying it.
    pub fn annotations(&self, server: &str, tool: &str) -> Option<ToolAnnotations> {
        self.annotations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(server.to_string(), tool.to_string()))
            .cloned()
    }

    /// Governs the tools of a `tools/list` answer in place: learns their annotations, hides what
    /// the caller may never call, what description scanning blocks and what drifted from its pin,
    /// offers canaries, and audits what it did.
    pub fn govern_tools(&self, ctx: &CallContext, tools: &mut Vec<Value>) {
        {
            let mut cache = self.annotations.lock().unwrap_or_else(|e| e.into_inner());
            for t in tools.iter() {
                let Some(name) = t.get("name").and_then(Value::as_str) else {
                    continue;
                };
                let key = (ctx.server.clone(), name.to_string());
                match t
                    .get("annotations")
                    .and_then(|a| serde_json::from_value::<ToolAnnotations>(a.clone()).ok())
                {
                    Some(a) => cache.insert(key, a),
                    None => cache.remove(&key),
                };
            }
        }
        let policy = self.policy();
        let report = self.inspector.tools(&policy, &ctx.server, tools, |name| {
            policy.visible(&ctx.principal, &ctx.server, name)
        });
        if report.is_empty() {
            return;
        }
        let decision_id = uuid::Uuid::now_v7().to_string();
        let mut event = self.event(EventKind::Decision, ctx, &decision_id, "", "tools/list");
        event.tool = None;
        event.effect = Some("allow".into());
        let mut why = Vec::new();
        if !report.hidden_by_policy.is_empty() {
            why.push(format!(
                "{} tool(s) hidden: the principal may never call them",
                report.hidden_by_policy.len()
            ));
        }
        if !report.blocked.is_empty() {
            why.push(format!(
                "{} tool(s) blocked for their definition (scan finding or drift)",
                report.blocked.len()
            ));
        }
        if !report.warnings.is_empty() {
            why.push(format!("{} tool(s) with warnings", report.warnings.len()));
        }
        event.reason = Some(why.join("; "));
        event.policy_version = Some(policy.version().to_string());
        event.detail =
            Some(json!({ "hidden": report.hidden_by_policy, "blocked": report.blocked, "warnings": report.warnings }));
        for b in &report.blocked {
            tracing::warn!(server = %ctx.server, tool = %b["tool"], reason = %b["reason"], "tool blocked");
        }
        self.append_nowait(event);
    }

    /// [`Pipeline::govern_tools`] on a `tools/list` response line; `None` means forward the
    /// original bytes.
    pub fn govern_tools_list(&self, ctx: &CallContext, line: &[u8]) -> Option<Vec<u8>> {
        let mut msg: Value = serde_json::from_slice(line).ok()?;
        let tools = msg.get_mut("result")?.get_mut("tools")?.as_array_mut()?;
        let before = tools.clone();
        self.govern_tools(ctx, tools);
        if *tools == before {
            return None;
        }
        serde_json::to_vec(&msg).ok()
    }

    /// Protects a forwarded call's response (sensitive data in results) and records its outcome.
    /// Returns the line to send to the client.
    pub fn govern_result(
        &self,
        ctx: &CallContext,
        decision_id: &str,
        tool: &str,
        line: Vec<u8>,
        started: Instant,
    ) -> Vec<u8> {
        let policy = self.policy();
        let (out, report) = self
            .inspector
            .result(&policy, &ctx.principal.id, &ctx.server, tool, line);
        let outcome = match steward_mcp::Message::parse(&out) {
            Ok(m) if m.error.is_some() => "error",
            Ok(m)
                if m.result.is_some_and(|r| {
                    serde_json::from_str::<Value>(r.get())
                        .ok()
                        .and_then(|v| v.get("isError").cloned())
                        == Some(Value::Bool(true))
                }) =>
            {
                if report.blocked {
                    "withheld"
                } else {
                    "tool_error"
                }
            }
            _ => "ok",
        };
        let detail = (!report.findings.is_empty()).then(|| {
            json!({
                "output_findings": report.findings.iter().map(|f| json!({"kind": f.kind, "class": f.class.as_str(), "location": f.location, "action": f.action.as_str()})).collect::<Vec<_>>(),
                "truncated": report.truncated,
            })
        });
        self.outcome_with(ctx, decision_id, tool, outcome, started, detail);
        out
    }

    /// Records that `tools/list` answered with some tools hidden from this principal.
    pub fn tools_hidden(&self, ctx: &CallContext, hidden: &[String]) {
        let decision_id = uuid::Uuid::now_v7().to_string();
        let mut event = self.event(EventKind::Decision, ctx, &decision_id, "", "tools/list");
        event.tool = None;
        event.effect = Some("allow".into());
        event.reason = Some(format!(
            "{} tool(s) hidden: the principal may never call them",
            hidden.len()
        ));
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

/// Shadow mode: the call runs with the enforced effect; the audit event says what would have
/// happened (`detail.shadow_effect`, `detail.shadow_rule_ids`) and why.
fn record_shadow(event: &mut AuditEvent, decision: &Decision) {
    let Some(shadow) = &decision.shadow else { return };
    event.reason = Some(redact::redact_text(&format!(
        "[shadow] would {}: {}",
        shadow.effect,
        shadow.reasons.join("; ")
    )));
    let detail = event.detail.get_or_insert_with(|| json!({}));
    detail["shadow_effect"] = json!(shadow.effect.as_str());
    detail["shadow_rule_ids"] = json!(shadow.rule_ids);
}

fn internal_error_decision(policy: &Policy) -> Decision {
    Decision::fail_closed(
        "internal error while evaluating the policy; denied (fail closed)",
        policy.version(),
    )
}

/// The text a model reads when its call is refused: what, why, and what not to do next.
fn refusal_message(target: &str, d: &Decision, decision_id: &str) -> String {
    let rules = if d.rule_ids.is_empty() {
        String::new()
    } else {
        format!(" (rule {})", d.rule_ids.join(", "))
    };
    let reason = redact::redact_text(&d.reason());
    match d.effect {
        Effect::Ask => format!(
            "Steward did not run the call to {target}: it needs the user's confirmation ({reason}){rules}, and none was given. Risk {}. Decision {decision_id}.",
            d.risk
        ),
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
