//! Loading and strict validation of policy YAML.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Deserialize;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::check::{self, Names};
use crate::cond::Condition;
use crate::detect::{BUILTIN_SETS, CustomDetector, Detectors};
use crate::error::{Diagnostic, PolicyError, Severity};
use crate::glob::ToolPattern;
use crate::model::{
    Approval, ApprovalMode, ApprovalSettings, Approvers, BUILTIN_ROLES, Effect, LIST_METHODS, Mode, Operation, Policy,
    PrincipalDef, PrincipalKind, Risk, RiskEffect, Rule, ServerDef, ToolClass,
};

/// Policy files larger than this are refused: a policy is configuration, not data.
const MAX_POLICY_BYTES: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    version: Spanned<u32>,
    #[serde(default)]
    default: Option<Effect>,
    #[serde(default)]
    mode: Option<Mode>,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
    #[serde(default)]
    roles: BTreeMap<String, Vec<Spanned<String>>>,
    #[serde(default)]
    principals: BTreeMap<String, PrincipalDoc>,
    #[serde(default)]
    servers: HashMap<Spanned<String>, ServerDoc>,
    #[serde(default)]
    tools: Vec<ToolDoc>,
    #[serde(default)]
    rules: Vec<RuleDoc>,
    #[serde(default)]
    risk_effects: BTreeMap<Risk, RiskEffect>,
    #[serde(default)]
    detectors: Option<DetectorsDoc>,
    #[serde(default)]
    approvals: Option<ApprovalsDoc>,
    #[serde(default)]
    scan: Option<steward_scan::ScanPolicy>,
    #[serde(default)]
    on_drift: Option<steward_scan::DriftAction>,
    #[serde(default)]
    redact: Option<Spanned<steward_scan::OutputPolicy>>,
    #[serde(default)]
    breaker: Option<crate::protections::BreakerDoc>,
    #[serde(default)]
    budgets: Vec<Spanned<crate::protections::BudgetDoc>>,
    #[serde(default)]
    canaries: Vec<crate::protections::Canary>,
}

