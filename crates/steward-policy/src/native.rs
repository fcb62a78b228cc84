//! A fast path for the common shape of conditions: field reads, literals, comparisons, `in`,
//! `&&`/`||`/`!`, `size`, `contains`/`startsWith`/`endsWith`, `matches` with a literal pattern
//! and `has()`, evaluated straight from the call's data.
//!
//! The `cel` interpreter costs ~0.5–1 µs per condition (name resolution, boxing); this costs tens
//! of nanoseconds. It never decides on its own where it is unsure: whatever it does not support
//! (a construct at compile time; an error, a mixed-type comparison or a list equality at run time)
//! is handed to `cel`, so the result is always the interpreter's. `cond::tests` checks the two
//! agree on thousands of generated conditions.

use std::borrow::Cow;

use cel::common::ast::{Expr, IdedExpr, LiteralValue, operators};

use crate::vars::{Vars, annotation_entries};

/// A condition compiled for the fast path.
#[derive(Debug)]
pub(crate) enum NExpr {
    Lit(Lit),
    List(Vec<NExpr>),
    Var(Var),
    Select(Box<NExpr>, String),
    Has(Box<NExpr>, String),
    Index(Box<NExpr>, Box<NExpr>),
    Not(Box<NExpr>),
    And(Box<NExpr>, Box<NExpr>),
    Or(Box<NExpr>, Box<NExpr>),
    Cond(Box<NExpr>, Box<NExpr>, Box<NExpr>),
    Cmp(Cmp, Box<NExpr>, Box<NExpr>),
    In(Box<NExpr>, Box<NExpr>),
    Size(Box<NExpr>),
    Str(StrOp, Box<NExpr>, Box<NExpr>),
    Matches(Box<NExpr>, regex::Regex),
    /// A comprehension variable (`x` in `list.exists(x, …)`, the accumulator), by slot.
    Local(usize),
    /// A field of a fixed-shape variable (`principal.id`, `call.risk`), resolved at compile time.
    Field(Var, &'static str),
    /// `@not_strictly_false(x)`: the loop condition of `all`/`exists`.
    NotStrictlyFalse(Box<NExpr>),
    /// `all`/`exists` and their kin: a fold over a list.
    Fold(Box<Fold>),
}

#[derive(Debug)]
pub(crate) struct Fold {
    range: NExpr,
    init: NExpr,
    cond: NExpr,
    step: NExpr,
    result: NExpr,
}

#[derive(Debug)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    Principal,
    Server,
    Tool,
    Args,
    Call,
    Time,
    Request,
    Resource,
    Prompt,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum StrOp {
    Contains,
    StartsWith,
    EndsWith,
}

/// Compiles a parsed condition for the fast path, or `None` when it uses anything else.
pub(crate) fn compile(e: &IdedExpr) -> Option<NExpr> {
    compile_in(e, &mut Vec::new())
}

/// `scope`: the comprehension variables in force, their slot being their index.
fn compile_in(e: &IdedExpr, scope: &mut Vec<String>) -> Option<NExpr> {
    Some(match &e.expr {
        Expr::Literal(l) => NExpr::Lit(match l {
            LiteralValue::Null => Lit::Null,
            LiteralValue::Boolean(b) => Lit::Bool(*b.inner()),
            LiteralValue::Int(i) => Lit::Int(*i.inner()),
            LiteralValue::UInt(u) => Lit::UInt(*u.inner()),
            LiteralValue::Double(d) => Lit::Double(*d.inner()),
            LiteralValue::String(s) => Lit::Str(s.inner().to_string()),
            LiteralValue::Bytes(_) => return None,
        }),
        Expr::List(list) => NExpr::List(
            list.elements
                .iter()
                .map(|x| compile_in(x, scope))
                .collect::<Option<Vec<_>>>()?,
        ),
        Expr::Ident(name) if scope.contains(name) => NExpr::Local(scope.iter().rposition(|v| v == name)?),
        Expr::Ident(name) => NExpr::Var(match name.as_str() {
            "principal" => Var::Principal,
            "server" => Var::Server,
            "tool" => Var::Tool,
            "args" => Var::Args,
            "call" => Var::Call,
            "time" => Var::Time,
            "request" => Var::Request,
            "resource" => Var::Resource,
            "prompt" => Var::Prompt,
            _ => return None,
        }),
        Expr::Select(sel)
            if !sel.test
                && let Expr::Ident(name) = &sel.operand.expr
                && !scope.contains(name)
                && let Some(fields) = crate::vars::fields_of(name)
                && let Some(field) = fields.iter().find(|f| **f == sel.field) =>
        {
            let var = match compile_in(&sel.operand, scope)? {
                NExpr::Var(var) => var,
                _ => return None,
            };
            NExpr::Field(var, field)
        }
        Expr::Select(sel) => {
            let operand = Box::new(compile_in(&sel.operand, scope)?);
            if sel.test {
                NExpr::Has(operand, sel.field.clone())
            } else {
                NExpr::Select(operand, sel.field.clone())
            }
        }
        Expr::Call(call) => {
            let args = &call.args;
            let mut pair = || -> Option<(Box<NExpr>, Box<NExpr>)> {
                if args.len() == 2 && call.target.is_none() {
                    Some((
                        Box::new(compile_in(&args[0], scope)?),
                        Box::new(compile_in(&args[1], scope)?),
                    ))
                } else {
                    None
                }
            };
            let mut pairs = |f: &dyn Fn(Box<NExpr>, Box<NExpr>) -> NExpr| pair().map(|(a, b)| f(a, b));
            let cmp = |c: Cmp| move |a, b| NExpr::Cmp(c, a, b);
            match call.func_name.as_str() {
                operators::LOGICAL_AND => pairs(&NExpr::And)?,
                operators::LOGICAL_OR => pairs(&NExpr::Or)?,
                operators::EQUALS => pairs(&cmp(Cmp::Eq))?,
                operators::NOT_EQUALS => pairs(&cmp(Cmp::Ne))?,
                operators::LESS => pairs(&cmp(Cmp::Lt))?,
                operators::LESS_EQUALS => pairs(&cmp(Cmp::Le))?,
                operators::GREATER => pairs(&cmp(Cmp::Gt))?,
                operators::GREATER_EQUALS => pairs(&cmp(Cmp::Ge))?,
                operators::IN => pairs(&NExpr::In)?,
                operators::INDEX => pairs(&NExpr::Index)?,
                operators::LOGICAL_NOT if args.len() == 1 && call.target.is_none() => {
                    NExpr::Not(Box::new(compile_in(&args[0], scope)?))
                }
                operators::NOT_STRICTLY_FALSE if args.len() == 1 && call.target.is_none() => {
                    NExpr::NotStrictlyFalse(Box::new(compile_in(&args[0], scope)?))
                }
                operators::CONDITIONAL if args.len() == 3 && call.target.is_none() => NExpr::Cond(
                    Box::new(compile_in(&args[0], scope)?),
                    Box::new(compile_in(&args[1], scope)?),
                    Box::new(compile_in(&args[2], scope)?),
                ),
                "size" => match (&call.target, args.len()) {
                    (None, 1) => NExpr::Size(Box::new(compile_in(&args[0], scope)?)),
                    (Some(t), 0) => NExpr::Size(Box::new(compile_in(t, scope)?)),
                    _ => return None,
                },
                name @ ("contains" | "startsWith" | "endsWith") => {
                    let (Some(t), 1) = (&call.target, args.len()) else {
                        return None;
                    };
                    let op = match name {
                        "contains" => StrOp::Contains,
                        "startsWith" => StrOp::StartsWith,
                        _ => StrOp::EndsWith,
                    };
                    NExpr::Str(
                        op,
                        Box::new(compile_in(t, scope)?),
                        Box::new(compile_in(&args[0], scope)?),
                    )
                }
                "matches" => {
                    let (subject, pattern) = match (&call.target, args.len()) {
                        (Some(t), 1) => (t.as_ref(), &args[0]),
                        (None, 2) => (&args[0], &args[1]),
                        _ => return None,
                    };
                    let Expr::Literal(LiteralValue::String(p)) = &pattern.expr else {
                        return None;
                    };
                    let re = regex::Regex::new(p.inner()).ok()?;
                    NExpr::Matches(Box::new(compile_in(subject, scope)?), re)
                }
                _ => return None,
            }
        }
        Expr::Comprehension(c) if c.iter_var2.is_none() => {
            let range = compile_in(&c.iter_range, scope)?;
            let init = compile_in(&c.accu_init, scope)?;
            let depth = scope.len();
            scope.push(c.iter_var.clone());
            scope.push(c.accu_var.clone());
            let body = (|| {
                Some((
                    compile_in(&c.loop_cond, scope)?,
                    compile_in(&c.loop_step, scope)?,
                    compile_in(&c.result, scope)?,
                ))
            })();
            scope.truncate(depth);
            let (cond, step, result) = body?;
            NExpr::Fold(Box::new(Fold {
                range,
                init,
                cond,
                step,
                result,
            }))
        }
        _ => return None,
    })
}

/// The fast path could not decide: let the interpreter do it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Unsupported;

type R<T> = Result<T, Unsupported>;

/// A value during fast evaluation.
#[derive(Debug, Clone)]
pub(crate) enum V<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Double(f64),
    Str(Cow<'a, str>),
    /// A JSON array or object from the arguments or the principal's attributes.
    Json(&'a serde_json::Value),
    Strs(&'a [&'a str]),
    ListLit(&'a [NExpr]),
    Var(Var),
    Attributes,
    Annotations,
    Timestamp,
}

fn from_json(v: &serde_json::Value) -> V<'_> {
    match v {
        serde_json::Value::Null => V::Null,
        serde_json::Value::Bool(b) => V::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                V::Int(i)
            } else if let Some(u) = n.as_u64() {
                V::UInt(u)
            } else {
                n.as_f64().map(V::Double).unwrap_or(V::Null)
            }
        }
        serde_json::Value::String(s) => V::Str(Cow::Borrowed(s)),
        other => V::Json(other),
    }
}

