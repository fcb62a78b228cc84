//! Inspecting what servers send: list entries filtered and scanned, results, resource contents,
//! prompt messages, errors, log notifications and server→client requests redacted. An answer
//! that cannot be read or checked completely is withheld, never passed on unchecked.

use std::time::Instant;

use serde_json::{Map, Value, json};
use steward_mcp::jsonrpc::{ErrorCode, error_response};
use steward_mcp::rewrite::replace_id;
use steward_mcp::tools::refusal_result;
use steward_mcp::{Era, Message, Method};
use steward_policy::Policy;
use steward_scan::{
    DriftAction, OutputReport, ScanVerdict, redact_json, scan_prompt, scan_prompt_result, scan_resource,
};
use steward_store::EventKind;

use super::Relay;
use super::call::CallContext;
use super::messages;
use super::session::Session;

/// A decided use whose answer is being inspected.
pub(crate) struct Answered<'a> {
    pub ctx: &'a CallContext,
    pub method: Method,
    pub target: &'a str,
    pub decision_id: &'a str,
    pub era: Era,
    pub started: Instant,
}

/// Whether a scan stopped before it looked at everything (then the answer is withheld).
fn incomplete(r: &OutputReport) -> bool {
    r.incomplete
}

/// The message `v` (an object) written with the client's id bytes.
fn with_id(v: &Value, client_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.push(b'{');
    let mut first = true;
    if let Some(obj) = v.as_object() {
        for (k, val) in obj {
            if !first {
                out.push(b',');
            }
            first = false;
            out.extend_from_slice(Value::String(k.clone()).to_string().as_bytes());
            out.push(b':');
            if k == "id" {
                out.extend_from_slice(client_id.as_bytes());
            } else {
                out.extend_from_slice(val.to_string().as_bytes());
            }
        }
    }
    out.push(b'}');
    out
}

fn restore(msg: &Message<'_>, bytes: &[u8], client_id: &str) -> Vec<u8> {
    replace_id(bytes, msg, client_id).unwrap_or_else(|| {
        error_response(
            Some(client_id),
            ErrorCode::InternalError,
            "Steward could not restore the request id",
            None,
        )
    })
}

/// Whether a list entry may be shown to the principal: what they may never use is left out.
fn visible(policy: &Policy, ctx: &CallContext, list: Method, name: &str) -> bool {
    let args = Value::Object(Map::new());
    policy.visible_for_call(&steward_policy::Call {
        method: list.as_str(),
        door: ctx.door.policy_name(),
        client_name: ctx.client_name.as_deref(),
        client_version: ctx.client_version.as_deref(),
        server_version: ctx.server_info.version.as_deref(),
        server_data_scope: ctx.server_info.data_scope.as_deref(),
        server_risk: ctx.server_info.risk,
        server_status: ctx.server_info.status.as_deref(),
        ..steward_policy::Call::tool_call(&ctx.principal, &ctx.server, name, &args)
    })
}

/// What a list's entries are named by in policy and audit.
fn entry_name(method: Method, entry: &Value) -> Option<&str> {
    let member = match method {
        Method::ResourcesList => "uri",
        Method::ResourcesTemplatesList => "uriTemplate",
        _ => "name",
    };
    entry.get(member).and_then(Value::as_str)
}

#[derive(Default)]
struct ListReport {
    hidden: Vec<String>,
    blocked: Vec<Value>,
    warnings: Vec<Value>,
    changed: bool,
}

impl Relay {
    /// An ungoverned request's answer: the id restored; an error inspected for secrets.
    pub(crate) fn inspect_plain(&self, _s: &Session, msg: &Message<'_>, bytes: &[u8], client_id: &str) -> Vec<u8> {
        if msg.error.is_none() {
            return restore(msg, bytes, client_id);
        }
        let mut v = match steward_mcp::json::parse_deep(bytes) {
            Ok(v) if v.is_object() => v,
            Ok(_) => return restore(msg, bytes, client_id),
            Err(e) => return self.withheld_error(client_id, "a request", &e.to_string()),
        };
        let policy = self.policy();
        let report = redact_json(&mut v["error"], &policy.protections().redact);
        if incomplete(&report) {
            return self.withheld_error(client_id, "a request", "a scan limit was reached");
        }
        if report.changed() || report.blocked {
            return with_id(&v, client_id);
        }
        restore(msg, bytes, client_id)
    }

