//! Static checks of CEL conditions: the mistakes `cel` would only report at run time (or never),
//! found when the policy loads. Unknown variables, fields and functions; comparisons between
//! types that can never be equal (`time.hour == "9"`, `call.risk == 3`); `contains` on a list;
//! names that do not exist (`call.risk == "HGH"`, a flag no detector raises, a role or
//! capability the policy does not define, an operation no tool has); regular expressions that do
//! not compile.

use std::collections::BTreeSet;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};

use crate::error::Severity;
use crate::model::{GOVERNED_METHODS, Risk, SERVER_STATUSES};
use crate::vars::{VARIABLES, WEEKDAYS, fields_of};

/// CEL functions and macros conditions may call (the standard library as `cel` implements it).
pub(crate) const FUNCTIONS: &[&str] = &[
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "has",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "type",
    "dyn",
    "duration",
    "timestamp",
    "max",
    "min",
    "getFullYear",
    "getMonth",
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "optional.of",
    "optional.none",
    "optional.ofNonZeroValue",
    "or",
    "orValue",
    "hasValue",
    "value",
];

/// What the policy defines, for checking the names conditions mention.
pub(crate) struct Names<'a> {
    pub roles: BTreeSet<&'a str>,
    pub capabilities: BTreeSet<&'a str>,
    pub flags: BTreeSet<String>,
    pub operations: BTreeSet<&'a str>,
    /// Checking an operation's own `when`: `call.operation` is always null there.
    pub in_operation: bool,
}

/// One finding: the expression node it is about, its severity, message and hint.
pub(crate) type Problem = (u64, Severity, String, String);

/// Value sets a string can be checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Domain {
    Roles,
    Capabilities,
    Risks,
    Flags,
    Operations,
    Methods,
    Weekdays,
    Statuses,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Dyn,
    Str,
    /// A string that may be null (`server.version`, `request.client_name`).
    StrOrNull,
    Int,
    UInt,
    Double,
    Bool,
    Null,
    Timestamp,
    List(Box<Ty>),
    Map,
    /// A fixed-shape variable (`principal`, `call`…), by name.
    Var(&'static str),
}

#[derive(Debug, Clone, PartialEq)]
struct Ty {
    kind: Kind,
    domain: Option<Domain>,
}

impl Ty {
    fn of(kind: Kind) -> Ty {
        Ty { kind, domain: None }
    }

    fn dyn_() -> Ty {
        Ty::of(Kind::Dyn)
    }

    fn str_in(d: Domain) -> Ty {
        Ty {
            kind: Kind::Str,
            domain: Some(d),
        }
    }

    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Dyn => "dyn",
            Kind::Str => "string",
            Kind::StrOrNull => "string or null",
            Kind::Int => "int",
            Kind::UInt => "uint",
            Kind::Double => "double",
            Kind::Bool => "bool",
            Kind::Null => "null",
            Kind::Timestamp => "timestamp",
            Kind::List(_) => "list",
            Kind::Map => "map",
            Kind::Var(_) => "map",
        }
    }

    fn numeric(&self) -> bool {
        matches!(self.kind, Kind::Int | Kind::UInt | Kind::Double)
    }

    fn stringy(&self) -> bool {
        matches!(self.kind, Kind::Str | Kind::StrOrNull)
    }
}

fn field_type(var: &'static str, field: &str) -> Ty {
    use Domain::*;
    match (var, field) {
        ("principal", "id" | "auth") => Ty::of(Kind::Str),
        ("principal", "roles") => Ty::of(Kind::List(Box::new(Ty::str_in(Roles)))),
        ("principal", "capabilities") => Ty::of(Kind::List(Box::new(Ty::str_in(Capabilities)))),
        ("principal", "attributes") => Ty::of(Kind::Map),
        ("server", "name") => Ty::of(Kind::Str),
        ("server", "risk") => Ty {
            kind: Kind::StrOrNull,
            domain: Some(Risks),
        },
        ("server", "status") => Ty {
            kind: Kind::StrOrNull,
            domain: Some(Statuses),
        },
        ("server", _) => Ty::of(Kind::StrOrNull),
        ("resource", "uri") | ("prompt", "name") => Ty::of(Kind::StrOrNull),
        ("tool", "name") => Ty::of(Kind::Str),
        ("tool", "annotations") => Ty::of(Kind::Map),
        ("call", "method") => Ty::str_in(Methods),
        ("call", "risk") => Ty::str_in(Risks),
        ("call", "flags") => Ty::of(Kind::List(Box::new(Ty::str_in(Flags)))),
        ("call", "operation") => Ty {
            kind: Kind::StrOrNull,
            domain: Some(Operations),
        },
        ("time", "now") => Ty::of(Kind::Timestamp),
        ("time", "hour" | "minute") => Ty::of(Kind::Int),
        ("time", "weekday") => Ty::str_in(Weekdays),
        ("time", "date") => Ty::of(Kind::Str),
        ("request", "door") => Ty::of(Kind::Str),
        ("request", _) => Ty::of(Kind::StrOrNull),
        _ => Ty::dyn_(),
    }
}