fn opt(s: Option<&str>) -> V<'_> {
    s.map(|s| V::Str(Cow::Borrowed(s))).unwrap_or(V::Null)
}

/// Evaluates a condition: `Ok(bool)` when the fast path is sure, else [`Unsupported`].
pub(crate) fn eval_bool(e: &NExpr, vars: &Vars<'_>) -> R<bool> {
    boolean(e, vars, &mut Vec::new())
}

/// Comprehension variables in force, by slot.
type Locals<'a> = Vec<V<'a>>;

fn boolean<'a>(e: &'a NExpr, v: &Vars<'a>, l: &mut Locals<'a>) -> R<bool> {
    match eval(e, v, l)? {
        V::Bool(b) => Ok(b),
        _ => Err(Unsupported),
    }
}

fn eval<'a>(e: &'a NExpr, v: &Vars<'a>, l: &mut Locals<'a>) -> R<V<'a>> {
    Ok(match e {
        NExpr::Lit(l) => match l {
            Lit::Null => V::Null,
            Lit::Bool(b) => V::Bool(*b),
            Lit::Int(i) => V::Int(*i),
            Lit::UInt(u) => V::UInt(*u),
            Lit::Double(d) => V::Double(*d),
            Lit::Str(s) => V::Str(Cow::Borrowed(s)),
        },
        NExpr::List(items) => V::ListLit(items),
        NExpr::Var(Var::Args) => from_json(v.args),
        NExpr::Var(var) => V::Var(*var),
        NExpr::Select(operand, field) => select(eval(operand, v, l)?, field, v)?,
        NExpr::Has(operand, field) => V::Bool(has(eval(operand, v, l)?, field, v)?),
        NExpr::Index(operand, index) => {
            let target = eval(operand, v, l)?;
            match (target, eval(index, v, l)?) {
                (V::Json(serde_json::Value::Array(a)), V::Int(i)) => {
                    from_json(usize::try_from(i).ok().and_then(|i| a.get(i)).ok_or(Unsupported)?)
                }
                (V::Strs(s), V::Int(i)) => V::Str(Cow::Borrowed(
                    usize::try_from(i).ok().and_then(|i| s.get(i)).ok_or(Unsupported)?,
                )),
                (target, V::Str(key)) => select(target, &key, v)?,
                _ => return Err(Unsupported),
            }
        }
        NExpr::Not(x) => match eval(x, v, l)? {
            V::Bool(b) => V::Bool(!b),
            _ => return Err(Unsupported),
        },
        NExpr::And(a, b) => match eval(a, v, l)? {
            V::Bool(false) => V::Bool(false),
            V::Bool(true) => V::Bool(boolean(b, v, l)?),
            _ => return Err(Unsupported),
        },
        NExpr::Or(a, b) => match eval(a, v, l)? {
            V::Bool(true) => V::Bool(true),
            V::Bool(false) => V::Bool(boolean(b, v, l)?),
            _ => return Err(Unsupported),
        },
        NExpr::Cond(c, a, b) => match eval(c, v, l)? {
            V::Bool(true) => eval(a, v, l)?,
            V::Bool(false) => eval(b, v, l)?,
            _ => return Err(Unsupported),
        },
        NExpr::Cmp(op, a, b) => {
            let (a, b) = (eval(a, v, l)?, eval(b, v, l)?);
            V::Bool(match op {
                Cmp::Eq => equal(&a, &b)?,
                Cmp::Ne => !equal(&a, &b)?,
                Cmp::Lt => order(&a, &b)?.is_lt(),
                Cmp::Le => order(&a, &b)?.is_le(),
                Cmp::Gt => order(&a, &b)?.is_gt(),
                Cmp::Ge => order(&a, &b)?.is_ge(),
            })
        }
        NExpr::In(needle, haystack) => {
            let needle = eval(needle, v, l)?;
            {
                let hay = eval(haystack, v, l)?;
                V::Bool(contains(&needle, hay, v, l)?)
            }
        }
        NExpr::Size(x) => V::Int(match eval(x, v, l)? {
            V::Str(s) => s.chars().count() as i64,
            V::Json(serde_json::Value::Array(a)) => a.len() as i64,
            V::Json(serde_json::Value::Object(o)) => o.len() as i64,
            V::Strs(s) => s.len() as i64,
            V::ListLit(items) => items.len() as i64,
            _ => return Err(Unsupported),
        }),
        NExpr::Str(op, target, arg) => match (eval(target, v, l)?, eval(arg, v, l)?) {
            (V::Str(s), V::Str(x)) => V::Bool(match op {
                StrOp::Contains => s.contains(x.as_ref()),
                StrOp::StartsWith => s.starts_with(x.as_ref()),
                StrOp::EndsWith => s.ends_with(x.as_ref()),
            }),
            _ => return Err(Unsupported),
        },
        NExpr::Matches(subject, re) => match eval(subject, v, l)? {
            V::Str(s) => V::Bool(re.is_match(&s)),
            _ => return Err(Unsupported),
        },
        NExpr::Local(slot) => l.get(*slot).cloned().ok_or(Unsupported)?,
        NExpr::Field(var, field) => select(V::Var(*var), field, v)?,
        NExpr::NotStrictlyFalse(x) => V::Bool(boolean(x, v, l)?),
        NExpr::Fold(f) => fold(f, v, l)?,
    })
}