    /// A list answer: entries the principal may never use, and tools whose definition is
    /// blocked, are left out; tools are learnt (pins, scans, annotations); canaries are offered.
    pub(crate) fn inspect_list(
        &self,
        ctx: &CallContext,
        method: Method,
        msg: &Message<'_>,
        bytes: &[u8],
        client_id: &str,
    ) -> Vec<u8> {
        if msg.error.is_some() {
            return self.inspect_plain_error(msg, bytes, client_id, method);
        }
        let mut v = match steward_mcp::json::parse_deep(bytes) {
            Ok(v) if v.is_object() => v,
            Ok(_) => return restore(msg, bytes, client_id),
            Err(e) => {
                self.refused_message(ctx, Some(method.as_str()), &format!("answer withheld: {e}"));
                return self.withheld_error(client_id, method.as_str(), &e.to_string());
            }
        };
        let policy = self.policy();
        let Some(member) = method.list_member() else {
            return restore(msg, bytes, client_id);
        };
        let Some(entries) = v
            .get_mut("result")
            .and_then(|r| r.get_mut(member))
            .and_then(Value::as_array_mut)
        else {
            return restore(msg, bytes, client_id);
        };
        if method == Method::ResourcesList {
            self.learn_resources(&ctx.server, entries);
        }
        let report = match method {
            Method::ToolsList => self.govern_tools(ctx, &policy, entries),
            _ => self.govern_entries(ctx, &policy, method, entries),
        };
        self.audit_list(ctx, &policy, method, &report);
        if report.changed {
            with_id(&v, client_id)
        } else {
            restore(msg, bytes, client_id)
        }
    }

