//! The decision procedure, in the order `docs/policy.md` documents:
//! principal → classification → detectors → capabilities → rules → risk effect → default.

use std::collections::BTreeSet;
use std::time::SystemTime;

use cel::{Context, Value};

use crate::cel_value;
use crate::detect::Finding;
use crate::model::{Effect, Policy, Risk, RiskEffect, Rule, ToolAnnotations};

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
    pub tool: &'a str,
    /// The MCP method: `tools/call`, `tools/list`, `resources/read`, `prompts/get`.
    pub method: &'a str,
    pub args: &'a serde_json::Value,
    pub annotations: Option<&'a ToolAnnotations>,
    pub door: &'a str,
    pub client_name: Option<&'a str>,
    pub client_version: Option<&'a str>,
    pub source: Option<&'a str>,
    pub now: SystemTime,
}

impl<'a> Call<'a> {
    /// A `tools/call` with no request details; fill in the rest with struct update syntax.
    pub fn tool_call(principal: &'a Principal, server: &'a str, tool: &'a str, args: &'a serde_json::Value) -> Call<'a> {
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
        }
    }
}

/// One step of a decision, for `policy explain` and audit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    pub stage: &'static str,
    pub detail: String,
}

/// What the policy decided, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub effect: Effect,
    pub risk: Risk,
    pub reasons: Vec<String>,
    pub rule_ids: Vec<String>,
    pub flags: Vec<String>,
    pub findings: Vec<Finding>,
    pub policy_version: String,
    /// Filled only by [`Policy::explain`].
    pub steps: Vec<Step>,
}

impl Decision {
    /// The reasons joined into one sentence.
    pub fn reason(&self) -> String {
        self.reasons.join("; ")
    }
}

/// Whether a rule applied, and how.
enum RuleOutcome {
    Matched,
    NotMatched,
    Failed(String),
}

impl Policy {
    /// Decides a call.
    pub fn decide(&self, call: &Call<'_>) -> Decision {
        self.run(call, None)
    }

    /// Decides a call and records each step that led to the decision.
    pub fn explain(&self, call: &Call<'_>) -> Decision {
        let mut steps = Vec::new();
        let mut d = self.run(call, Some(&mut steps));
        d.steps = steps;
        d
    }

    /// Whether a tool may appear in `tools/list` for this principal: false when the principal
    /// lacks a capability the tool requires, or an unconditional deny rule covers it.
    pub fn visible(&self, principal: &Principal, server: &str, tool: &str) -> bool {
        let (caps, _) = self.capabilities(principal);
        if let Some(class) = self.classify(server, tool)
            && class.requires.iter().any(|r| !caps.contains(r.as_str()))
        {
            return false;
        }
        !self.rules.iter().any(|r| {
            r.effect == Effect::Deny
                && r.when.is_none()
                && r.methods.iter().any(|m| m == "tools/call")
                && r.patterns.iter().any(|p| p.matches(server, tool))
        })
    }