fn select<'a>(target: V<'a>, field: &str, v: &Vars<'a>) -> R<V<'a>> {
    Ok(match target {
        V::Json(serde_json::Value::Object(o)) => from_json(o.get(field).ok_or(Unsupported)?),
        V::Attributes => from_json(v.attribute(field).ok_or(Unsupported)?),
        V::Annotations => V::Bool(
            annotation_entries(v.annotations)
                .find(|(k, _)| *k == field)
                .ok_or(Unsupported)?
                .1,
        ),
        V::Var(var) => match (var, field) {
            (Var::Principal, "id") => V::Str(Cow::Borrowed(&v.principal.id)),
            (Var::Principal, "roles") => V::Strs(v.roles),
            (Var::Principal, "capabilities") => V::Strs(v.capabilities),
            (Var::Principal, "attributes") => V::Attributes,
            (Var::Principal, "auth") => V::Str(Cow::Borrowed(&v.principal.auth)),
            (Var::Server, "name") => V::Str(Cow::Borrowed(v.server)),
            (Var::Server, "version") => opt(v.server_version),
            (Var::Server, "data_scope") => opt(v.server_data_scope),
            (Var::Server, "risk") => opt(v.server_risk.map(|r| r.as_str())),
            (Var::Server, "status") => opt(v.server_status),
            (Var::Tool, "name") => V::Str(Cow::Borrowed(v.tool)),
            (Var::Tool, "annotations") => V::Annotations,
            (Var::Call, "method") => V::Str(Cow::Borrowed(v.method)),
            (Var::Call, "risk") => V::Str(Cow::Borrowed(v.risk.as_str())),
            (Var::Call, "flags") => V::Strs(v.flags),
            (Var::Call, "operation") => opt(v.operation),
            (Var::Time, "now") => V::Timestamp,
            (Var::Time, "hour") => V::Int(v.hour()),
            (Var::Time, "minute") => V::Int(v.minute()),
            (Var::Time, "weekday") => V::Str(Cow::Borrowed(v.weekday())),
            (Var::Time, "date") => V::Str(Cow::Owned(v.date())),
            (Var::Request, "client_name") => opt(v.client_name),
            (Var::Request, "client_version") => opt(v.client_version),
            (Var::Request, "door") => V::Str(Cow::Borrowed(v.door)),
            (Var::Request, "source") => opt(v.source),
            (Var::Resource, "uri") => opt(v.resource_uri),
            (Var::Prompt, "name") => opt(v.prompt_name),
            _ => return Err(Unsupported),
        },
        _ => return Err(Unsupported),
    })
}