    fn govern_tools(&self, ctx: &CallContext, policy: &Policy, tools: &mut Vec<Value>) -> ListReport {
        let prot = policy.protections();
        let states = self.catalog.learn(&ctx.server, tools);
        let mut report = ListReport::default();
        let before = tools.len();
        let mut i = 0;
        tools.retain(|tool| {
            let state = &states[i];
            i += 1;
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                // A tool without a name cannot be governed: leave it out.
                return false;
            };
            if !visible(policy, ctx, Method::ToolsList, name) {
                report.hidden.push(name.to_string());
                return false;
            }
            let found: Vec<Value> = state
                .findings
                .iter()
                .map(|f| json!({"kind": f.kind, "severity": f.severity.as_str(), "location": f.location}))
                .collect();
            let verdict = prot.scan.verdict(&state.findings);
            let why = if verdict == ScanVerdict::Block {
                let kinds: Vec<&str> = state.findings.iter().map(|f| f.kind).collect();
                Some(messages::description_flagged(&kinds.join(", ")))
            } else if let Some(d) = &state.drift {
                if prot.on_drift == DriftAction::Block {
                    Some(messages::tool_drifted(&ctx.server, name, d))
                } else {
                    report.warnings.push(json!({"tool": name, "drift": d}));
                    None
                }
            } else {
                None
            };
            if verdict == ScanVerdict::Warn {
                report.warnings.push(json!({"tool": name, "findings": found}));
            }
            match why {
                Some(reason) => {
                    tracing::warn!(server = %ctx.server, tool = name, %reason, "tool blocked");
                    report
                        .blocked
                        .push(json!({"tool": name, "reason": reason, "findings": found}));
                    false
                }
                None => true,
            }
        });
        for c in &prot.canaries {
            tools.push(json!({
                "name": c.name,
                "description": c.description,
                "inputSchema": { "type": "object", "properties": { "reason": { "type": "string" } } },
            }));
        }
        report.changed = tools.len() != before || !prot.canaries.is_empty();
        report
    }

    /// Resources, resource templates and prompts: what the principal may never use is left out,
    /// and entries whose text carries instructions aimed at the model are blocked.
    fn govern_entries(
        &self,
        ctx: &CallContext,
        policy: &Policy,
        method: Method,
        entries: &mut Vec<Value>,
    ) -> ListReport {
        let prot = policy.protections();
        let mut report = ListReport::default();
        let before = entries.len();
        entries.retain(|entry| {
            let Some(name) = entry_name(method, entry) else {
                return false;
            };
            if !visible(policy, ctx, method, name) {
                report.hidden.push(name.to_string());
                return false;
            }
            let findings = match method {
                Method::PromptsList => scan_prompt(entry),
                _ => scan_resource(entry),
            };
            if prot.scan.verdict(&findings) == ScanVerdict::Block {
                let kinds: Vec<&str> = findings.iter().map(|f| f.kind).collect();
                report
                    .blocked
                    .push(json!({"name": name, "reason": messages::description_flagged(&kinds.join(", "))}));
                return false;
            }
            true
        });
        report.changed = entries.len() != before;
        report
    }

    fn audit_list(&self, ctx: &CallContext, policy: &Policy, method: Method, report: &ListReport) {
        if report.hidden.is_empty() && report.blocked.is_empty() && report.warnings.is_empty() {
            return;
        }
        let decision_id = uuid::Uuid::now_v7().to_string();
        let mut event = self.event(EventKind::Decision, ctx, &decision_id, None, method.as_str());
        event.effect = Some("allow".into());
        let mut why = Vec::new();
        if !report.hidden.is_empty() {
            why.push(format!(
                "{} entries hidden: the principal may never use them",
                report.hidden.len()
            ));
        }
        if !report.blocked.is_empty() {
            why.push(format!(
                "{} entries blocked for their definition (scan finding or drift)",
                report.blocked.len()
            ));
        }
        if !report.warnings.is_empty() {
            why.push(format!("{} entries with warnings", report.warnings.len()));
        }
        event.reason = Some(why.join("; "));
        event.policy_version = Some(policy.version().to_string());
        event.detail = Some(json!({ "hidden": report.hidden, "blocked": report.blocked, "warnings": report.warnings }));
        self.append_nowait(event);
    }

    fn inspect_plain_error(&self, msg: &Message<'_>, bytes: &[u8], client_id: &str, method: Method) -> Vec<u8> {
        let mut v = match steward_mcp::json::parse_deep(bytes) {
            Ok(v) if v.is_object() => v,
            Ok(_) => return restore(msg, bytes, client_id),
            Err(e) => return self.withheld_error(client_id, method.as_str(), &e.to_string()),
        };
        let report = redact_json(&mut v["error"], &self.policy().protections().redact);
        if incomplete(&report) {
            return self.withheld_error(client_id, method.as_str(), "a scan limit was reached");
        }
        if report.changed() || report.blocked {
            with_id(&v, client_id)
        } else {
            restore(msg, bytes, client_id)
        }
    }

    /// The answer to a decided use: redacted, prompts scanned, the outcome audited.
    pub(crate) fn inspect_use(&self, a: &Answered<'_>, msg: &Message<'_>, bytes: &[u8], client_id: &str) -> Vec<u8> {
        let target = a.ctx.target(a.target);
        let policy = self.policy();
        self.runaway
            .record_result(&policy, &a.ctx.principal.id, &target, bytes.len());
        let prot = policy.protections();
        let member = if msg.error.is_some() { "error" } else { "result" };
        let mut v = match steward_mcp::json::parse_deep(bytes) {
            Ok(v) if v.is_object() && v.get(member).is_some() => v,
            Ok(_) => {
                self.outcome(a.ctx, a.method, a.target, a.decision_id, "withheld", a.started, None);
                return self.withheld_use(
                    a,
                    client_id,
                    &messages::withheld_unreadable(&target, "not a JSON-RPC answer"),
                );
            }
            Err(e) => {
                let detail = json!({ "withheld": e.to_string() });
                self.outcome(
                    a.ctx,
                    a.method,
                    a.target,
                    a.decision_id,
                    "withheld",
                    a.started,
                    Some(detail),
                );
                return self.withheld_use(a, client_id, &messages::withheld_unreadable(&target, &e.to_string()));
            }
        };
        let report = redact_json(&mut v[member], &prot.redact);
        let findings_detail = || {
            json!({
                "output_findings": report.findings.iter().map(|f| json!({"kind": f.kind, "class": f.class.as_str(), "location": f.location, "action": f.action.as_str()})).collect::<Vec<_>>(),
                "truncated": report.truncated,
            })
        };
        if incomplete(&report) {
            self.outcome(
                a.ctx,
                a.method,
                a.target,
                a.decision_id,
                "withheld",
                a.started,
                Some(findings_detail()),
            );
            return self.withheld_use(a, client_id, &messages::withheld_incomplete(&target));
        }
        if a.method == Method::PromptsGet && member == "result" {
            let findings = scan_prompt_result(&v["result"]);
            if prot.scan.verdict(&findings) == ScanVerdict::Block {
                let kinds: Vec<&str> = findings.iter().map(|f| f.kind).collect();
                let detail = json!({ "prompt_findings": findings.iter().map(|f| json!({"kind": f.kind, "severity": f.severity.as_str(), "location": f.location})).collect::<Vec<_>>() });
                self.outcome(
                    a.ctx,
                    a.method,
                    a.target,
                    a.decision_id,
                    "withheld",
                    a.started,
                    Some(detail),
                );
                return self.withheld_use(a, client_id, &messages::prompt_flagged(&target, &kinds.join(", ")));
            }
        }
        let outcome = if member == "error" {
            "error"
        } else if report.blocked {
            "withheld"
        } else if v["result"].get("isError") == Some(&Value::Bool(true)) {
            "tool_error"
        } else {
            "ok"
        };
        let detail = (!report.findings.is_empty()).then(findings_detail);
        self.outcome(a.ctx, a.method, a.target, a.decision_id, outcome, a.started, detail);
        if report.blocked {
            return self.withheld_use(a, client_id, &report.block_message());
        }
        if report.changed() {
            with_id(&v, client_id)
        } else {
            restore(msg, bytes, client_id)
        }
    }

    /// What the client gets instead of an answer Steward will not pass on.
    fn withheld_use(&self, a: &Answered<'_>, client_id: &str, text: &str) -> Vec<u8> {
        match a.method {
            Method::ToolsCall => refusal_result(client_id, text, a.decision_id, a.era),
            _ => error_response(
                Some(client_id),
                ErrorCode::Withheld,
                text,
                Some(json!({ steward_mcp::tools::META_DECISION_ID: a.decision_id })),
            ),
        }
    }

    fn withheld_error(&self, client_id: &str, what: &str, why: &str) -> Vec<u8> {
        error_response(
            Some(client_id),
            ErrorCode::Withheld,
            &messages::withheld_unreadable(what, why),
            None,
        )
    }

    /// A log notification or a server→client request: its params redacted; `None` (not
    /// delivered) when they cannot be checked.
    pub(crate) fn inspect_server_message(&self, s: &Session, bytes: Vec<u8>) -> Option<Vec<u8>> {
        let policy = self.policy();
        let redact = &policy.protections().redact;
        if !redact.is_active() {
            return Some(bytes);
        }
        let mut v = match steward_mcp::json::parse_deep(&bytes) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(server = %s.server(), error = %e, "server message cannot be inspected; dropped");
                return None;
            }
        };
        let Some(params) = v.get_mut("params") else {
            return Some(bytes);
        };
        let report = redact_json(params, redact);
        if incomplete(&report) {
            tracing::warn!(server = %s.server(), "server message too large to inspect completely; dropped");
            return None;
        }
        if report.blocked {
            *params = json!({ "level": "warning", "data": report.block_message() });
        }
        if report.changed() || report.blocked {
            return serde_json::to_vec(&v).ok();
        }
        Some(bytes)
    }

    /// Records how a forwarded use ended. Never blocks the caller.
    #[allow(clippy::too_many_arguments)]
    pub fn outcome(
        &self,
        ctx: &CallContext,
        method: Method,
        target: &str,
        decision_id: &str,
        outcome: &str,
        started: Instant,
        detail: Option<Value>,
    ) {
        let mut event = self.event(EventKind::Outcome, ctx, decision_id, Some(target), method.as_str());
        event.outcome = Some(outcome.to_string());
        event.detail = detail;
        if let Some(approvals) = &self.approvals
            && let Some(approval_id) = approvals.take_running(decision_id)
        {
            event.approval_id = Some(approval_id.clone());
            approvals.finished(approval_id, outcome);
        }
        event.duration_ms = Some((started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0);
        self.append_nowait(event);
    }
}