/// The policy-wide `approvals:` block.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalsDoc {
    #[serde(default)]
    mode: Option<ApprovalMode>,
    #[serde(default)]
    hold_timeout: Option<Spanned<String>>,
    #[serde(default)]
    grant_window: Option<Spanned<String>>,
    #[serde(default)]
    expiry: Option<Spanned<String>>,
    #[serde(default)]
    default_approver_roles: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    hold_without_progress: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalDoc {
    #[serde(default)]
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
    /// `human` (default) or `agent`: an agent never decides approvals.
    #[serde(default)]
    kind: PrincipalKind,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerDoc {
    #[serde(default)]
    tools: Vec<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    data_scope: Option<String>,
    #[serde(default)]
    risk: Option<Risk>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolDoc {
    #[serde(rename = "match")]
    pattern: Spanned<OneOrMany>,
    #[serde(default)]
    risk: Option<Risk>,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    #[serde(default)]
    approval: Option<Approval>,
    #[serde(default)]
    approvers: Option<Spanned<ApproversDoc>>,
    #[serde(default)]
    operations: Vec<OperationDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationDoc {
    name: Spanned<String>,
    #[serde(default)]
    when: Option<Spanned<String>>,
    #[serde(default)]
    risk: Option<Risk>,
    #[serde(default)]
    requires: Vec<Spanned<String>>,
    #[serde(default)]
    approval: Option<Approval>,
    #[serde(default)]
    approvers: Option<Spanned<ApproversDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    id: Spanned<String>,
    #[serde(rename = "match", default)]
    pattern: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    method: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    when: Option<Spanned<String>>,
    effect: Effect,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    approvers: Option<Spanned<ApproversDoc>>,
    #[serde(default)]
    mode: Option<Mode>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct ApproversDoc {
    #[serde(default)]
    roles: Vec<Spanned<String>>,
    #[serde(default = "one")]
    count: u32,
    #[serde(default)]
    mode: Option<ApprovalMode>,
    #[serde(default)]
    hold_timeout: Option<Spanned<String>>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DetectorsDoc {
    #[serde(default)]
    builtin: Option<Spanned<Builtin>>,
    #[serde(default)]
    custom: Vec<CustomDoc>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Builtin {
    All(bool),
    Sets(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomDoc {
    name: Spanned<String>,
    #[serde(default)]
    flag: Option<String>,
    #[serde(default)]
    risk: Option<Risk>,
    #[serde(default)]
    regex: Vec<Spanned<String>>,
    #[serde(default)]
    words: Vec<String>,
}

#[derive(Deserialize, Clone)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

pub(crate) use crate::model::GOVERNED_METHODS;

/// The keys each part of a policy may have, for "did you mean" hints.
const KEYS: &[&str] = &[
    "version",
    "default",
    "mode",
    "timezone",
    "roles",
    "principals",
    "servers",
    "tools",
    "rules",
    "risk_effects",
    "detectors",
    "attributes",
    "match",
    "risk",
    "requires",
    "approval",
    "approvers",
    "operations",
    "name",
    "when",
    "id",
    "method",
    "effect",
    "reason",
    "count",
    "builtin",
    "custom",
    "flag",
    "regex",
    "words",
    "data_scope",
    "approvals",
    "hold_timeout",
    "grant_window",
    "expiry",
    "kind",
];

impl Policy {
    /// Reads and validates a policy file.
    pub fn from_file(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| PolicyError::Io {
            path: name.clone(),
            source,
        })?;
        if meta.len() > MAX_POLICY_BYTES as u64 {
            return Err(invalid(
                &name,
                vec![Diagnostic::error(
                    1,
                    1,
                    format!("policy file is {} bytes; the limit is {MAX_POLICY_BYTES}", meta.len()),
                )],
            ));
        }
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: name.clone(),
            source,
        })?;
        Policy::from_yaml(&text, &name)
    }

    /// Parses and validates policy YAML. `name` is used in diagnostics (`name:line:col`).
    pub fn from_yaml(text: &str, name: &str) -> Result<Policy, PolicyError> {
        let (policy, diagnostics) = compile(text, name);
        match policy {
            Some(p) if !diagnostics.iter().any(|d| d.severity == Severity::Error) => Ok(p),
            _ => Err(invalid(name, diagnostics)),
        }
    }

    /// Validates policy YAML and returns every finding, errors and warnings alike.
    pub fn check_yaml(text: &str, name: &str) -> Vec<Diagnostic> {
        compile(text, name).1
    }

    /// The content hash a policy with this exact text gets as its version.
    pub fn version_of(text: &str) -> String {
        let digest = Sha256::digest(text.as_bytes());
        hex::encode(&digest[..8])
    }
}

fn invalid(name: &str, diagnostics: Vec<Diagnostic>) -> PolicyError {
    PolicyError::Invalid {
        file: name.to_string(),
        diagnostics,
    }
}

/// Where a spanned value is.
fn at<T>(s: &Spanned<T>) -> (u64, u64) {
    (s.referenced.line(), s.referenced.column())
}

/// Everything compiling a policy needs to remember about the text and its findings.
struct Compiler<'t> {
    text: &'t str,
    diags: Vec<Diagnostic>,
    /// Where each rule's `id` is, in rule order.
    rule_locs: Vec<(u64, u64)>,
}

fn compile(text: &str, name: &str) -> (Option<Policy>, Vec<Diagnostic>) {
    let mut c = Compiler {
        text,
        diags: Vec::new(),
        rule_locs: Vec::new(),
    };
    if text.len() > MAX_POLICY_BYTES {
        c.diags
            .push(Diagnostic::error(1, 1, "policy text is larger than 4 MiB"));
        return (None, c.diags);
    }
    let doc: PolicyDoc = match serde_saphyr::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            let message = strip_location(e.without_snippet().to_string().lines().next().unwrap_or("invalid YAML"));
            c.diags
                .push(Diagnostic::error(line, column, message.clone()).hint(yaml_hint(&message)));
            return (None, c.diags);
        }
    };
    let policy = c.build(doc, name);
    (Some(policy), c.diags)
}

impl Compiler<'_> {
    fn error(&mut self, (line, column): (u64, u64), message: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::error(line, column, message).hint(hint));
    }

    fn warn(&mut self, (line, column): (u64, u64), message: impl Into<String>, hint: impl Into<String>) {
        self.diags.push(Diagnostic::warning(line, column, message).hint(hint));
    }

    fn build(&mut self, doc: PolicyDoc, name: &str) -> Policy {
        if doc.version.value != 1 {
            self.error(
                at(&doc.version),
                format!("unsupported policy version {}", doc.version.value),
                "this Steward reads `version: 1` policies",
            );
        }

        let timezone = doc
            .timezone
            .as_ref()
            .and_then(|tz| match tz.value.parse::<chrono_tz::Tz>() {
                Ok(t) => Some(t),
                Err(_) => {
                    self.error(
                        at(tz),
                        format!("unknown time zone '{}'", tz.value),
                        "use an IANA name such as Europe/Paris, America/New_York or UTC",
                    );
                    None
                }
            });

        let roles: BTreeMap<String, BTreeSet<String>> = doc
            .roles
            .iter()
            .map(|(role, caps)| (role.clone(), caps.iter().map(|c| c.value.clone()).collect()))
            .collect();
        let all_caps: BTreeSet<String> = roles.values().flatten().cloned().collect();

        let mut principals = BTreeMap::new();
        for (id, p) in doc.principals {
            for role in &p.roles {
                self.known_role(&roles, role, &format!("principal '{id}'"));
            }
            principals.insert(
                id,
                PrincipalDef {
                    roles: p.roles.into_iter().map(|r| r.value).collect(),
                    attributes: p.attributes,
                    kind: p.kind,
                },
            );
        }

        let mut servers_sorted: Vec<(Spanned<String>, ServerDoc)> = doc.servers.into_iter().collect();
        servers_sorted.sort_by_key(|(k, _)| (k.referenced.line(), k.referenced.column()));
        let servers: BTreeMap<String, ServerDef> = servers_sorted
            .into_iter()
            .map(|(k, s)| {
                (
                    k.value,
                    ServerDef {
                        tools: s.tools,
                        version: s.version,
                        data_scope: s.data_scope,
                        risk: s.risk,
                    },
                )
            })
            .collect();

        let detectors = self.detectors(doc.detectors);
        let mut flags: BTreeSet<String> = detectors.builtin_sets().map(str::to_string).collect();
        flags.extend(detectors.custom_flags().map(str::to_string));
        // Flags of built-in sets that are switched off are still names a condition may test.
        flags.extend(BUILTIN_SETS.iter().map(|s| s.to_string()));

        let operation_names: BTreeSet<String> = doc
            .tools
            .iter()
            .flat_map(|t| t.operations.iter().map(|o| o.name.value.clone()))
            .collect();
        let names = Names {
            roles: roles.keys().map(String::as_str).chain(BUILTIN_ROLES).collect(),
            capabilities: all_caps.iter().map(String::as_str).collect(),
            flags,
            operations: operation_names.iter().map(String::as_str).collect(),
            in_operation: false,
        };

        let approvals = self.approval_settings(doc.approvals, &roles);
        let protections = self.protections(
            doc.scan,
            doc.on_drift,
            doc.redact,
            doc.breaker,
            doc.budgets,
            doc.canaries,
        );
        let tools = self.tools(doc.tools, &roles, &all_caps, &servers, &names);
        let rules = self.rules(doc.rules, &roles, &servers, &names);
        let default = doc.default.unwrap_or(Effect::Deny);
        self.decision_order(&tools, &rules, &doc.risk_effects, default, &detectors);

        Policy {
            source_name: name.to_string(),
            version: Policy::version_of(self.text),
            default,
            mode: doc.mode.unwrap_or_default(),
            timezone,
            roles,
            principals,
            servers,
            tools,
            rules,
            risk_effects: doc.risk_effects,
            detectors,
            approvals,
            protections,
            index: Default::default(),
        }
    }

    fn protections(
        &mut self,
        scan: Option<steward_scan::ScanPolicy>,
        on_drift: Option<steward_scan::DriftAction>,
        redact: Option<Spanned<steward_scan::OutputPolicy>>,
        breaker: Option<crate::protections::BreakerDoc>,
        budgets: Vec<Spanned<crate::protections::BudgetDoc>>,
        canaries: Vec<crate::protections::Canary>,
    ) -> crate::protections::Protections {
        let mut p = crate::protections::Protections::default();
        if let Some(s) = scan {
            p.scan = s;
        }
        if let Some(d) = on_drift {
            p.on_drift = d;
        }
        if let Some(r) = redact {
            if let Err(e) = r.value.validate() {
                self.error(
                    at(&r),
                    format!("redact: {e}"),
                    "see docs/threats.md for the `redact:` block",
                );
            }
            p.redact = r.value;
        }
        p.breaker = breaker.map(|b| b.repeats).unwrap_or(0);
        for b in budgets {
            match b.value.rule() {
                Ok(rule) => p.budgets.push(rule),
                Err(e) => self.error(
                    at(&b),
                    format!("budget: {e}"),
                    "e.g. `budgets: [{per: principal, window: 1h, calls: 500}]`",
                ),
            }
        }
        p.canaries = canaries;
        p
    }

    fn known_role(&mut self, roles: &BTreeMap<String, BTreeSet<String>>, role: &Spanned<String>, whose: &str) {
        if !roles.contains_key(&role.value) && !BUILTIN_ROLES.contains(&role.value.as_str()) {
            let hint = match closest(&role.value, roles.keys().map(String::as_str)) {
                Some(s) => format!("did you mean '{s}'? roles are defined under `roles:`"),
                None => format!("define it under `roles:` (known roles: {})", join(roles.keys())),
            };
            self.error(
                at(role),
                format!("{whose} names role '{}' which is not defined", role.value),
                hint,
            );
        }
    }

    fn required(&mut self, requires: &[Spanned<String>], all_caps: &BTreeSet<String>) {
        for req in requires {
            if !all_caps.contains(&req.value) {
                let hint = match closest(&req.value, all_caps.iter().map(String::as_str)) {
                    Some(s) => format!("did you mean '{s}'? Nobody can call this until a role grants it"),
                    None => "nobody can call this; add the capability to a role under `roles:`".to_string(),
                };
                self.warn(
                    at(req),
                    format!("capability '{}' is required but no role grants it", req.value),
                    hint,
                );
            }
        }
    }

    fn approvers(
        &mut self,
        a: Option<Spanned<ApproversDoc>>,
        roles: &BTreeMap<String, BTreeSet<String>>,
    ) -> Option<Approvers> {
        let a = a?;
        if a.value.count == 0 {
            self.error(
                at(&a),
                "approvers.count is 0",
                "count is how many distinct people must approve: at least 1",
            );
        }
        for r in &a.value.roles {
            self.known_role(roles, r, "approvers");
        }
        let hold_timeout = a
            .value
            .hold_timeout
            .as_ref()
            .and_then(|t| self.duration(t, "approvers.hold_timeout"));
        Some(Approvers {
            roles: a.value.roles.into_iter().map(|r| r.value).collect(),
            count: a.value.count.max(1),
            mode: a.value.mode,
            hold_timeout,
        })
    }

    /// The policy-wide `approvals:` settings, defaults filled in.
    fn approval_settings(
        &mut self,
        doc: Option<ApprovalsDoc>,
        roles: &BTreeMap<String, BTreeSet<String>>,
    ) -> ApprovalSettings {
        let mut s = ApprovalSettings::default();
        let Some(doc) = doc else { return s };
        s.mode = doc.mode.unwrap_or(s.mode);
        for (value, slot, what) in [
            (&doc.hold_timeout, &mut s.hold_timeout, "approvals.hold_timeout"),
            (&doc.grant_window, &mut s.grant_window, "approvals.grant_window"),
            (&doc.expiry, &mut s.expiry, "approvals.expiry"),
            (
                &doc.hold_without_progress,
                &mut s.hold_without_progress,
                "approvals.hold_without_progress",
            ),
        ] {
            if let Some(d) = value.as_ref().and_then(|v| self.duration(v, what)) {
                *slot = d;
            }
        }
        if let Some(list) = doc.default_approver_roles {
            // An empty list would let anyone approve: approver rules cannot be empty.
            if list.value.is_empty() {
                self.error(
                    at(&list),
                    "approvals.default_approver_roles is empty",
                    format!(
                        "name at least one role that may approve calls whose approvers name none (the default is [{}])",
                        BUILTIN_ROLES[0]
                    ),
                );
            } else {
                for r in &list.value {
                    self.known_role(roles, r, "approvals.default_approver_roles");
                }
                s.default_approver_roles = list.value.into_iter().map(|r| r.value).collect();
            }
        }
        s
    }

    /// A positive duration such as `90s`, `10m`, `2h`, `1d` (or `500ms`).
    fn duration(&mut self, value: &Spanned<String>, what: &str) -> Option<std::time::Duration> {
        match parse_duration(&value.value) {
            Some(d) if !d.is_zero() => Some(d),
            _ => {
                self.error(
                    at(value),
                    format!("{what}: '{}' is not a duration", value.value),
                    "write a positive duration such as 30s, 10m, 2h or 1d",
                );
                None
            }
        }
    }

    fn patterns(&mut self, p: Spanned<OneOrMany>, what: &str) -> (Vec<ToolPattern>, (u64, u64)) {
        let loc = at(&p);
        let mut out = Vec::new();
        for pat in p.value.into_vec() {
            match ToolPattern::parse(&pat) {
                Ok(pat) => {
                    // `demo://x` splits at its first `/` into server `demo:`: a URI without a server.
                    if pat.server_part().ends_with(':') {
                        self.warn(
                            loc,
                            format!(
                                "'{}' reads as server '{}': a resource URI needs its server first",
                                pat.as_str(),
                                pat.server_part()
                            ),
                            format!("write \"SERVER/{0}\" or \"*/{0}\"", pat.as_str()),
                        );
                    }
                    out.push(pat)
                }
                Err(e) => self.error(
                    loc,
                    format!("bad {what} pattern: {e}"),
                    "patterns are \"server/tool\" globs: \"it-ops/ssh-*\", \"*/echo\", \"db/*\"",
                ),
            }
        }
        (out, loc)
    }

    /// A `match` that matches nothing the `servers:` inventory lists can never apply.
    fn reachable(
        &mut self,
        patterns: &[ToolPattern],
        loc: (u64, u64),
        servers: &BTreeMap<String, ServerDef>,
        what: &str,
        tools: bool,
    ) {
        if servers.is_empty() {
            return;
        }
        for p in patterns {
            let hits = servers.iter().any(|(name, s)| {
                p.matches_server(name) && (!tools || s.tools.is_empty() || s.tools.iter().any(|t| p.matches(name, t)))
            });
            if hits {
                continue;
            }
            let (message, hint) = match p.literal_server().and_then(|s| servers.get(s).map(|d| (s, d))) {
                Some((s, def)) => (
                    format!(
                        "{what} '{}' can never match: server '{s}' has no tool matching '{}'",
                        p.as_str(),
                        p.tool_part()
                    ),
                    match closest(p.tool_part(), def.tools.iter().map(String::as_str)) {
                        Some(t) => format!("did you mean '{s}/{t}'? tools of {s}: {}", def.tools.join(", ")),
                        None => format!("tools of {s}: {}", def.tools.join(", ")),
                    },
                ),
                None => (
                    format!(
                        "{what} '{}' can never match: no server of the `servers:` inventory matches",
                        p.as_str()
                    ),
                    match p
                        .literal_server()
                        .and_then(|s| closest(s, servers.keys().map(String::as_str)))
                    {
                        Some(s) => format!(
                            "did you mean server '{s}'? The inventory lists: {}",
                            join(servers.keys())
                        ),
                        None => format!(
                            "the inventory lists: {}; add the server there or fix the pattern",
                            join(servers.keys())
                        ),
                    },
                ),
            };
            self.error(loc, message, hint);
        }
    }

    fn condition(&mut self, when: &Spanned<String>, names: &Names<'_>) -> Option<Condition> {
        let source = when.value.clone();
        let base = at(when);
        let locate = |offset: usize| expression_location(self.text, base, &source, offset);
        let program = match cel::Program::compile(&source) {
            Ok(p) => p,
            Err(errors) => {
                for e in errors.errors.iter().take(3) {
                    // The parser reports a 1-based line and column within the expression.
                    let loc = if e.pos.0 == 1 && e.pos.1 >= 1 {
                        locate(e.pos.1 as usize - 1)
                    } else {
                        base
                    };
                    self.error(loc, format!("CEL syntax error: {}", e.msg), "conditions are CEL expressions, e.g. 'args.message.contains(\"x\")'; quote the whole expression in YAML");
                }
                return None;
            }
        };
        let problems = check::check(program.expression(), names);
        let mut ok = true;
        for (id, severity, message, hint) in problems {
            let offset = program
                .source_info()
                .offset_for(id)
                .map(|(start, _)| start as usize)
                .unwrap_or(0);
            let loc = locate(offset);
            match severity {
                Severity::Error => {
                    ok = false;
                    self.error(loc, message, hint);
                }
                Severity::Warning => self.warn(loc, message, hint),
            }
        }
        ok.then(|| Condition::new(source, program))
    }

    fn tools(
        &mut self,
        docs: Vec<ToolDoc>,
        roles: &BTreeMap<String, BTreeSet<String>>,
        all_caps: &BTreeSet<String>,
        servers: &BTreeMap<String, ServerDef>,
        names: &Names<'_>,
    ) -> Vec<ToolClass> {
        let mut tools: Vec<ToolClass> = Vec::new();
        let op_names = Names {
            in_operation: true,
            ..names.clone_names()
        };
        for t in docs {
            self.required(&t.requires, all_caps);
            let (patterns, loc) = self.patterns(t.pattern, "tools entry");
            self.reachable(&patterns, loc, servers, "tools entry", true);
            // An entry after one whose patterns cover everything it matches is never used.
            if let Some(earlier) = tools
                .iter()
                .find(|e| patterns.iter().all(|p| e.patterns.iter().any(|q| covers(q, p))))
            {
                self.warn(
                    loc,
                    format!(
                        "this tools entry is never used: the earlier entry '{}' matches every tool it matches",
                        earlier.label()
                    ),
                    "the first matching tools entry classifies a tool; move this entry up or remove it",
                );
            }
            let mut operations: Vec<Operation> = Vec::new();
            let mut catch_all: Option<String> = None;
            for o in t.operations {
                let loc = at(&o.name);
                if operations.iter().any(|x| x.name == o.name.value) {
                    self.error(loc, format!("duplicate operation name '{}'", o.name.value), "operation names appear in audit events and `call.operation`; make each unique within its tools entry");
                }
                if o.name.value.trim().is_empty() {
                    self.error(
                        loc,
                        "operation name is empty",
                        "name every operation, e.g. `name: sudo`",
                    );
                }
                if let Some(first) = &catch_all {
                    self.error(loc, format!("operation '{}' can never match: '{first}' before it has no `when`", o.name.value), "the first operation whose `when` holds applies; give the earlier one a condition or move it last");
                }
                self.required(&o.requires, all_caps);
                let when = match &o.when {
                    Some(w) => self.condition(w, &op_names),
                    None => {
                        catch_all = Some(o.name.value.clone());
                        None
                    }
                };
                let approvers = self.approvers(o.approvers, roles);
                operations.push(Operation {
                    name: o.name.value,
                    when,
                    risk: o.risk,
                    requires: o.requires.into_iter().map(|r| r.value).collect(),
                    approval: o.approval,
                    approvers,
                });
            }
            let approvers = self.approvers(t.approvers, roles);
            tools.push(ToolClass {
                patterns,
                risk: t.risk,
                requires: t.requires.into_iter().map(|r| r.value).collect(),
                approval: t.approval,
                approvers,
                operations,
            });
        }
        tools
    }

    fn rules(
        &mut self,
        docs: Vec<RuleDoc>,
        roles: &BTreeMap<String, BTreeSet<String>>,
        servers: &BTreeMap<String, ServerDef>,
        names: &Names<'_>,
    ) -> Vec<Rule> {
        let mut rules = Vec::new();
        let mut seen_ids: HashSet<String> = HashSet::new();
        for r in docs {
            let id_loc = at(&r.id);
            self.rule_locs.push(id_loc);
            if r.id.value.trim().is_empty() {
                self.error(id_loc, "rule id is empty", "give every rule a unique `id`");
            }
            if !seen_ids.insert(r.id.value.clone()) {
                self.error(
                    id_loc,
                    format!("duplicate rule id '{}'", r.id.value),
                    "rule ids name rules in audit events and explanations; make each one unique",
                );
            }
            let methods = match r.method {
                Some(m) => {
                    let loc = at(&m);
                    let methods = m.value.into_vec();
                    for method in &methods {
                        if !GOVERNED_METHODS.contains(&method.as_str()) {
                            let hint = match closest(method, GOVERNED_METHODS.iter().copied()) {
                                Some(s) => {
                                    format!("did you mean '{s}'? Governed methods: {}", GOVERNED_METHODS.join(", "))
                                }
                                None => format!("use one of: {}", GOVERNED_METHODS.join(", ")),
                            };
                            self.error(
                                loc,
                                format!("'{method}' is not a governed method: the rule can never match"),
                                hint,
                            );
                        }
                    }
                    if r.effect != Effect::Deny
                        && let Some(list) = methods.iter().find(|m| LIST_METHODS.iter().any(|(l, _)| l == m))
                    {
                        self.warn(
                            loc,
                            format!("a {} rule on {list} has no effect", r.effect),
                            "list rules can only hide entries (effect: deny)",
                        );
                    }
                    methods
                }
                None => vec!["tools/call".to_string()],
            };
            let patterns = match r.pattern {
                Some(p) => {
                    let (patterns, loc) = self.patterns(p, "match");
                    // The inventory lists tools: a rule on resources or prompts is checked by its
                    // server part only.
                    let tools_only = methods.iter().all(|m| m == "tools/call" || m == "tools/list");
                    self.reachable(&patterns, loc, servers, "rule match", tools_only);
                    patterns
                }
                None => vec![ToolPattern::any()],
            };
            let when = r.when.as_ref().and_then(|w| self.condition(w, names));
            if let Some(a) = &r.approvers
                && !matches!(r.effect, Effect::Approve | Effect::Ask)
            {
                self.warn(
                    at(a),
                    format!("approvers on a rule whose effect is {}", r.effect),
                    "approvers only matter when the effect is approve",
                );
            }
            let approvers = self.approvers(r.approvers, roles);
            rules.push(Rule {
                id: r.id.value,
                patterns,
                methods,
                when,
                effect: r.effect,
                reason: r.reason,
                approvers,
                shadow: r.mode == Some(Mode::Shadow),
            });
        }
        rules
    }

    /// Warns about risk effects and rules that can never decide a call because of the decision
    /// order: `default` decides what no rule matched and no tools entry classifies; risk effects
    /// apply to classified calls, and to unclassified ones only when a detector or a destructive
    /// annotation raised the risk, and then only when stricter than the default; annotations never
    /// lower a call's risk.
    fn decision_order(
        &mut self,
        tools: &[ToolClass],
        rules: &[Rule],
        risk_effects: &BTreeMap<Risk, RiskEffect>,
        default: Effect,
        detectors: &Detectors,
    ) {
        // The floors detectors can raise a call to.
        let mut floors: BTreeSet<Risk> = BTreeSet::new();
        if detectors.builtin_sets().next().is_some() {
            floors.extend([Risk::Medium, Risk::High, Risk::Critical]);
        }
        floors.extend(detectors.custom_risks());
        // Risks a classified tool call can have: declared, or raised above the lowest declared.
        let declared: BTreeSet<Risk> = tools
            .iter()
            .flat_map(|t| {
                std::iter::once(t.risk.unwrap_or(Risk::Medium)).chain(t.operations.iter().filter_map(|o| o.risk))
            })
            .collect();
        let mut classified = declared.clone();
        if let Some(lowest) = declared.first() {
            classified.extend(floors.iter().chain([&Risk::High]).filter(|f| *f > lowest));
        }
        // Risks an unclassified call can be raised to (tool calls start at MEDIUM, other methods
        // at LOW; a destructive annotation makes a tool call HIGH).
        let raised_tool: BTreeSet<Risk> = floors
            .iter()
            .chain([&Risk::High])
            .map(|f| *f.max(&Risk::Medium))
            .collect();
        let raised_other: BTreeSet<Risk> = floors.iter().copied().collect();
        let line = self
            .text
            .lines()
            .position(|l| l.trim_start().starts_with("risk_effects"))
            .map_or((0, 0), |i| (i as u64 + 1, 1));
        for (risk, re) in risk_effects {
            if classified.contains(risk) {
                continue;
            }
            let effect = match re {
                RiskEffect::Allow => Effect::Allow,
                RiskEffect::Deny => Effect::Deny,
                RiskEffect::Approve | RiskEffect::ApproveIfDangerous => Effect::Approve,
            };
            let by_raise = raised_tool.contains(risk) || raised_other.contains(risk);
            let why = if !by_raise {
                format!(
                    "no tools entry or operation declares {risk} risk, and no detector raises a call to {risk}{}",
                    if *risk == Risk::Low {
                        " (MCP annotations never make a call LOW)"
                    } else {
                        ""
                    }
                )
            } else if effect < default {
                format!(
                    "no tools entry or operation declares {risk} risk, and for unclassified calls the stricter `default: {default}` wins"
                )
            } else {
                continue;
            };
            self.warn(
                line,
                format!("risk_effects.{risk} ({}) never decides a call: {why}", re.as_str()),
                "`default` decides calls that no rule matches and no `tools` entry classifies; classify the tools you mean (`tools: [{match: \"server/*\", risk: MEDIUM}]`) or write a rule for them",
            );
        }
        for (rule, loc) in rules.iter().zip(self.rule_locs.clone()) {
            let Some(required) = rule.when.as_ref().and_then(|c| c.required_risks()) else {
                continue;
            };
            let mut possible: BTreeSet<Risk> = BTreeSet::new();
            if rule.applies_to_method("tools/call") {
                possible.extend(&classified);
                possible.insert(Risk::Medium);
                possible.extend(&raised_tool);
            }
            if rule.methods.iter().any(|m| m != "tools/call") {
                possible.insert(Risk::Low);
                possible.extend(&raised_other);
            }
            if required.is_disjoint(&possible) {
                let wanted = required.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
                self.warn(
                    loc,
                    format!(
                        "rule '{}' can never fire: it needs call.risk {}, which no call it covers can have",
                        rule.id,
                        if wanted.is_empty() { "to be two risks at once".to_string() } else { format!("in [{wanted}]") }
                    ),
                    "a tool call is LOW only when a tools entry or operation declares it (annotations never lower risk); unclassified tool calls start at MEDIUM",
                );
            }
        }
    }

    fn detectors(&mut self, doc: Option<DetectorsDoc>) -> Detectors {
        let doc = doc.unwrap_or_default();
        let base = match doc.builtin {
            None => Detectors::builtin(),
            Some(b) => match &b.value {
                Builtin::All(true) => Detectors::builtin(),
                Builtin::All(false) => Detectors::none(),
                Builtin::Sets(sets) => {
                    for s in sets {
                        if !BUILTIN_SETS.contains(&s.as_str()) {
                            let hint = match closest(s, BUILTIN_SETS.iter().copied()) {
                                Some(c) => format!("did you mean '{c}'? Built-in sets: {}", BUILTIN_SETS.join(", ")),
                                None => format!("built-in sets: {}", BUILTIN_SETS.join(", ")),
                            };
                            self.error(at(&b), format!("unknown detector set '{s}'"), hint);
                        }
                    }
                    Detectors::only(&sets.iter().map(String::as_str).collect::<Vec<_>>())
                }
            },
        };
        let mut custom = Vec::new();
        let mut seen = HashSet::new();
        for d in doc.custom {
            let loc = at(&d.name);
            if !seen.insert(d.name.value.clone()) {
                self.error(
                    loc,
                    format!("duplicate detector name '{}'", d.name.value),
                    "name every custom detector uniquely",
                );
            }
            if BUILTIN_SETS.contains(&d.name.value.as_str()) {
                self.error(
                    loc,
                    format!("'{}' is the name of a built-in detector set", d.name.value),
                    "choose another name (a custom detector may still raise that flag with `flag:`)",
                );
            }
            if d.regex.is_empty() && d.words.is_empty() {
                self.error(
                    loc,
                    format!("detector '{}' has neither `regex` nor `words`", d.name.value),
                    "give it a list of regular expressions or of words",
                );
                continue;
            }
            let regexes: Vec<String> = d.regex.iter().map(|r| r.value.clone()).collect();
            let flag = d.flag.clone().unwrap_or_else(|| d.name.value.clone());
            match CustomDetector::new(&d.name.value, &flag, d.risk.unwrap_or(Risk::High), &regexes, &d.words) {
                Ok(c) => custom.push(c),
                Err(e) => {
                    let loc = d.regex.get(e.index).map(at).unwrap_or(loc);
                    let first = e
                        .message
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim()
                        .trim_start_matches("error: ")
                        .to_string();
                    self.error(
                        loc,
                        format!("invalid regular expression in detector '{}': {first}", d.name.value),
                        "detectors use the syntax of the Rust regex crate",
                    );
                }
            }
        }
        base.with_custom(custom)
    }
}