fn has(target: V<'_>, field: &str, v: &Vars<'_>) -> R<bool> {
    Ok(match target {
        V::Json(serde_json::Value::Object(o)) => o.contains_key(field),
        V::Attributes => v.has_attribute(field),
        V::Annotations => annotation_entries(v.annotations).any(|(k, _)| k == field),
        V::Var(var) if var != Var::Args => {
            let name = match var {
                Var::Principal => "principal",
                Var::Server => "server",
                Var::Tool => "tool",
                Var::Call => "call",
                Var::Time => "time",
                Var::Request => "request",
                Var::Resource => "resource",
                Var::Prompt => "prompt",
                Var::Args => "args",
            };
            crate::vars::fields_of(name).is_some_and(|f| f.contains(&field))
        }
        _ => return Err(Unsupported),
    })
}

/// CEL equality for the values the fast path is sure about: same-kind scalars compare, different
/// non-numeric kinds are unequal; mixed numbers, lists and maps go to the interpreter.
fn equal(a: &V<'_>, b: &V<'_>) -> R<bool> {
    use V::*;
    Ok(match (a, b) {
        (Null, Null) => true,
        (Bool(x), Bool(y)) => x == y,
        (Int(x), Int(y)) => x == y,
        (UInt(x), UInt(y)) => x == y,
        (Double(x), Double(y)) => x == y,
        (Str(x), Str(y)) => x == y,
        (Int(_) | UInt(_) | Double(_), Int(_) | UInt(_) | Double(_)) => return Err(Unsupported),
        (
            Null | Bool(_) | Int(_) | UInt(_) | Double(_) | Str(_),
            Null | Bool(_) | Int(_) | UInt(_) | Double(_) | Str(_),
        ) => false,
        _ => return Err(Unsupported),
    })
}

