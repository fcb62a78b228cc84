//! The decision procedure, in the order `docs/policy.md` documents:
//! principal → classification (tools entry, operation) → detectors → capabilities → rules →
//! approval obligations → risk effect → default → shadow mode.

use std::time::SystemTime;

use chrono::{DateTime, FixedOffset, Utc};

use crate::cond::{Condition, Outcome};
use crate::detect::Finding;
use crate::model::{
    Approval, Approvers, Effect, Mode, Operation, Policy, Risk, RiskEffect, Rule, ToolAnnotations, ToolClass,
};
use crate::vars::{Resolver, Vars};

/// Who is calling, as the door identified them.
#[derive(Debug, Clone, Default)]
pub struct Principal {
    pub id: String,
    /// Roles the door's authentication established (e.g. from a token); the policy's
    /// `principals` entry for `id` adds its own.
    pub roles: Vec<String>,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// How the principal was identified: `os-user`, `api-key`, `jwt`.
    pub auth: String,
}

impl Principal {
    pub fn new(id: impl Into<String>, auth: impl Into<String>) -> Principal {
        Principal {
            id: id.into(),
            auth: auth.into(),
            ..Principal::default()
        }
    }
}

/// A request to decide: who calls what with which arguments, through which door.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    pub principal: &'a Principal,
    pub server: &'a str,
    /// The tool name; for `resources/read` the resource URI, for `prompts/get` the prompt name.
    pub tool: &'a str,
    /// The MCP method, one of [`crate::GOVERNED_METHODS`]: `tools/call`, `resources/read`,
    /// `prompts/get`, or a list method.
    pub method: &'a str,
    pub args: &'a serde_json::Value,
    pub annotations: Option<&'a ToolAnnotations>,
    pub door: &'a str,
    pub client_name: Option<&'a str>,
    pub client_version: Option<&'a str>,
    pub source: Option<&'a str>,
    pub now: SystemTime,
    /// What the registry knows about the server (`server.version`, `server.data_scope`,
    /// `server.risk` in conditions); the policy's `servers:` inventory fills in what is `None`.
    pub server_version: Option<&'a str>,
    pub server_data_scope: Option<&'a str>,
    pub server_risk: Option<Risk>,
    /// The registry's status of the server (`server.status`): `approved`, `pending_review`,
    /// `denied`, `expired`, `unlisted`; `None` when there is no registry.
    pub server_status: Option<&'a str>,
}

impl<'a> Call<'a> {
    /// A `tools/call` with no request details; fill in the rest with struct update syntax.
    pub fn tool_call(
        principal: &'a Principal,
        server: &'a str,
        tool: &'a str,
        args: &'a serde_json::Value,
    ) -> Call<'a> {
        Call {
            principal,
            server,
            tool,
            method: "tools/call",
            args,
            annotations: None,
            door: "proxy",
            client_name: None,
            client_version: None,
            source: None,
            now: SystemTime::now(),
            server_version: None,
            server_data_scope: None,
            server_risk: None,
            server_status: None,
        }
    }

    /// `resource.uri` and `prompt.name` in conditions: the call's name when its method reads a
    /// resource or gets a prompt (or lists them), unset otherwise.
    fn resource_and_prompt(&self) -> (Option<&'a str>, Option<&'a str>) {
        match self.method {
            "resources/read" | "resources/list" | "resources/templates/list" => (Some(self.tool), None),
            "prompts/get" | "prompts/list" => (None, Some(self.tool)),
            _ => (None, None),
        }
    }
}

/// One step of a decision, for `policy explain` and audit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    pub stage: &'static str,
    pub detail: String,
}

/// What the decision would have been without shadow mode, when it differs from what is enforced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Shadow {
    pub effect: Effect,
    pub reasons: Vec<String>,
    pub rule_ids: Vec<String>,
}

/// What the policy decided, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The enforced effect. In shadow mode this is `allow`, and [`Decision::shadow`] holds what
    /// would have happened.
    pub effect: Effect,
    pub risk: Risk,
    pub reasons: Vec<String>,
    pub rule_ids: Vec<String>,
    pub flags: Vec<String>,
    pub findings: Vec<Finding>,
    pub policy_version: String,
    /// The operation that refined the tool (`tools[].operations[].name`), if any.
    pub operation: Option<String>,
    /// Who may approve, when the effect is `approve` and the policy says.
    pub approvers: Option<Approvers>,
    /// The would-be decision of shadow rules or a shadow-mode policy, when it differs.
    pub shadow: Option<Shadow>,
    /// Filled only by [`Policy::explain`].
    pub steps: Vec<Step>,
}