impl Names<'_> {
    fn clone_names(&self) -> Names<'_> {
        Names {
            roles: self.roles.clone(),
            capabilities: self.capabilities.clone(),
            flags: self.flags.clone(),
            operations: self.operations.clone(),
            in_operation: self.in_operation,
        }
    }
}

/// Whether pattern `a` matches every pair `b` matches (conservatively: only catch-alls and
/// identical patterns are recognised).
fn covers(a: &ToolPattern, b: &ToolPattern) -> bool {
    a.as_str() == b.as_str()
        || (a.server_part() == "*" || a.server_part() == b.server_part()) && a.tool_part() == "*"
        || a.server_part() == "*" && a.tool_part() == b.tool_part()
}

/// Maps an offset inside a single-line expression to a file location, stepping over an opening quote.
fn expression_location(text: &str, base: (u64, u64), expr: &str, offset: usize) -> (u64, u64) {
    let (line, column) = base;
    if expr.contains('\n') || line == 0 {
        return base;
    }
    let Some(src_line) = text.lines().nth(line as usize - 1) else {
        return base;
    };
    let start = src_line.chars().nth(column.saturating_sub(1) as usize);
    let quote = matches!(start, Some('"') | Some('\'')) as u64;
    let offset_chars = expr.get(..offset).map(|s| s.chars().count()).unwrap_or(0) as u64;
    (line, column + quote + offset_chars)
}

