//! Loading and strict validation of policy YAML.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use serde::Deserialize;
use serde_saphyr::Spanned;
use sha2::{Digest, Sha256};

use crate::detect::Detectors;
use crate::error::{Diagnostic, PolicyError, Severity};
use crate::glob::ToolPattern;
use crate::model::{
    Condition, Effect, Policy, PrincipalDef, Risk, RiskEffect, Rule, ToolClass,
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
    roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    principals: BTreeMap<String, PrincipalDoc>,
    #[serde(default)]
    tools: Vec<ToolDoc>,
    #[serde(default)]
    rules: Vec<RuleDoc>,
    #[serde(default)]
    risk_effects: BTreeMap<Risk, RiskEffect>,
    #[serde(default)]
    detectors: Option<DetectorsDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrincipalDoc {
    #[serde(default)]
    roles: Vec<Spanned<String>>,
    #[serde(default)]
    attributes: serde_json::Map<String, serde_json::Value>,
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
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DetectorsDoc {
    #[serde(default = "yes")]
    builtin: bool,
}

fn yes() -> bool {
    true
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

/// The methods a rule may name in `method`.
pub(crate) const GOVERNED_METHODS: [&str; 4] =
    ["tools/call", "tools/list", "resources/read", "prompts/get"];

/// Variables a CEL condition may use, with the fields of the fixed-shape ones.
const VARIABLES: [(&str, Option<&[&str]>); 7] = [
    (
        "principal",
        Some(&["id", "roles", "capabilities", "attributes", "auth"]),
    ),
    (
        "server",
        Some(&["name", "version", "data_scope", "risk"]),
    ),
    ("tool", Some(&["name", "annotations"])),
    ("args", None),
    (
        "call",
        Some(&["method", "risk", "flags", "operation"]),
    ),
    (
        "time",
        Some(&["now", "hour", "minute", "weekday", "date"]),
    ),
    (
        "request",
        Some(&["client_name", "client_version", "door", "source"]),
    ),
];

/// CEL functions and macros that conditions may call (the standard library as `cel` implements it).
const FUNCTIONS: &[&str] = &[
    "size", "contains", "startsWith", "endsWith", "matches", "has", "all", "exists",
    "exists_one", "map", "filter", "int", "uint", "double", "string", "bytes", "bool", "type",
    "dyn", "duration", "timestamp", "max", "min", "getFullYear", "getMonth", "getDate",
    "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getHours", "getMinutes", "getSeconds",
    "getMilliseconds", "optional.of", "optional.none", "optional.ofNonZeroValue", "or",
    "orValue", "hasValue", "value",
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
                vec![Diagnostic::error(1, 1, format!(
                    "policy file is {} bytes; the limit is {MAX_POLICY_BYTES}",
                    meta.len()
                ))],
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
}

fn invalid(name: &str, diagnostics: Vec<Diagnostic>) -> PolicyError {
    PolicyError::Invalid {
        file: name.to_string(),
        diagnostics,
    }
}

fn compile(text: &str, name: &str) -> (Option<Policy>, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    if text.len() > MAX_POLICY_BYTES {
        diags.push(Diagnostic::error(1, 1, "policy text is larger than 4 MiB"));
        return (None, diags);
    }
    let doc: PolicyDoc = match serde_saphyr::from_str(text) {
        Ok(doc) => doc,
        Err(e) => {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((0, 0));
            let message = e.without_snippet().to_string();
            let message = message.lines().next().unwrap_or("invalid YAML").to_string();
            diags.push(Diagnostic::error(line, column, message).hint(yaml_hint(&e.to_string())));
            return (None, diags);
        }
    };

    if doc.version.value != 1 {
        diags.push(
            Diagnostic::error(
                doc.version.referenced.line(),
                doc.version.referenced.column(),
                format!("unsupported policy version {}", doc.version.value),
            )
            .hint("this Steward reads `version: 1` policies"),
        );
    }

    let roles: BTreeMap<String, BTreeSet<String>> = doc
        .roles
        .into_iter()
        .map(|(role, caps)| (role, caps.into_iter().collect()))
        .collect();
    let all_caps: BTreeSet<&String> = roles.values().flatten().collect();

    let mut principals = BTreeMap::new();
    for (id, p) in doc.principals {
        for role in &p.roles {
            if !roles.contains_key(&role.value) {
                diags.push(
                    Diagnostic::error(
                        role.referenced.line(),
                        role.referenced.column(),
                        format!("principal '{id}' has role '{}' which is not defined", role.value),
                    )
                    .hint(format!("define it under `roles:` (known roles: {})", join(roles.keys()))),
                );
            }
        }
        principals.insert(
            id,
            PrincipalDef {
                roles: p.roles.into_iter().map(|r| r.value).collect(),
                attributes: p.attributes,
            },
        );
    }

    let mut tools = Vec::new();
    for t in doc.tools {
        let line = t.pattern.referenced.line();
        let column = t.pattern.referenced.column();
        for req in &t.requires {
            if !all_caps.contains(&req.value) {
                diags.push(
                    Diagnostic::warning(
                        req.referenced.line(),
                        req.referenced.column(),
                        format!("capability '{}' is required but no role grants it", req.value),
                    )
                    .hint("nobody can call these tools; add the capability to a role under `roles:`"),
                );
            }
        }
        let requires: Vec<String> = t.requires.into_iter().map(|r| r.value).collect();
        for pattern in t.pattern.value.into_vec() {
            match ToolPattern::parse(&pattern) {
                Ok(pattern) => tools.push(ToolClass {
                    pattern,
                    risk: t.risk,
                    requires: requires.clone(),
                }),
                Err(e) => diags.push(Diagnostic::error(line, column, format!("bad tool pattern: {e}"))),
            }
        }
    }

    let mut rules = Vec::new();
    let mut seen_ids: HashSet<String> = HashSet::new();
    for r in doc.rules {
        let (id_line, id_col) = (r.id.referenced.line(), r.id.referenced.column());
        if r.id.value.trim().is_empty() {
            diags.push(Diagnostic::error(id_line, id_col, "rule id is empty").hint("give every rule a unique `id`"));
        }
        if !seen_ids.insert(r.id.value.clone()) {
            diags.push(
                Diagnostic::error(id_line, id_col, format!("duplicate rule id '{}'", r.id.value))
                    .hint("rule ids name rules in audit events and explanations; make each one unique"),
            );
        }
        let mut patterns = Vec::new();
        match r.pattern {
            Some(p) => {
                let (line, column) = (p.referenced.line(), p.referenced.column());
                for pat in p.value.into_vec() {
                    match ToolPattern::parse(&pat) {
                        Ok(pat) => patterns.push(pat),
                        Err(e) => diags.push(Diagnostic::error(line, column, format!("bad match pattern: {e}"))),
                    }
                }
            }
            None => patterns.push(ToolPattern::parse("*/*").expect("valid pattern")),
        }
        let methods = match r.method {
            Some(m) => {
                let (line, column) = (m.referenced.line(), m.referenced.column());
                let methods = m.value.into_vec();
                for method in &methods {
                    if !GOVERNED_METHODS.contains(&method.as_str()) {
                        diags.push(
                            Diagnostic::error(line, column, format!("'{method}' is not a governed method"))
                                .hint(format!("use one of: {}", GOVERNED_METHODS.join(", "))),
                        );
                    }
                }
                methods
            }
            None => vec!["tools/call".to_string()],
        };
        let when = r.when.and_then(|w| compile_condition(text, &w, &mut diags));
        rules.push(Rule {
            id: r.id.value,
            patterns,
            methods,
            when,
            effect: r.effect,
            reason: r.reason,
        });
    }

    let detectors = if doc.detectors.unwrap_or(DetectorsDoc { builtin: true }).builtin {
        Detectors::builtin()
    } else {
        Detectors::none()
    };

    let version = {
        let digest = Sha256::digest(text.as_bytes());
        hex::encode(&digest[..8])
    };

    let policy = Policy {
        source_name: name.to_string(),
        version,
        default: doc.default.unwrap_or(Effect::Deny),
        roles,
        principals,
        tools,
        rules,
        risk_effects: doc.risk_effects,
        detectors,
    };
    (Some(policy), diags)
}

fn compile_condition(text: &str, when: &Spanned<String>, diags: &mut Vec<Diagnostic>) -> Option<Condition> {
    let source = when.value.clone();
    let base = (when.referenced.line(), when.referenced.column());
    let at = |offset: u32| expression_location(text, base, &source, offset as usize);
    let program = match cel::Program::compile(&source) {
        Ok(p) => p,
        Err(errors) => {
            for e in errors.errors.iter().take(3) {
                // The parser reports 1-based line and 0-based column within the expression.
                let (line, column) = if e.pos.0 <= 1 && e.pos.1 >= 0 {
                    at(e.pos.1 as u32)
                } else {
                    base
                };
                diags.push(
                    Diagnostic::error(line, column, format!("CEL syntax error: {}", e.msg))
                        .hint("conditions are CEL expressions, e.g. 'args.message.contains(\"x\")'; quote the whole expression in YAML"),
                );
            }
            return None;
        }
    };
    let mut problems = Vec::new();
    check_expr(program.expression(), &mut Vec::new(), &mut problems);
    let mut ok = true;
    for (id, problem, hint) in problems {
        let offset = program.source_info().offset_for(id).map(|(start, _)| start).unwrap_or(0);
        let (line, column) = at(offset);
        diags.push(Diagnostic::error(line, column, problem).hint(hint));
        ok = false;
    }
    ok.then_some(Condition { source, program })
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

type Problem = (u64, String, String);

/// Walks a condition and reports unknown variables, unknown fields of fixed-shape variables and
/// unknown functions: the checks `cel` itself would only fail at run time.
fn check_expr(e: &IdedExpr, scope: &mut Vec<String>, out: &mut Vec<Problem>) {
    match &e.expr {
        Expr::Ident(name) => {
            if !name.starts_with('@') && !scope.iter().any(|v| v == name) && !VARIABLES.iter().any(|(v, _)| v == name) {
                out.push((
                    e.id,
                    format!("unknown variable '{name}'"),
                    format!(
                        "conditions can use: {}",
                        VARIABLES.iter().map(|(v, _)| *v).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Expr::Select(sel) => {
            if let Expr::Ident(var) = &sel.operand.expr
                && !scope.iter().any(|v| v == var)
                && let Some((_, Some(fields))) = VARIABLES.iter().find(|(v, _)| v == var)
                && !fields.contains(&sel.field.as_str())
            {
                out.push((
                    e.id,
                    format!("'{var}' has no field '{}'", sel.field),
                    format!("fields of {var}: {}", fields.join(", ")),
                ));
                return;
            }
            check_expr(&sel.operand, scope, out);
        }
        Expr::Call(call) => {
            let f = call.func_name.as_str();
            let operator = f.starts_with('_') || f.starts_with('@') || f.starts_with("!_");
            if !operator && !FUNCTIONS.contains(&f) {
                out.push((
                    e.id,
                    format!("unknown function '{f}'"),
                    "see docs/policy.md for the functions conditions can call".to_string(),
                ));
            }
            if let Some(t) = &call.target {
                check_expr(t, scope, out);
            }
            for a in &call.args {
                check_expr(a, scope, out);
            }
        }
        Expr::Comprehension(c) => {
            check_expr(&c.iter_range, scope, out);
            let depth = scope.len();
            scope.push(c.iter_var.clone());
            if let Some(v2) = &c.iter_var2 {
                scope.push(v2.clone());
            }
            scope.push(c.accu_var.clone());
            check_expr(&c.accu_init, scope, out);
            check_expr(&c.loop_cond, scope, out);
            check_expr(&c.loop_step, scope, out);
            check_expr(&c.result, scope, out);
            scope.truncate(depth);
        }
        Expr::List(list) => list.elements.iter().for_each(|x| check_expr(x, scope, out)),
        Expr::Map(map) => {
            for entry in &map.entries {
                match &entry.expr {
                    EntryExpr::StructField(f) => check_expr(&f.value, scope, out),
                    EntryExpr::MapEntry(m) => {
                        check_expr(&m.key, scope, out);
                        check_expr(&m.value, scope, out);
                    }
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    check_expr(&f.value, scope, out);
                }
            }
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn yaml_hint(message: &str) -> String {
    if message.contains("unknown field") {
        "check the spelling; docs/policy.md lists every key a policy may have".to_string()
    } else if message.contains("unknown variant") {
        "effects are allow|deny|approve; risks LOW|MEDIUM|HIGH|CRITICAL; risk effects also approve_if_dangerous".to_string()
    } else if message.contains("missing field") {
        "every policy needs `version: 1`; every rule needs `id` and `effect`; every tools entry needs `match`".to_string()
    } else {
        "see docs/policy.md for the policy format".to_string()
    }
}

fn join<'a>(items: impl Iterator<Item = &'a String>) -> String {
    let v: Vec<&str> = items.map(String::as_str).collect();
    if v.is_empty() { "none".to_string() } else { v.join(", ") }
}