fn order(a: &V<'_>, b: &V<'_>) -> R<std::cmp::Ordering> {
    use V::*;
    match (a, b) {
        (Bool(x), Bool(y)) => Ok(x.cmp(y)),
        (Int(x), Int(y)) => Ok(x.cmp(y)),
        (UInt(x), UInt(y)) => Ok(x.cmp(y)),
        (Double(x), Double(y)) => x.partial_cmp(y).ok_or(Unsupported),
        (Str(x), Str(y)) => Ok(x.cmp(y)),
        _ => Err(Unsupported),
    }
}

/// Calls `f` on each item of a list until it returns `Some`; `Unsupported` for anything that is
/// not a list (maps included: their iteration order is the interpreter's hash order).
fn each<'a, T>(
    list: &V<'a>,
    v: &Vars<'a>,
    l: &mut Locals<'a>,
    mut f: impl FnMut(V<'a>, &mut Locals<'a>) -> R<Option<T>>,
) -> R<Option<T>> {
    match list {
        V::Strs(s) => {
            for x in s.iter() {
                if let Some(t) = f(V::Str(Cow::Borrowed(*x)), l)? {
                    return Ok(Some(t));
                }
            }
        }
        V::ListLit(items) => {
            for x in items.iter() {
                let item = eval(x, v, l)?;
                if let Some(t) = f(item, l)? {
                    return Ok(Some(t));
                }
            }
        }
        V::Json(serde_json::Value::Array(a)) => {
            for x in a {
                if let Some(t) = f(from_json(x), l)? {
                    return Ok(Some(t));
                }
            }
        }
        _ => return Err(Unsupported),
    }
    Ok(None)
}

