//! Compiled CEL conditions (`when:`) and their evaluation.

use cel::Context;

use crate::native::{self, NExpr};
use crate::vars::{CEL_ENV, Resolver, Vars};

/// A compiled condition with the text it came from.
#[derive(Debug)]
pub(crate) struct Condition {
    pub source: String,
    pub program: cel::Program,
    /// The same condition for the fast path, when it only uses what the fast path supports.
    native: Option<NExpr>,
}

/// What a condition said about a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    True,
    False,
    /// It could not be evaluated (a missing argument, a type mismatch) or was not a bool.
    Error(String),
}

impl Condition {
    pub fn new(source: String, program: cel::Program) -> Condition {
        let native = native::compile(program.expression());
        Condition {
            source,
            program,
            native,
        }
    }

    /// The risks the condition requires of `call.risk`, if it says (see [`crate::check::required_risks`]).
    pub fn required_risks(&self) -> Option<std::collections::BTreeSet<crate::model::Risk>> {
        crate::check::required_risks(self.program.expression())
    }

    /// Whether the fast path evaluates this condition (for tests and benchmarks).
    #[cfg(test)]
    pub fn is_native(&self) -> bool {
        self.native.is_some()
    }

    /// Evaluates the condition. `cel` is the interpreter's scope for this call, created on first
    /// need and shared by the call's conditions so each variable is converted at most once.
    pub fn eval<'r>(&self, vars: &Vars<'_>, cel: &mut Option<Context<'r, 'r>>, resolver: &'r Resolver<'_>) -> Outcome {
        if let Some(n) = &self.native
            && let Ok(b) = native::eval_bool(n, vars)
        {
            return if b { Outcome::True } else { Outcome::False };
        }
        let ctx = cel.get_or_insert_with(|| {
            let mut ctx = Context::with_env(CEL_ENV.clone());
            ctx.set_variable_resolver(resolver);
            ctx
        });
        self.interpret(ctx)
    }

    fn interpret(&self, ctx: &Context<'_, '_>) -> Outcome {
        match self.program.execute(ctx) {
            Ok(cel::Value::Bool(true)) => Outcome::True,
            Ok(cel::Value::Bool(false)) => Outcome::False,
            Ok(other) => Outcome::Error(format!("the condition gave {}, not a bool", describe(&other))),
            Err(e) => Outcome::Error(e.to_string()),
        }
    }
}