impl Decision {
    /// The reasons joined into one sentence.
    pub fn reason(&self) -> String {
        self.reasons.join("; ")
    }

    /// A deny decision for a call the engine could not evaluate (fail closed).
    pub fn fail_closed(reason: impl Into<String>, policy_version: impl Into<String>) -> Decision {
        Decision {
            effect: Effect::Deny,
            risk: Risk::Critical,
            reasons: vec![reason.into()],
            rule_ids: Vec::new(),
            flags: Vec::new(),
            findings: Vec::new(),
            policy_version: policy_version.into(),
            operation: None,
            approvers: None,
            shadow: None,
            steps: Vec::new(),
        }
    }
}

/// An effect with the reasons, rules and approvers behind it.
#[derive(Debug, Clone)]
struct Verdict {
    effect: Effect,
    reasons: Vec<String>,
    rule_ids: Vec<String>,
    approvers: Option<Approvers>,
}

/// What decides a call that no rule voted on: whether a tools entry classifies it, and whether
/// a detector or a destructive annotation raised its risk.
struct Fallback<'c> {
    classified: bool,
    raised: bool,
    /// `server`, `name`, for explanations.
    what: (&'c str, &'c str),
}

/// A rule that applied, and the condition error that made it apply, if any.
type Vote<'p> = (&'p Rule, Option<String>);

/// Records explanation steps; formats nothing when not explaining.
struct Trace<'s>(Option<&'s mut Vec<Step>>);

impl Trace<'_> {
    fn on(&self) -> bool {
        self.0.is_some()
    }

    fn step(&mut self, stage: &'static str, detail: impl FnOnce() -> String) {
        if let Some(steps) = self.0.as_deref_mut() {
            steps.push(Step {
                stage,
                detail: detail(),
            });
        }
    }
}

impl Policy {
    /// Decides a call.
    pub fn decide(&self, call: &Call<'_>) -> Decision {
        self.run(call, Trace(None))
    }

    /// Decides a call and records each step that led to the decision.
    pub fn explain(&self, call: &Call<'_>) -> Decision {
        let mut steps = Vec::new();
        let mut d = self.run(call, Trace(Some(&mut steps)));
        d.steps = steps;
        d
    }

    /// Whether a tool may appear in `tools/list` for this principal: false when the principal
    /// lacks a capability the tool requires, an unconditional deny rule covers it, or a
    /// `method: tools/list` rule denies it.
    pub fn visible(&self, principal: &Principal, server: &str, tool: &str) -> bool {
        self.visible_for(principal, server, tool, "tools/call")
    }

    /// Whether a list entry (a tool, a resource or template, a prompt) may be shown to the
    /// principal. `name` is the tool name, the resource URI (or URI template) or the prompt name;
    /// `method` is the method that would use the entry (`tools/call`, `resources/read`,
    /// `prompts/get`) or the list method itself (`tools/list`, `resources/list`,
    /// `resources/templates/list`, `prompts/list`). See [`Policy::visible_for_call`].
    pub fn visible_for(&self, principal: &Principal, server: &str, name: &str, method: &str) -> bool {
        let args = serde_json::Value::Object(Default::default());
        self.visible_for_call(&Call {
            method,
            door: "",
            ..Call::tool_call(principal, server, name, &args)
        })
    }