/// A comprehension, as the interpreter runs it: check the condition, bind the item, step.
fn fold<'a>(f: &'a Fold, v: &Vars<'a>, l: &mut Locals<'a>) -> R<V<'a>> {
    let range = eval(&f.range, v, l)?;
    let accu = eval(&f.init, v, l)?;
    let base = l.len();
    l.push(V::Null);
    l.push(accu);
    let result = each(&range, v, l, |item, l| {
        if !boolean(&f.cond, v, l)? {
            return Ok(Some(()));
        }
        l[base] = item;
        l[base + 1] = eval(&f.step, v, l)?;
        Ok(None)
    })
    .and_then(|_| eval(&f.result, v, l));
    l.truncate(base);
    result
}

fn contains<'a>(needle: &V<'a>, haystack: V<'a>, v: &Vars<'a>, l: &mut Locals<'a>) -> R<bool> {
    match haystack {
        V::Strs(_) | V::ListLit(_) | V::Json(serde_json::Value::Array(_)) => {
            Ok(each(&haystack, v, l, |item, _| Ok(equal(needle, &item)?.then_some(())))?.is_some())
        }
        V::Json(serde_json::Value::Object(o)) => match needle {
            V::Str(k) => Ok(o.contains_key(k.as_ref())),
            _ => Err(Unsupported),
        },
        V::Attributes => match needle {
            V::Str(k) => Ok(v.has_attribute(k)),
            _ => Err(Unsupported),
        },
        V::Annotations | V::Var(_) => match needle {
            V::Str(k) => has(haystack, k, v),
            _ => Err(Unsupported),
        },
        _ => Err(Unsupported),
    }
}