fn describe(v: &cel::Value) -> String {
    match v {
        cel::Value::String(s) => format!("the string {s:?}"),
        cel::Value::Int(i) => format!("the int {i}"),
        cel::Value::Null => "null".into(),
        other => format!("{other:?}").chars().take(80).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::Principal;
    use crate::model::{Risk, ToolAnnotations};
    use serde_json::json;

    fn interpret_only(c: &Condition, vars: &Vars<'_>) -> Outcome {
        let resolver = Resolver::new(*vars);
        let mut ctx = Context::with_env(CEL_ENV.clone());
        ctx.set_variable_resolver(&resolver);
        c.interpret(&ctx)
    }

    fn fast(c: &Condition, vars: &Vars<'_>) -> Outcome {
        let resolver = Resolver::new(*vars);
        let mut cel = None;
        c.eval(vars, &mut cel, &resolver)
    }

    /// Fixtures: several principals and argument shapes, so generated conditions meet strings,
    /// numbers of every kind, lists, maps, nulls and missing keys.
    #[allow(clippy::type_complexity)]
    fn scenarios() -> Vec<(
        Principal,
        serde_json::Value,
        Option<ToolAnnotations>,
        &'static [&'static str],
        Option<&'static str>,
    )> {
        let mut alice = Principal::new("alice", "jwt");
        alice.attributes.insert("department".into(), json!("finance"));
        alice.attributes.insert("level".into(), json!(3));
        alice.attributes.insert("tags".into(), json!(["a", "b"]));
        let bob = Principal::new("bob", "");
        vec![
            (
                alice.clone(),
                json!({"amount": 499, "command": "sudo rm -rf /", "host": "prod-1", "tags": ["a", 1, null], "nested": {"x": "y", "n": 2.5}}),
                Some(ToolAnnotations {
                    read_only_hint: Some(true),
                    ..Default::default()
                }),
                &["destructive-fs", "privilege-escalation"],
                Some("sudo"),
            ),
            (
                bob.clone(),
                json!({"amount": 500.5, "command": "uptime", "host": null, "tags": [], "nested": [1, 2]}),
                None,
                &[],
                None,
            ),
            (
                alice,
                json!({"amount": 18446744073709551615u64, "command": "", "tags": "x"}),
                None,
                &["force-flags"],
                Some(""),
            ),
            (bob, json!("just a string"), None, &[], None),
        ]
    }

    const ATOMS: &[&str] = &[
        "principal.id",
        "principal.roles",
        "principal.capabilities",
        "principal.attributes",
        "principal.attributes.department",
        "principal.attributes.level",
        "principal.attributes.tags",
        "principal.auth",
        "server.name",
        "server.version",
        "server.data_scope",
        "server.risk",
        "server.status",
        "resource.uri",
        "prompt.name",
        "tool.name",
        "tool.annotations",
        "tool.annotations.readOnlyHint",
        "args",
        "args.amount",
        "args.command",
        "args.host",
        "args.tags",
        "args.tags[0]",
        "args.tags[1]",
        "args.nested",
        "args.nested.x",
        "args.nested.n",
        "args['command']",
        "args.missing",
        "call.method",
        "call.risk",
        "call.flags",
        "call.flags[0]",
        "call.operation",
        "time.hour",
        "time.weekday",
        "time.minute",
        "time.date",
        "time.now",
        "request.client_name",
        "request.door",
        "request.source",
        "'finance'",
        "'alice'",
        "'HIGH'",
        "'sudo'",
        "'destructive-fs'",
        "'a'",
        "''",
        "500",
        "499",
        "0",
        "3",
        "500.0",
        "2.5",
        "500u",
        "true",
        "false",
        "null",
        "['a', 'b']",
        "['alice', 1, null]",
        "[]",
        "{'a': 1}",
        "b'x'",
    ];

    fn generated() -> Vec<String> {
        let mut out = Vec::new();
        let ops = ["==", "!=", "<", "<=", ">", ">=", "in"];
        for (i, a) in ATOMS.iter().enumerate() {
            out.push(a.to_string());
            out.push(format!("size({a})"));
            out.push(format!("{a}.size()"));
            out.push(format!("!{a}"));
            out.push(format!("has({a}.x)"));
            out.push(format!("{a}.matches('^[a-z]+$')"));
            out.push(format!("{a}.exists(e, e == 'a' || e == 1)"));
            out.push(format!("{a}.all(e, e in ['a', 'b', 'destructive-fs'])"));
            out.push(format!("{a}.exists(e, e.startsWith('d'))"));
            out.push(format!("{a}.all(e, size(e) > 1) && {a}.exists(x, x == null)"));
            out.push(format!("{a}.exists_one(e, e == 'a')"));
            out.push(format!("{a}.filter(e, e != 1).size() == 1"));
            for (j, b) in ATOMS.iter().enumerate() {
                // Every pair for the comparison operators is ~30k conditions: take a stride.
                for (k, op) in ops.iter().enumerate() {
                    if (i * 7 + j * 3 + k) % 5 == 0 {
                        out.push(format!("{a} {op} {b}"));
                    }
                }
                if (i + j) % 4 == 0 {
                    out.push(format!("{a}.contains({b})"));
                    out.push(format!("{a}.startsWith({b}) || {b}.endsWith({a})"));
                    out.push(format!("({a} == {b}) && !({b} in {a})"));
                    out.push(format!("{a} == {b} ? {a} : {b}"));
                    out.push(format!("{a}[{b}] == 1 || has({a}.department)"));
                }
            }
        }
        out
    }

    #[test]
    fn the_fast_path_agrees_with_the_interpreter() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-02T09:30:00+01:00").unwrap();
        let mut compared = 0;
        let mut native_ok = 0;
        for (principal, args, annotations, flags, operation) in scenarios() {
            let vars = Vars {
                principal: &principal,
                roles: &["operator", "user"],
                capabilities: &["ssh-linux"],
                policy_attributes: None,
                server: "it-ops",
                server_version: Some("1.2.0"),
                server_data_scope: None,
                server_risk: Some(Risk::High),
                server_status: Some("approved"),
                tool: "ssh-exec",
                resource_uri: None,
                prompt_name: Some("p"),
                annotations: annotations.as_ref(),
                args: &args,
                method: "tools/call",
                risk: Risk::High,
                flags,
                operation,
                now,
                client_name: Some("claude-code"),
                client_version: None,
                door: "proxy",
                source: None,
            };
            for src in generated() {
                let Ok(program) = cel::Program::compile(&src) else {
                    continue;
                };
                let c = Condition::new(src.clone(), program);
                if !c.is_native() {
                    continue;
                }
                if native::eval_bool(c.native.as_ref().unwrap(), &vars).is_ok() {
                    native_ok += 1;
                }
                let (a, b) = (fast(&c, &vars), interpret_only(&c, &vars));
                let same = matches!(
                    (&a, &b),
                    (Outcome::True, Outcome::True)
                        | (Outcome::False, Outcome::False)
                        | (Outcome::Error(_), Outcome::Error(_))
                );
                assert!(same, "{src}: fast path {a:?}, interpreter {b:?} (args {args})");
                compared += 1;
            }
        }
        assert!(compared > 5000, "only {compared} conditions compared");
        assert!(native_ok > 1000, "the fast path decided only {native_ok}");
    }

    #[test]
    fn common_conditions_take_the_fast_path() {
        for src in [
            "principal.attributes.department == 'finance'",
            "'admin' in principal.roles",
            "args.amount < 500",
            "call.risk in ['HIGH', 'CRITICAL'] && !('local-sudo' in principal.capabilities)",
            "args.command.matches('^sudo\\\\b')",
            "has(args.host) && args.host.startsWith('prod-')",
            "time.hour >= 9 && time.hour < 18 && !(time.weekday in ['Sat', 'Sun'])",
            "request.client_name == 'claude-code'",
            "size(args.command) > 100",
            "call.flags.exists(f, f in ['destructive-fs', 'disk'])",
            "principal.roles.all(r, r != 'guest')",
        ] {
            let c = Condition::new(src.into(), cel::Program::compile(src).unwrap());
            assert!(c.is_native(), "{src}");
        }
    }
}