struct Checker<'n, 'a> {
    names: &'n Names<'a>,
    scope: Vec<(String, Ty)>,
    out: Vec<Problem>,
}

/// Checks one condition; returns its problems.
pub(crate) fn check(root: &IdedExpr, names: &Names<'_>) -> Vec<Problem> {
    let mut c = Checker {
        names,
        scope: Vec::new(),
        out: Vec::new(),
    };
    let ty = c.ty(root);
    if !matches!(ty.kind, Kind::Bool | Kind::Dyn) {
        c.error(
            root.id,
            format!("a condition must be a bool, but this is {}", an(ty.name())),
            "compare it, e.g. `args.dry_run == true` or `size(args.hosts) > 3`",
        );
    }
    if matches!(&root.expr, Expr::Literal(LiteralValue::Boolean(b)) if !*b.inner()) {
        c.warn(
            root.id,
            "this condition is always false: the rule never matches".into(),
            "remove the rule, or write the condition it should have",
        );
    }
    c.out
}

impl Checker<'_, '_> {
    fn error(&mut self, id: u64, message: String, hint: impl Into<String>) {
        self.out.push((id, Severity::Error, message, hint.into()));
    }

    fn warn(&mut self, id: u64, message: String, hint: impl Into<String>) {
        self.out.push((id, Severity::Warning, message, hint.into()));
    }