    fn capabilities<'p>(&'p self, principal: &'p Principal) -> (BTreeSet<&'p str>, Vec<&'p str>) {
        let mut roles: Vec<&str> = principal.roles.iter().map(String::as_str).collect();
        if let Some(def) = self.principals.get(&principal.id) {
            roles.extend(def.roles.iter().map(String::as_str));
        }
        roles.sort_unstable();
        roles.dedup();
        let caps = roles
            .iter()
            .filter_map(|r| self.roles.get(*r))
            .flatten()
            .map(String::as_str)
            .collect();
        (caps, roles)
    }

    fn classify(&self, server: &str, tool: &str) -> Option<&crate::model::ToolClass> {
        self.tools.iter().find(|t| t.pattern.matches(server, tool))
    }

    fn run(&self, call: &Call<'_>, mut steps: Option<&mut Vec<Step>>) -> Decision {
        let mut step = |stage: &'static str, detail: String| {
            if let Some(s) = steps.as_deref_mut() {
                s.push(Step { stage, detail });
            }
        };

        // 1. Principal: roles from the door and the policy, capabilities from the roles.
        let (caps, roles) = self.capabilities(call.principal);
        step("principal", format!(
            "{} ({}): roles [{}], capabilities [{}]",
            call.principal.id,
            if call.principal.auth.is_empty() { "unauthenticated" } else { &call.principal.auth },
            roles.join(", "),
            caps.iter().copied().collect::<Vec<_>>().join(", ")
        ));

        // 2. Classification: the first matching `tools` entry, else the tool's annotations.
        let class = self.classify(call.server, call.tool);
        let mut risk = match class.and_then(|c| c.risk) {
            Some(r) => {
                step("classify", format!("{}/{} matches tools entry '{}': risk {r}", call.server, call.tool, class.map(|c| c.pattern.as_str()).unwrap_or("")));
                r
            }
            None => {
                let r = ToolAnnotations::default_risk(call.annotations);
                let why = match call.annotations {
                    Some(a) if a.read_only_hint == Some(true) => "readOnlyHint",
                    Some(a) if a.destructive_hint == Some(true) => "destructiveHint",
                    _ => "no classification or risk annotation",
                };
                step("classify", format!("{}/{}: risk {r} from {why}", call.server, call.tool));
                r
            }
        };

        // 3. Detectors: dangerous arguments raise the risk to their floor.
        let findings = self.detectors.scan(call.args);
        let mut flags: Vec<String> = findings.iter().map(|f| f.flag.to_string()).collect();
        flags.sort();
        flags.dedup();
        if findings.is_empty() {
            step("detectors", if self.detectors.enabled() { "no dangerous arguments".into() } else { "detectors are off".into() });
        } else {
            let floor = findings.iter().map(|f| f.risk).max().unwrap_or(Risk::Low);
            let seen: Vec<String> = findings.iter().map(|f| format!("{} ({})", f.flag, f.detail)).collect();
            if floor > risk {
                step("detectors", format!("{}; risk raised {risk} → {floor}", seen.join(", ")));
                risk = floor;
            } else {
                step("detectors", format!("{}; risk stays {risk}", seen.join(", ")));
            }
        }

        let mut decision = Decision {
            effect: Effect::Deny,
            risk,
            reasons: Vec::new(),
            rule_ids: Vec::new(),
            flags,
            findings,
            policy_version: self.version.clone(),
            steps: Vec::new(),
        };

        // 4. Capabilities: a tool that requires what the principal lacks is denied outright.
        if let Some(class) = class {
            let missing: Vec<&str> = class.requires.iter().map(String::as_str).filter(|r| !caps.contains(r)).collect();
            if !missing.is_empty() {
                let reason = format!("{} lacks capability {} required by {}/{}", call.principal.id, missing.join(", "), call.server, call.tool);
                step("capabilities", format!("missing [{}] → deny", missing.join(", ")));
                decision.reasons.push(reason);
                return decision;
            }
            if !class.requires.is_empty() {
                step("capabilities", format!("has every required capability [{}]", class.requires.join(", ")));
            }
        }

        // 5. Rules: every matching rule votes; deny overrides approve overrides allow.
        let mut ctx: Option<Context<'static, 'static>> = None;
        let mut matched: Vec<(&Rule, Option<String>)> = Vec::new();
        for rule in &self.rules {
            if !rule.methods.iter().any(|m| m == call.method) || !rule.patterns.iter().any(|p| p.matches(call.server, call.tool)) {
                continue;
            }
            let outcome = match &rule.when {
                None => RuleOutcome::Matched,
                Some(cond) => {
                    let ctx = ctx.get_or_insert_with(|| self.context(call, &caps, &roles, risk, &decision.flags));
                    match cond.program.execute(ctx) {
                        Ok(Value::Bool(true)) => RuleOutcome::Matched,
                        Ok(Value::Bool(false)) => RuleOutcome::NotMatched,
                        Ok(other) => RuleOutcome::Failed(format!("condition returned {other:?}, not a bool")),
                        Err(e) => RuleOutcome::Failed(e.to_string()),
                    }
                }
            };
            match outcome {
                RuleOutcome::Matched => {
                    let why = rule.when.as_ref().map(|c| format!("condition `{}` is true", c.source)).unwrap_or_else(|| "no condition".into());
                    step("rule", format!("{}: matches ({why}) → {}", rule.id, rule.effect));
                    matched.push((rule, None));
                }
                RuleOutcome::NotMatched => {
                    let source = rule.when.as_ref().map(|c| c.source.as_str()).unwrap_or_default();
                    step("rule", format!("{}: condition `{source}` is false", rule.id))
                }
                // Fail closed: a deny or approve rule whose condition cannot be evaluated applies.
                RuleOutcome::Failed(err) if rule.effect != Effect::Allow => {
                    step("rule", format!("{}: condition error ({err}) → applies ({})", rule.id, rule.effect));
                    matched.push((rule, Some(err)));
                }
                RuleOutcome::Failed(err) => step("rule", format!("{}: condition error ({err}) → does not allow", rule.id)),
            }
        }
        if let Some(effect) = matched.iter().map(|(r, _)| r.effect).max() {
            decision.effect = effect;
            for (rule, err) in matched.iter().filter(|(r, _)| r.effect == effect) {
                decision.rule_ids.push(rule.id.clone());
                let mut reason = rule.reason.clone().unwrap_or_else(|| format!("rule {}", rule.id));
                if let Some(err) = err {
                    reason.push_str(&format!(" (condition could not be evaluated: {err})"));
                }
                decision.reasons.push(reason);
            }
            step("result", format!("rules decide {effect} (deny overrides approve overrides allow)"));
            return decision;
        }

        // 6. Risk effect for the call's risk, when the policy sets one.
        if let Some(re) = self.risk_effects.get(&risk) {
            let dangerous = !decision.flags.is_empty();
            let effect = match re {
                RiskEffect::Allow => Effect::Allow,
                RiskEffect::Deny => Effect::Deny,
                RiskEffect::Approve => Effect::Approve,
                RiskEffect::ApproveIfDangerous if dangerous => Effect::Approve,
                RiskEffect::ApproveIfDangerous => Effect::Allow,
            };
            decision.effect = effect;
            let reason = match (re, effect) {
                (RiskEffect::ApproveIfDangerous, Effect::Approve) => format!(
                    "{risk} risk call with dangerous arguments ({}) needs approval",
                    decision.findings.iter().map(|f| f.detail.as_str()).collect::<Vec<_>>().join(", ")
                ),
                (_, Effect::Approve) => format!("{risk} risk calls need approval"),
                (_, Effect::Deny) => format!("{risk} risk calls are denied"),
                _ => format!("{risk} risk calls are allowed"),
            };
            step("risk", format!("no rule matched; risk_effects.{risk} is {} → {effect}", re.as_str()));
            decision.reasons.push(reason);
            return decision;
        }

        // 7. Default.
        decision.effect = self.default;
        step("default", format!("no rule matched and no risk effect for {risk}; default is {}", self.default));
        decision.reasons.push(format!("no rule or risk effect decided; the policy default is {}", self.default));
        decision
    }

    fn context(&self, call: &Call<'_>, caps: &BTreeSet<&str>, roles: &[&str], risk: Risk, flags: &[String]) -> Context<'static, 'static> {
        let mut attributes = call.principal.attributes.clone();
        if let Some(def) = self.principals.get(&call.principal.id) {
            for (k, v) in &def.attributes {
                attributes.insert(k.clone(), v.clone());
            }
        }
        let annotations = call
            .annotations
            .and_then(|a| serde_json::to_value(a).ok())
            .unwrap_or(serde_json::Value::Object(Default::default()));
        let opt = |s: Option<&str>| s.map(cel_value::string).unwrap_or(Value::Null);
        let mut ctx = Context::default();
        ctx.add_variable_from_value("principal", cel_value::map(vec![
            ("id", cel_value::string(&call.principal.id)),
            ("roles", cel_value::strings(roles.iter().copied())),
            ("capabilities", cel_value::strings(caps.iter().copied())),
            ("attributes", cel_value::from_json(&serde_json::Value::Object(attributes))),
            ("auth", cel_value::string(&call.principal.auth)),
        ]));
        ctx.add_variable_from_value("server", cel_value::map(vec![
            ("name", cel_value::string(call.server)),
            ("version", Value::Null),
            ("data_scope", Value::Null),
            ("risk", Value::Null),
        ]));
        ctx.add_variable_from_value("tool", cel_value::map(vec![
            ("name", cel_value::string(call.tool)),
            ("annotations", cel_value::from_json(&annotations)),
        ]));
        ctx.add_variable_from_value("args", cel_value::from_json(call.args));
        ctx.add_variable_from_value("call", cel_value::map(vec![
            ("method", cel_value::string(call.method)),
            ("risk", cel_value::string(risk.as_str())),
            ("flags", cel_value::strings(flags.iter().map(String::as_str))),
            ("operation", Value::Null),
        ]));
        let now: chrono::DateTime<chrono::Utc> = call.now.into();
        ctx.add_variable_from_value("time", cel_value::map(vec![
            ("now", Value::Timestamp(now.fixed_offset())),
            ("hour", Value::Int(chrono::Timelike::hour(&now) as i64)),
            ("minute", Value::Int(chrono::Timelike::minute(&now) as i64)),
            ("weekday", cel_value::string(&chrono::Datelike::weekday(&now).to_string())),
            ("date", cel_value::string(&now.format("%Y-%m-%d").to_string())),
        ]));
        ctx.add_variable_from_value("request", cel_value::map(vec![
            ("client_name", opt(call.client_name)),
            ("client_version", opt(call.client_version)),
            ("door", cel_value::string(call.door)),
            ("source", opt(call.source)),
        ]));
        ctx
    }
}