    /// Whether the entry a call names may be listed to its principal, with what the call says
    /// about the server and the request (`server.status`, `request.client_name`, …) visible to
    /// list rules. `call.method` is as for [`Policy::visible_for`]; `call.tool` the entry's name.
    ///
    /// An entry is hidden when the principal lacks a capability its tools entry requires (tools
    /// only), when an enforced unconditional deny rule covers its use, or when an enforced deny
    /// rule on the list method matches it (its condition sees no arguments; a condition that
    /// cannot be evaluated hides it: fail closed). Nothing is hidden in a shadow-mode policy.
    pub fn visible_for_call(&self, call: &Call<'_>) -> bool {
        if self.mode == Mode::Shadow {
            return true;
        }
        // The method that uses the entry, and the list methods whose rules may hide it.
        let (uses, lists): (&str, &[&str]) = match call.method {
            "tools/call" | "tools/list" => ("tools/call", &["tools/list"]),
            "resources/read" => ("resources/read", &["resources/list", "resources/templates/list"]),
            "resources/list" => ("resources/read", &["resources/list"]),
            "resources/templates/list" => ("resources/read", &["resources/templates/list"]),
            "prompts/get" | "prompts/list" => ("prompts/get", &["prompts/list"]),
            // Not a method that lists anything: fail closed.
            _ => return false,
        };
        let (server, name) = (call.server, call.tool);
        let (roles, caps) = self.capabilities(call.principal);
        let applicable = self.index.lookup(&self.tools, &self.rules, server, name);
        let class = (uses == "tools/call")
            .then(|| applicable.class.map(|i| &self.tools[i]))
            .flatten();
        if let Some(class) = class
            && class.requires.iter().any(|r| !caps.contains(&r.as_str()))
        {
            return false;
        }
        let rules = || {
            applicable
                .rules
                .iter()
                .map(|&i| &self.rules[i])
                .filter(|r| !r.shadow && r.effect == Effect::Deny)
        };
        if rules().any(|r| r.when.is_none() && r.applies_to_method(uses)) {
            return false;
        }
        let listing: Vec<&Rule> = rules()
            .filter(|r| lists.iter().any(|m| r.applies_to_method(m)))
            .collect();
        if listing.is_empty() {
            return true;
        }
        let (version, data_scope, server_risk) =
            self.server_info(server, call.server_version, call.server_data_scope, call.server_risk);
        let base_risk = class.and_then(|c| c.risk).unwrap_or(Risk::Medium);
        for list in lists {
            let rules: Vec<&&Rule> = listing.iter().filter(|r| r.applies_to_method(list)).collect();
            if rules.is_empty() {
                continue;
            }
            let list_call = Call {
                method: list,
                ..call.clone()
            };
            let (resource_uri, prompt_name) = list_call.resource_and_prompt();
            let vars = Vars {
                principal: call.principal,
                roles: &roles,
                capabilities: &caps,
                policy_attributes: self.principals.get(&call.principal.id).map(|d| &d.attributes),
                server,
                server_version: version,
                server_data_scope: data_scope,
                server_risk,
                server_status: call.server_status,
                tool: name,
                resource_uri,
                prompt_name,
                annotations: call.annotations,
                args: call.args,
                method: list,
                risk: base_risk,
                flags: &[],
                operation: None,
                now: self.local_time(call.now),
                client_name: call.client_name,
                client_version: call.client_version,
                door: call.door,
                source: call.source,
            };
            let resolver = Resolver::new(vars);
            let mut cel = None;
            // A listing rule whose condition fails hides the entry: fail closed.
            if rules.iter().any(|r| {
                r.when
                    .as_ref()
                    .is_none_or(|c| c.eval(&vars, &mut cel, &resolver) != Outcome::False)
            }) {
                return false;
            }
        }
        true
    }