fn yaml_hint(message: &str) -> String {
    if let Some(rest) = message.split("unknown field `").nth(1) {
        let field = rest.split('`').next().unwrap_or_default();
        let expected: Vec<&str> = message
            .split("expected one of ")
            .nth(1)
            .map(|e| e.split(',').map(|x| x.trim().trim_matches('`')).collect())
            .or_else(|| {
                message
                    .split("expected `")
                    .nth(1)
                    .map(|e| vec![e.split('`').next().unwrap_or_default()])
            })
            .unwrap_or_default();
        let candidates: Vec<&str> = if expected.is_empty() {
            KEYS.to_vec()
        } else {
            expected.clone()
        };
        return match closest(field, candidates.iter().copied()) {
            Some(s) => format!(
                "did you mean `{s}`? Allowed here: {}",
                if expected.is_empty() {
                    "see docs/policy.md".to_string()
                } else {
                    expected.join(", ")
                }
            ),
            None if !expected.is_empty() => format!("allowed here: {}", expected.join(", ")),
            None => "check the spelling; docs/policy.md lists every key a policy may have".to_string(),
        };
    }
    if message.contains("unknown variant") {
        "effects are allow|ask|deny|approve; risks LOW|MEDIUM|HIGH|CRITICAL; risk effects also approve_if_dangerous; approval always|never|if_dangerous; mode enforce|shadow".to_string()
    } else if message.contains("missing field") {
        "every policy needs `version: 1`; every rule needs `id` and `effect`; every tools entry needs `match`; every operation needs `name`".to_string()
    } else if message.contains("duplicate") {
        "each key may appear once in a mapping".to_string()
    } else {
        "see docs/policy.md for the policy format".to_string()
    }
}

/// serde-saphyr ends messages with " at line L, column C": the diagnostic says where already.
pub(crate) fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(", column ") => message[..i].to_string(),
        _ => message.to_string(),
    }
}

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo.
pub(crate) fn closest<'c>(word: &str, candidates: impl Iterator<Item = &'c str>) -> Option<&'c str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .map(|c| (distance(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()), c))
        .filter(|(d, _)| *d <= limit && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// `500ms`, `30s`, `10m`, `2h`, `1d`; a bare number is seconds.
fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..split].parse().ok()?;
    let secs = match s[split..].trim() {
        "ms" => return Some(std::time::Duration::from_millis(n)),
        "" | "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(std::time::Duration::from_secs(secs))
}

fn join<'a>(items: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = items.map(String::as_str).collect();
    if v.is_empty() { "none".to_string() } else { v.join(", ") }
}