    fn ty(&mut self, e: &IdedExpr) -> Ty {
        match &e.expr {
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::of(Kind::Bool),
                LiteralValue::Int(_) => Ty::of(Kind::Int),
                LiteralValue::UInt(_) => Ty::of(Kind::UInt),
                LiteralValue::Double(_) => Ty::of(Kind::Double),
                LiteralValue::String(_) => Ty::of(Kind::Str),
                LiteralValue::Null => Ty::of(Kind::Null),
                LiteralValue::Bytes(_) => Ty::dyn_(),
            },
            Expr::Ident(name) => {
                if let Some((_, t)) = self.scope.iter().rev().find(|(v, _)| v == name) {
                    return t.clone();
                }
                if name.starts_with('@') || name.starts_with("__") {
                    return Ty::dyn_();
                }
                match VARIABLES.iter().find(|v| *v == name) {
                    Some(&"args") => Ty::dyn_(),
                    Some(v) => Ty::of(Kind::Var(v)),
                    None => {
                        self.error(
                            e.id,
                            format!("unknown variable '{name}'"),
                            format!("conditions can use: {}", VARIABLES.join(", ")),
                        );
                        Ty::dyn_()
                    }
                }
            }
            Expr::Select(sel) => {
                let operand = self.ty(&sel.operand);
                if let Kind::Var(var) = operand.kind {
                    let fields = fields_of(var).unwrap_or(&[]);
                    if !fields.contains(&sel.field.as_str()) {
                        self.error(
                            e.id,
                            format!("'{var}' has no field '{}'", sel.field),
                            format!("fields of {var}: {}", fields.join(", ")),
                        );
                        return Ty::dyn_();
                    }
                    if sel.test {
                        return Ty::of(Kind::Bool);
                    }
                    if self.names.in_operation && var == "call" && sel.field == "operation" {
                        self.error(
                            e.id,
                            "call.operation is always null in an operation's own condition".into(),
                            "operations are chosen by their `when`; test the arguments instead",
                        );
                    }
                    return field_type(var, &sel.field);
                }
                if sel.test {
                    return Ty::of(Kind::Bool);
                }
                match operand.kind {
                    Kind::Str
                    | Kind::Int
                    | Kind::UInt
                    | Kind::Double
                    | Kind::Bool
                    | Kind::Timestamp
                    | Kind::List(_) => {
                        self.error(
                            e.id,
                            format!("{} has no fields (.{})", an(operand.name()), sel.field),
                            "only maps (args, principal.attributes, …) have fields",
                        );
                        Ty::dyn_()
                    }
                    Kind::Map if self.is_annotations(&sel.operand) => Ty::of(Kind::Bool),
                    _ => Ty::dyn_(),
                }
            }
            Expr::Call(call) => self.call(e.id, call),
            Expr::Comprehension(c) => {
                let range = self.ty(&c.iter_range);
                let elem = match &range.kind {
                    Kind::List(t) => (**t).clone(),
                    Kind::Map | Kind::Var(_) => Ty::of(Kind::Str),
                    _ => Ty::dyn_(),
                };
                let depth = self.scope.len();
                self.scope.push((c.iter_var.clone(), elem));
                if let Some(v2) = &c.iter_var2 {
                    self.scope.push((v2.clone(), Ty::dyn_()));
                }
                self.scope.push((c.accu_var.clone(), Ty::dyn_()));
                let init = self.ty(&c.accu_init);
                self.ty(&c.loop_cond);
                self.ty(&c.loop_step);
                let result = self.ty(&c.result);
                self.scope.truncate(depth);
                // `all`/`exists`/`exists_one` give a bool, `map`/`filter` a list.
                if matches!(result.kind, Kind::Bool) || matches!(init.kind, Kind::Bool) {
                    Ty::of(Kind::Bool)
                } else if matches!(init.kind, Kind::List(_)) {
                    Ty::of(Kind::List(Box::new(Ty::dyn_())))
                } else {
                    Ty::dyn_()
                }
            }
            Expr::List(list) => {
                let items: Vec<Ty> = list.elements.iter().map(|x| self.ty(x)).collect();
                let elem = match items.first() {
                    Some(first) if items.iter().all(|t| t.kind == first.kind) => Ty::of(first.kind.clone()),
                    _ => Ty::dyn_(),
                };
                Ty::of(Kind::List(Box::new(elem)))
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => {
                            self.ty(&f.value);
                        }
                        EntryExpr::MapEntry(m) => {
                            self.ty(&m.key);
                            self.ty(&m.value);
                        }
                    }
                }
                Ty::of(Kind::Map)
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.ty(&f.value);
                    }
                }
                Ty::dyn_()
            }
            Expr::Unspecified => Ty::dyn_(),
        }
    }

    fn is_annotations(&self, e: &IdedExpr) -> bool {
        matches!(&e.expr, Expr::Select(s) if s.field == "annotations" && matches!(&s.operand.expr, Expr::Ident(v) if v == "tool"))
    }

    fn call(&mut self, id: u64, call: &cel::common::ast::CallExpr) -> Ty {
        let f = call.func_name.as_str();
        let target = call.target.as_ref().map(|t| self.ty(t));
        let args: Vec<Ty> = call.args.iter().map(|a| self.ty(a)).collect();
        let operator = f.starts_with('_') || f.starts_with('@') || f.starts_with("!_") || f.starts_with("-_");
        if !operator && !FUNCTIONS.contains(&f) {
            self.error(
                id,
                format!("unknown function '{f}'"),
                "see docs/policy.md for the functions conditions can call",
            );
            return Ty::dyn_();
        }
        match f {
            operators::EQUALS | operators::NOT_EQUALS => {
                self.comparable(id, &call.args, &args, false);
                Ty::of(Kind::Bool)
            }
            operators::LESS | operators::LESS_EQUALS | operators::GREATER | operators::GREATER_EQUALS => {
                self.comparable(id, &call.args, &args, true);
                Ty::of(Kind::Bool)
            }
            operators::LOGICAL_AND | operators::LOGICAL_OR | operators::LOGICAL_NOT => {
                for (a, t) in call.args.iter().zip(&args) {
                    if !matches!(t.kind, Kind::Bool | Kind::Dyn) {
                        self.error(
                            a.id,
                            format!("`&&`, `||` and `!` take bools, but this is {}", an(t.name())),
                            "compare the value, e.g. `x == 'y'`",
                        );
                    }
                }
                Ty::of(Kind::Bool)
            }
            operators::IN => {
                self.membership(id, &call.args, &args);
                Ty::of(Kind::Bool)
            }
            operators::CONDITIONAL => args.get(1).cloned().unwrap_or_else(Ty::dyn_),
            operators::INDEX => match args.first().map(|t| &t.kind) {
                Some(Kind::List(t)) => (**t).clone(),
                _ => Ty::dyn_(),
            },
            "contains" | "startsWith" | "endsWith" | "matches" => {
                let subject = target
                    .clone()
                    .or_else(|| args.first().cloned())
                    .unwrap_or_else(Ty::dyn_);
                if !matches!(subject.kind, Kind::Str | Kind::StrOrNull | Kind::Dyn) {
                    let hint = if matches!(subject.kind, Kind::List(_)) {
                        "for a list, write `'x' in list` (or `list.exists(e, e.contains('x'))`)".to_string()
                    } else {
                        format!("{f} works on strings")
                    };
                    self.error(id, format!("{f}() on {}", an(subject.name())), hint);
                }
                if f == "matches" {
                    let pattern = if call.target.is_some() {
                        call.args.first()
                    } else {
                        call.args.get(1)
                    };
                    if let Some(IdedExpr {
                        expr: Expr::Literal(LiteralValue::String(p)),
                        id: pid,
                    }) = pattern
                        && let Err(e) = regex::Regex::new(p.inner())
                    {
                        let first = e
                            .to_string()
                            .lines()
                            .last()
                            .unwrap_or_default()
                            .trim()
                            .trim_start_matches("error: ")
                            .to_string();
                        self.error(
                            *pid,
                            format!("invalid regular expression: {first}"),
                            "matches() takes a regular expression in the syntax of the Rust regex crate",
                        );
                    }
                }
                Ty::of(Kind::Bool)
            }
            "size" => {
                let subject = target.or_else(|| args.first().cloned()).unwrap_or_else(Ty::dyn_);
                if matches!(
                    subject.kind,
                    Kind::Int | Kind::UInt | Kind::Double | Kind::Bool | Kind::Null | Kind::Timestamp
                ) {
                    self.error(
                        id,
                        format!("size() of {}", an(subject.name())),
                        "size() counts the characters of a string or the items of a list or map",
                    );
                }
                Ty::of(Kind::Int)
            }
            "int" | "getFullYear" | "getMonth" | "getDate" | "getDayOfMonth" | "getDayOfWeek" | "getDayOfYear"
            | "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds" => Ty::of(Kind::Int),
            "uint" => Ty::of(Kind::UInt),
            "double" => Ty::of(Kind::Double),
            "string" => Ty::of(Kind::Str),
            "bool" | "has" | "all" | "exists" | "exists_one" | "hasValue" => Ty::of(Kind::Bool),
            "timestamp" => Ty::of(Kind::Timestamp),
            _ => Ty::dyn_(),
        }
    }

    /// `a == b`, `a < b`: the two sides must be able to compare; literals must name real values.
    fn comparable(&mut self, id: u64, exprs: &[IdedExpr], tys: &[Ty], ordering: bool) {
        let (Some(a), Some(b)) = (tys.first(), tys.get(1)) else {
            return;
        };
        if a.kind == Kind::Dyn || b.kind == Kind::Dyn {
            return;
        }
        let ok = (a.numeric() && b.numeric())
            || (a.stringy() && b.stringy())
            || (a.kind == Kind::StrOrNull && b.kind == Kind::Null)
            || (a.kind == Kind::Null && b.kind == Kind::StrOrNull)
            || std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind);
        if !ok {
            let hint = if a.kind == Kind::Int || b.kind == Kind::Int {
                "numbers are written without quotes, e.g. `time.hour >= 9`".to_string()
            } else if a.stringy() || b.stringy() {
                "strings are quoted, e.g. `call.risk == 'HIGH'`".to_string()
            } else {
                "compare values of the same type".to_string()
            };
            self.error(
                id,
                format!("comparing {} with {}: this is never true", an(a.name()), an(b.name())),
                hint,
            );
            return;
        }
        if ordering && (a.domain == Some(Domain::Risks) || b.domain == Some(Domain::Risks)) {
            self.error(
                id,
                "risks are strings and compare as text ('LOW' > 'HIGH')".into(),
                "write `call.risk in ['HIGH', 'CRITICAL']`",
            );
            return;
        }
        if ordering && matches!(a.kind, Kind::List(_) | Kind::Map | Kind::Var(_) | Kind::Null) {
            self.error(
                id,
                format!("{} cannot be ordered", an(a.name())),
                "use `==`, `in` or size()",
            );
            return;
        }
        for (typed, other) in [(a, &exprs[1]), (b, &exprs[0])] {
            if let Some(d) = typed.domain {
                self.literal_in(d, other);
            }
        }
    }

    /// `x in list`: the right side must be a list or map, and literals must name real values.
    fn membership(&mut self, _id: u64, exprs: &[IdedExpr], tys: &[Ty]) {
        let (Some(needle), Some(hay)) = (tys.first(), tys.get(1)) else {
            return;
        };
        match &hay.kind {
            Kind::Str
            | Kind::StrOrNull
            | Kind::Int
            | Kind::UInt
            | Kind::Double
            | Kind::Bool
            | Kind::Timestamp
            | Kind::Null => {
                let hint = if hay.stringy() {
                    "for a substring, write `s.contains('x')`"
                } else {
                    "`in` looks in a list or a map"
                };
                self.error(
                    exprs[1].id,
                    format!("`in` needs a list or map on the right, but this is {}", an(hay.name())),
                    hint,
                );
            }
            Kind::List(elem) => {
                if needle.kind != Kind::Dyn
                    && elem.kind != Kind::Dyn
                    && !(needle.stringy() && elem.stringy())
                    && !(needle.numeric() && elem.numeric())
                    && needle.kind != elem.kind
                {
                    self.error(
                        exprs[0].id,
                        format!(
                            "looking for {} in a list of {}s: this is never true",
                            an(needle.name()),
                            elem.name()
                        ),
                        "compare values of the same type",
                    );
                    return;
                }
                if let Some(d) = elem.domain {
                    self.literal_in(d, &exprs[0]);
                }
                if let Some(d) = needle.domain
                    && let Expr::List(items) = &exprs[1].expr
                {
                    for item in &items.elements {
                        self.literal_in(d, item);
                    }
                }
            }
            _ => {}
        }
    }

    /// A string literal compared with a value from a known set must be in the set.
    fn literal_in(&mut self, domain: Domain, e: &IdedExpr) {
        let Expr::Literal(LiteralValue::String(s)) = &e.expr else {
            return;
        };
        let value = s.inner();
        let n = self.names;
        let (known, what, severity): (Vec<String>, &str, Severity) = match domain {
            Domain::Risks => (
                Risk::ALL.iter().map(|r| r.as_str().to_string()).collect(),
                "risk",
                Severity::Error,
            ),
            Domain::Methods => (
                GOVERNED_METHODS.iter().map(|m| m.to_string()).collect(),
                "governed method",
                Severity::Error,
            ),
            Domain::Weekdays => (
                WEEKDAYS.iter().map(|m| m.to_string()).collect(),
                "weekday",
                Severity::Error,
            ),
            Domain::Statuses => (
                SERVER_STATUSES.iter().map(|m| m.to_string()).collect(),
                "registry status",
                Severity::Error,
            ),
            Domain::Flags => (n.flags.iter().cloned().collect(), "detector flag", Severity::Error),
            Domain::Operations => (
                n.operations.iter().map(|s| s.to_string()).collect(),
                "operation",
                Severity::Error,
            ),
            Domain::Capabilities => (
                n.capabilities.iter().map(|s| s.to_string()).collect(),
                "capability granted by a role",
                Severity::Error,
            ),
            // Roles may also come from the door (a token's claims): only a warning.
            Domain::Roles => (
                n.roles.iter().map(|s| s.to_string()).collect(),
                "role defined under `roles:`",
                Severity::Warning,
            ),
        };
        if known.iter().any(|k| k == value) {
            return;
        }
        let suggestion = crate::load::closest(value, known.iter().map(String::as_str))
            .map(|s| format!("did you mean '{s}'? "))
            .unwrap_or_default();
        let hint = format!(
            "{suggestion}known: {}",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        let message = format!("'{value}' is not {}: the comparison is never true", an(what));
        self.out.push((e.id, severity, message, hint));
    }
}