    /// The principal's roles (the door's and the policy's) and the capabilities they grant,
    /// each sorted and without duplicates.
    fn capabilities<'p>(&'p self, principal: &'p Principal) -> (Vec<&'p str>, Vec<&'p str>) {
        let mut roles: Vec<&str> = principal.roles.iter().map(String::as_str).collect();
        if let Some(def) = self.principals.get(&principal.id) {
            roles.extend(def.roles.iter().map(String::as_str));
        }
        roles.sort_unstable();
        roles.dedup();
        let mut caps: Vec<&str> = roles
            .iter()
            .filter_map(|r| self.roles.get(*r))
            .flatten()
            .map(String::as_str)
            .collect();
        caps.sort_unstable();
        caps.dedup();
        (roles, caps)
    }

    fn server_info<'c>(
        &'c self,
        server: &str,
        version: Option<&'c str>,
        data_scope: Option<&'c str>,
        risk: Option<Risk>,
    ) -> (Option<&'c str>, Option<&'c str>, Option<Risk>) {
        let def = self.servers.get(server);
        (
            version.or_else(|| def.and_then(|d| d.version.as_deref())),
            data_scope.or_else(|| def.and_then(|d| d.data_scope.as_deref())),
            risk.or_else(|| def.and_then(|d| d.risk)),
        )
    }

    fn local_time(&self, now: SystemTime) -> DateTime<FixedOffset> {
        let utc: DateTime<Utc> = now.into();
        match self.timezone {
            Some(tz) => utc.with_timezone(&tz).fixed_offset(),
            None => utc.fixed_offset(),
        }
    }

    fn run(&self, call: &Call<'_>, mut trace: Trace<'_>) -> Decision {
        // 1. Principal: roles from the door and the policy, capabilities from the roles.
        let (roles, caps) = self.capabilities(call.principal);
        trace.step("principal", || {
            format!(
                "{} ({}): roles [{}], capabilities [{}]",
                call.principal.id,
                if call.principal.auth.is_empty() {
                    "unauthenticated"
                } else {
                    &call.principal.auth
                },
                roles.join(", "),
                caps.join(", ")
            )
        });

        // 2. Classification: the first matching `tools` entry. Only tool calls are classified;
        // an unclassified tool starts at MEDIUM, a resource, a prompt or a list at LOW. A server's
        // annotations can only raise the risk (`destructiveHint` → HIGH), never lower it.
        let is_tool_call = call.method == "tools/call";
        let applicable = self.index.lookup(&self.tools, &self.rules, call.server, call.tool);
        let class: Option<&ToolClass> = if is_tool_call {
            applicable.class.map(|i| &self.tools[i])
        } else {
            None
        };
        let annotated = if is_tool_call {
            ToolAnnotations::risk_floor(call.annotations)
        } else {
            None
        };
        let base = match class {
            Some(c) => c.risk.unwrap_or(Risk::Medium),
            None if is_tool_call => Risk::Medium,
            None => Risk::Low,
        };
        let declared = annotated.map_or(base, |a| a.max(base));
        trace.step("classify", || {
            let mut s = match class {
                Some(c) if c.risk.is_some() => format!(
                    "{}/{} matches tools entry '{}': risk {base}",
                    call.server,
                    call.tool,
                    c.label()
                ),
                Some(c) => format!(
                    "{}/{} matches tools entry '{}' (no risk): risk {base}",
                    call.server,
                    call.tool,
                    c.label()
                ),
                None if is_tool_call => format!(
                    "{}/{}: no tools entry classifies it; risk {base}, and the policy default decides unless a detector or its annotations raise the risk",
                    call.server, call.tool
                ),
                None => format!(
                    "{} {}/{}: not a tool call; risk {base}, and the policy default decides unless a detector raises the risk",
                    call.method, call.server, call.tool
                ),
            };
            if declared > base {
                s.push_str(&format!("; destructiveHint raises it to {declared}"));
            } else if annotated.is_some() {
                s.push_str("; destructiveHint does not raise it");
            }
            if is_tool_call && call.annotations.is_some_and(|a| a.read_only_hint == Some(true)) {
                s.push_str(" (readOnlyHint never lowers risk)");
            }
            s
        });

        // 3. Detectors: they run before operations so an operation's `when` can read `call.flags`.
        let findings = self.detectors.scan(call.args);
        let mut flags: Vec<&str> = findings.iter().map(|f| f.flag.as_ref()).collect();
        flags.sort_unstable();
        flags.dedup();
        let floor = findings.iter().map(|f| f.risk).max();

        let (version, data_scope, server_risk) = self.server_info(
            call.server,
            call.server_version,
            call.server_data_scope,
            call.server_risk,
        );
        let now = self.local_time(call.now);
        let (resource_uri, prompt_name) = call.resource_and_prompt();
        let mut vars = Vars {
            principal: call.principal,
            roles: &roles,
            capabilities: &caps,
            policy_attributes: self.principals.get(&call.principal.id).map(|d| &d.attributes),
            server: call.server,
            server_version: version,
            server_data_scope: data_scope,
            server_risk,
            server_status: call.server_status,
            tool: call.tool,
            resource_uri,
            prompt_name,
            annotations: call.annotations,
            args: call.args,
            method: call.method,
            risk: declared,
            flags: &flags,
            operation: None,
            now,
            client_name: call.client_name,
            client_version: call.client_version,
            door: call.door,
            source: call.source,
        };

        // 2b. Operation: the first whose `when` holds refines the tool.
        let operation = class.and_then(|c| self.operation(c, &vars, &mut trace));
        let declared = match operation.and_then(|o| o.risk) {
            Some(r) => annotated.map_or(r, |a| a.max(r)),
            None => declared,
        };
        let approval = operation.and_then(|o| o.approval).or(class.and_then(|c| c.approval));
        let obligation_approvers = operation
            .and_then(|o| o.approvers.as_ref())
            .or(class.and_then(|c| c.approvers.as_ref()));

        let mut risk = declared;
        match floor {
            None => trace.step("detectors", || {
                if self.detectors.enabled() {
                    "no dangerous arguments".into()
                } else {
                    "detectors are off".into()
                }
            }),
            Some(floor) => {
                let seen = || {
                    findings
                        .iter()
                        .map(|f| format!("{} ({})", f.flag, f.detail))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                if floor > risk {
                    trace.step("detectors", || format!("{}; risk raised {risk} → {floor}", seen()));
                    risk = floor;
                } else {
                    trace.step("detectors", || format!("{}; risk stays {risk}", seen()));
                }
            }
        }
        vars.risk = risk;
        vars.operation = operation.map(|o| o.name.as_str());

        let mut decision = Decision {
            effect: Effect::Deny,
            risk,
            reasons: Vec::new(),
            rule_ids: Vec::new(),
            flags: flags.iter().map(|f| f.to_string()).collect(),
            findings: Vec::new(),
            policy_version: self.version.clone(),
            operation: operation.map(|o| o.name.clone()),
            approvers: None,
            shadow: None,
            steps: Vec::new(),
        };

        // 4. Capabilities: a tool (or operation) that requires what the principal lacks is denied.
        if let Some(class) = class {
            let required = || {
                class
                    .requires
                    .iter()
                    .chain(operation.into_iter().flat_map(|o| o.requires.iter()))
            };
            let missing: Vec<&str> = required().map(String::as_str).filter(|r| !caps.contains(r)).collect();
            if !missing.is_empty() {
                let what = match operation {
                    Some(o) => format!("{}/{} ({})", call.server, call.tool, o.name),
                    None => format!("{}/{}", call.server, call.tool),
                };
                trace.step("capabilities", || format!("missing [{}] → deny", missing.join(", ")));
                let verdict = Verdict {
                    effect: Effect::Deny,
                    reasons: vec![format!(
                        "{} lacks capability {} required by {what}",
                        call.principal.id,
                        missing.join(", ")
                    )],
                    rule_ids: Vec::new(),
                    approvers: None,
                };
                self.finish(&mut decision, verdict, None, &mut trace);
                decision.findings = findings;
                return decision;
            }
            if required().next().is_some() {
                trace.step("capabilities", || {
                    format!(
                        "has every required capability [{}]",
                        required().map(String::as_str).collect::<Vec<_>>().join(", ")
                    )
                });
            }
        }

        // 5. Rules: every matching rule votes; deny overrides approve overrides allow.
        let (enforced, shadowed) = self.vote(&applicable.rules, &vars, &mut trace);
        let flagged = !flags.is_empty();
        let fallback = Fallback {
            classified: class.is_some(),
            raised: flagged || annotated.is_some(),
            what: (call.server, call.tool),
        };
        let verdict = self.verdict(
            &enforced,
            risk,
            declared,
            flagged,
            approval,
            obligation_approvers,
            operation,
            &fallback,
            &mut trace,
        );
        // What shadow rules would have made of it.
        let would = (!shadowed.is_empty()).then(|| {
            let all: Vec<Vote<'_>> = enforced.iter().chain(&shadowed).cloned().collect();
            self.verdict(
                &all,
                risk,
                declared,
                flagged,
                approval,
                obligation_approvers,
                operation,
                &fallback,
                &mut Trace(None),
            )
        });
        self.finish(&mut decision, verdict, would, &mut trace);
        decision.findings = findings;
        decision
    }

    /// Finds the operation that refines a classified call, if any.
    fn operation<'p>(&'p self, class: &'p ToolClass, vars: &Vars<'_>, trace: &mut Trace<'_>) -> Option<&'p Operation> {
        if class.operations.is_empty() {
            return None;
        }
        let resolver = Resolver::new(*vars);
        let mut cel = None;
        for op in &class.operations {
            let outcome = match &op.when {
                None => Outcome::True,
                Some(c) => c.eval(vars, &mut cel, &resolver),
            };
            match outcome {
                Outcome::True => {
                    trace.step("operation", || match &op.when {
                        Some(c) => format!(
                            "'{}': `{}` is true → risk {}",
                            op.name,
                            c.source,
                            op.risk.unwrap_or(vars.risk)
                        ),
                        None => format!("'{}' (no condition) → risk {}", op.name, op.risk.unwrap_or(vars.risk)),
                    });
                    return Some(op);
                }
                Outcome::False => trace.step("operation", || {
                    format!("'{}': `{}` is false", op.name, source(&op.when))
                }),
                // Fail closed: an operation that would make the call stricter applies when its
                // condition cannot be evaluated; one that would relax it does not.
                Outcome::Error(e) => {
                    let stricter = op.risk.is_none_or(|r| r >= vars.risk);
                    trace.step("operation", || {
                        format!(
                            "'{}': condition error ({e}) → {}",
                            op.name,
                            if stricter {
                                "applies (fail closed)"
                            } else {
                                "does not apply"
                            }
                        )
                    });
                    if stricter {
                        return Some(op);
                    }
                }
            }
        }
        trace.step("operation", || {
            "no operation matches; the tools entry applies as it is".into()
        });
        None
    }

    /// Evaluates the rules that cover the call: the votes of enforced rules and of shadow rules.
    fn vote<'p>(
        &'p self,
        applicable: &[usize],
        vars: &Vars<'_>,
        trace: &mut Trace<'_>,
    ) -> (Vec<Vote<'p>>, Vec<Vote<'p>>) {
        let resolver = Resolver::new(*vars);
        let mut cel = None;
        let mut enforced: Vec<Vote<'p>> = Vec::new();
        let mut shadowed: Vec<Vote<'p>> = Vec::new();
        let rules = applicable
            .iter()
            .map(|&i| &self.rules[i])
            .filter(|r| r.applies_to_method(vars.method));
        let mut consider = |rule: &'p Rule, trace: &mut Trace<'_>, enforced: &mut Vec<Vote<'p>>| {
            if let Some(vote) = evaluate(rule, vars, &mut cel, &resolver, trace) {
                if rule.shadow {
                    shadowed.push(vote)
                } else {
                    enforced.push(vote)
                }
            }
        };
        if trace.on() {
            rules.for_each(|r| consider(r, trace, &mut enforced));
        } else {
            // Deny rules first: once an enforced deny holds, allow and approve rules cannot change
            // the effect (nor what shadow rules would make of it), so they are not evaluated.
            rules
                .clone()
                .filter(|r| r.effect == Effect::Deny)
                .for_each(|r| consider(r, trace, &mut enforced));
            if enforced.is_empty() {
                rules
                    .filter(|r| r.effect != Effect::Deny)
                    .for_each(|r| consider(r, trace, &mut enforced));
            }
        }
        (enforced, shadowed)
    }

    /// The effect of a set of votes, or of the risk effect and default when nothing voted, with
    /// the tool's or operation's approval obligation applied.
    #[allow(clippy::too_many_arguments)]
    fn verdict(
        &self,
        votes: &[Vote<'_>],
        risk: Risk,
        declared: Risk,
        flagged: bool,
        approval: Option<Approval>,
        obligation_approvers: Option<&Approvers>,
        operation: Option<&Operation>,
        fallback: &Fallback<'_>,
        trace: &mut Trace<'_>,
    ) -> Verdict {
        let mut v = if let Some(effect) = votes.iter().map(|(r, _)| r.effect).max() {
            let mut v = Verdict {
                effect,
                reasons: Vec::new(),
                rule_ids: Vec::new(),
                approvers: None,
            };
            for (rule, err) in votes.iter().filter(|(r, _)| r.effect == effect) {
                v.rule_ids.push(rule.id.clone());
                let mut reason = rule.reason.clone().unwrap_or_else(|| format!("rule {}", rule.id));
                if let Some(err) = err {
                    reason.push_str(&format!(" (condition could not be evaluated: {err})"));
                }
                v.reasons.push(reason);
                if matches!(effect, Effect::Approve | Effect::Ask)
                    && let Some(a) = &rule.approvers
                {
                    v.approvers = Some(Approvers::merge(v.approvers.take(), a));
                }
            }
            trace.step("rules", || {
                format!(
                    "rules decide {effect} (deny overrides approve overrides allow): {}",
                    v.rule_ids.join(", ")
                )
            });
            v
        } else if approval == Some(Approval::Never) {
            // Detectors alone never make this call need approval: the risk effect is the one of
            // the declared risk, as if nothing were flagged, and approval becomes allow.
            match self.risk_effects.get(&declared) {
                Some(re) => {
                    let effect = match risk_effect(*re, false) {
                        Effect::Approve => Effect::Allow,
                        e => e,
                    };
                    trace.step("risk", || format!("no rule matched; approval: never → risk_effects.{declared} ({}) without detectors → {effect}", re.as_str()));
                    Verdict {
                        effect,
                        reasons: vec![format!("{declared} risk calls are {} (approval: never)", past(effect))],
                        rule_ids: Vec::new(),
                        approvers: None,
                    }
                }
                None => self.default_verdict(risk, trace),
            }
        } else if !fallback.classified && !fallback.raised {
            // Nothing classifies the call and nothing raised its risk: the default decides.
            trace.step("default", || {
                format!(
                    "no rule matched and no tools entry classifies {}/{}; default is {}",
                    fallback.what.0, fallback.what.1, self.default
                )
            });
            Verdict {
                effect: self.default,
                reasons: vec![format!(
                    "no rule or tools entry covers {}/{}; the policy default is {}",
                    fallback.what.0, fallback.what.1, self.default
                )],
                rule_ids: Vec::new(),
                approvers: None,
            }
        } else if !fallback.classified
            && let Some(re) = self.risk_effects.get(&risk)
        {
            // Unclassified, but a detector (or a destructive annotation) raised the risk: the risk
            // effect applies, and can only make the default stricter.
            let by_risk = risk_effect(*re, flagged);
            let effect = by_risk.max(self.default);
            trace.step("risk", || {
                format!(
                    "no rule matched; {}/{} is unclassified and its risk was raised to {risk}: risk_effects.{risk} is {} → {by_risk}, default is {} → {effect} (the stricter)",
                    fallback.what.0,
                    fallback.what.1,
                    re.as_str(),
                    self.default
                )
            });
            let reason = if effect == by_risk {
                match (re, effect) {
                    (RiskEffect::ApproveIfDangerous, Effect::Approve) => {
                        format!("{risk} risk call with dangerous arguments needs approval")
                    }
                    (_, Effect::Approve) => format!("{risk} risk calls need approval"),
                    (_, e) => format!("{risk} risk calls are {}", past(e)),
                }
            } else {
                format!(
                    "no rule or tools entry covers {}/{}; the policy default is {}",
                    fallback.what.0, fallback.what.1, self.default
                )
            };
            Verdict {
                effect,
                reasons: vec![reason],
                rule_ids: Vec::new(),
                approvers: None,
            }
        } else if let Some(re) = self.risk_effects.get(&risk) {
            let effect = risk_effect(*re, flagged);
            let reason = match (re, effect) {
                (RiskEffect::ApproveIfDangerous, Effect::Approve) => {
                    format!("{risk} risk call with dangerous arguments needs approval")
                }
                (_, Effect::Approve) => format!("{risk} risk calls need approval"),
                (_, e) => format!("{risk} risk calls are {}", past(e)),
            };
            trace.step("risk", || {
                format!("no rule matched; risk_effects.{risk} is {} → {effect}", re.as_str())
            });
            Verdict {
                effect,
                reasons: vec![reason],
                rule_ids: Vec::new(),
                approvers: None,
            }
        } else {
            self.default_verdict(risk, trace)
        };

        let what = || {
            operation
                .map(|o| format!("operation '{}'", o.name))
                .unwrap_or_else(|| "this tool".into())
        };
        let forced = match approval {
            Some(Approval::Always) => true,
            Some(Approval::IfDangerous) => flagged,
            _ => false,
        };
        if forced {
            // A user's confirmation is no substitute for a required approval.
            if matches!(v.effect, Effect::Allow | Effect::Ask) {
                v.effect = Effect::Approve;
                v.reasons.push(match approval {
                    Some(Approval::IfDangerous) => format!("{} needs approval when its arguments are flagged", what()),
                    _ => format!("{} always needs approval", what()),
                });
                trace.step("approval", || {
                    format!(
                        "{} has approval: {} → approve",
                        what(),
                        approval.map(Approval::as_str).unwrap_or_default()
                    )
                });
            } else {
                trace.step("approval", || {
                    format!(
                        "{} has approval: {}; the effect is already {}",
                        what(),
                        approval.map(Approval::as_str).unwrap_or_default(),
                        v.effect
                    )
                });
            }
        }
        // Ask is for low-risk calls: a riskier call needs an approver, out of band.
        if v.effect == Effect::Ask && risk >= Risk::High {
            v.effect = Effect::Approve;
            v.reasons.push(format!(
                "ask is never accepted for {risk} calls: a human approves out of band"
            ));
            trace.step("ask", || format!("effect ask on a {risk} call → approve"));
        }
        if v.effect == Effect::Approve
            && (forced || votes.is_empty())
            && let Some(a) = obligation_approvers
        {
            v.approvers = Some(Approvers::merge(v.approvers.take(), a));
        }
        v
    }

    fn default_verdict(&self, risk: Risk, trace: &mut Trace<'_>) -> Verdict {
        trace.step("default", || {
            format!(
                "no rule matched and no risk effect for {risk}; default is {}",
                self.default
            )
        });
        Verdict {
            effect: self.default,
            reasons: vec![format!(
                "no rule or risk effect decided; the policy default is {}",
                self.default
            )],
            rule_ids: Vec::new(),
            approvers: None,
        }
    }

    /// Writes the verdict into the decision, then applies shadow mode: shadow rules that would
    /// change the effect, and a shadow-mode policy that allows whatever it would have decided.
    fn finish(&self, decision: &mut Decision, verdict: Verdict, would: Option<Verdict>, trace: &mut Trace<'_>) {
        decision.effect = verdict.effect;
        decision.approvers = if matches!(verdict.effect, Effect::Approve | Effect::Ask) {
            verdict.approvers.clone()
        } else {
            None
        };
        if let Some(w) = would.filter(|w| w.effect != verdict.effect) {
            trace.step("shadow", || {
                format!(
                    "shadow rules ({}) would make it {}; enforced: {}",
                    w.rule_ids.join(", "),
                    w.effect,
                    verdict.effect
                )
            });
            decision.shadow = Some(Shadow {
                effect: w.effect,
                reasons: w.reasons,
                rule_ids: w.rule_ids,
            });
        }
        decision.reasons = verdict.reasons;
        decision.rule_ids = verdict.rule_ids;
        if self.mode == Mode::Shadow && decision.effect != Effect::Allow {
            let would = decision.shadow.take().unwrap_or_else(|| Shadow {
                effect: decision.effect,
                reasons: std::mem::take(&mut decision.reasons),
                rule_ids: std::mem::take(&mut decision.rule_ids),
            });
            trace.step("shadow", || {
                format!("the policy is in shadow mode: would {} → allow", would.effect)
            });
            decision.effect = Effect::Allow;
            decision.approvers = None;
            decision.reasons = vec!["the policy is in shadow mode: calls are allowed and audited".into()];
            decision.rule_ids = Vec::new();
            decision.shadow = Some(would);
        }
    }
}