/// "a string", "an int".
fn an(word: &str) -> String {
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {word}"),
        _ => format!("a {word}"),
    }
}

/// The risks a condition requires of `call.risk`, when a top-level conjunct of it is
/// `call.risk == "X"` or `call.risk in [...]`; `None` when it does not constrain the risk so.
pub(crate) fn required_risks(e: &IdedExpr) -> Option<BTreeSet<Risk>> {
    let Expr::Call(call) = &e.expr else { return None };
    let is_call_risk = |x: &IdedExpr| {
        matches!(&x.expr, Expr::Select(s) if !s.test && s.field == "risk"
            && matches!(&s.operand.expr, Expr::Ident(v) if v == "call"))
    };
    let risk_literal = |x: &IdedExpr| match &x.expr {
        Expr::Literal(LiteralValue::String(s)) => s.inner().parse::<Risk>().ok(),
        _ => None,
    };
    match (call.func_name.as_str(), call.args.as_slice()) {
        (operators::LOGICAL_AND, [a, b]) => match (required_risks(a), required_risks(b)) {
            (Some(x), Some(y)) => Some(x.intersection(&y).copied().collect()),
            (x, y) => x.or(y),
        },
        (operators::EQUALS, [a, b]) if is_call_risk(a) => risk_literal(b).map(|r| BTreeSet::from([r])),
        (operators::EQUALS, [a, b]) if is_call_risk(b) => risk_literal(a).map(|r| BTreeSet::from([r])),
        (operators::IN, [a, b]) if is_call_risk(a) => match &b.expr {
            Expr::List(l) => l.elements.iter().map(risk_literal).collect(),
            _ => None,
        },
        _ => None,
    }
}