/// Evaluates one rule's condition; `Some` when the rule votes.
fn evaluate<'p, 'r>(
    rule: &'p Rule,
    vars: &Vars<'_>,
    cel: &mut Option<cel::Context<'r, 'r>>,
    resolver: &'r Resolver<'_>,
    trace: &mut Trace<'_>,
) -> Option<Vote<'p>> {
    let outcome = match &rule.when {
        None => Outcome::True,
        Some(c) => c.eval(vars, cel, resolver),
    };
    let mode = if rule.shadow { " [shadow]" } else { "" };
    match outcome {
        Outcome::True => {
            trace.step("rule", || {
                let why = rule
                    .when
                    .as_ref()
                    .map(|c| format!("`{}` is true", c.source))
                    .unwrap_or_else(|| "no condition".into());
                format!("{}{mode}: matches ({why}) → {}", rule.id, rule.effect)
            });
            Some((rule, None))
        }
        Outcome::False => {
            trace.step("rule", || {
                format!("{}{mode}: `{}` is false", rule.id, source(&rule.when))
            });
            None
        }
        // Fail closed: a deny or approve rule whose condition cannot be evaluated applies.
        Outcome::Error(err) if rule.effect != Effect::Allow => {
            trace.step("rule", || {
                format!(
                    "{}{mode}: condition error ({err}) → applies ({}, fail closed)",
                    rule.id, rule.effect
                )
            });
            Some((rule, Some(err)))
        }
        Outcome::Error(err) => {
            trace.step("rule", || {
                format!("{}{mode}: condition error ({err}) → does not allow", rule.id)
            });
            None
        }
    }
}

fn risk_effect(re: RiskEffect, flagged: bool) -> Effect {
    match re {
        RiskEffect::Allow => Effect::Allow,
        RiskEffect::Deny => Effect::Deny,
        RiskEffect::Approve => Effect::Approve,
        RiskEffect::ApproveIfDangerous if flagged => Effect::Approve,
        RiskEffect::ApproveIfDangerous => Effect::Allow,
    }
}

fn past(e: Effect) -> &'static str {
    match e {
        Effect::Allow => "allowed",
        Effect::Deny => "denied",
        Effect::Ask => "to be confirmed by the user",
        Effect::Approve => "held for approval",
    }
}

fn source(when: &Option<Condition>) -> &str {
    when.as_ref().map(|c| c.source.as_str()).unwrap_or_default()
}
