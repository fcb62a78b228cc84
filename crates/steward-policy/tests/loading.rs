//! Strict loading: every mistake is reported with its place and a hint, and a policy with an
//! error never loads.

use steward_policy::{Diagnostic, Policy, Severity};

fn findings(yaml: &str) -> Vec<Diagnostic> {
    Policy::check_yaml(yaml, "p.yaml")
}

/// The single finding at `line`, which must say `says`.
fn at(yaml: &str, line: u64, says: &str) -> Diagnostic {
    let all = findings(yaml);
    let found: Vec<&Diagnostic> = all
        .iter()
        .filter(|d| d.line == line && d.message.contains(says))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one finding at line {line} saying {says:?}, got {all:#?}"
    );
    found[0].clone()
}

fn assert_rejected(yaml: &str) {
    assert!(Policy::from_yaml(yaml, "p.yaml").is_err(), "should not load:\n{yaml}");
}

#[test]
fn cel_syntax_errors_point_into_the_expression() {
    let yaml = "version: 1\nrules:\n  - id: r\n    when: 'args.x ==== 1'\n    effect: deny\n";
    let d = at(yaml, 4, "CEL syntax error");
    assert_eq!((d.severity, d.column), (Severity::Error, 21));
    assert!(d.hint.unwrap().contains("CEL"));
    assert_rejected(yaml);
}

#[test]
fn unknown_variables_fields_and_functions() {
    let yaml = "version: 1\nrules:\n  - id: r\n    when: 'user.name == \"x\" || principal.nme == \"y\" || frobnicate(args.x)'\n    effect: deny\n";
    let d = at(yaml, 4, "unknown variable 'user'");
    assert_eq!(d.column, 12);
    assert!(
        d.hint
            .unwrap()
            .contains("principal, server, tool, args, call, time, request")
    );
    let d = at(yaml, 4, "'principal' has no field 'nme'");
    assert!(d.hint.unwrap().contains("id, roles, capabilities, attributes, auth"));
    at(yaml, 4, "unknown function 'frobnicate'");
    assert_rejected(yaml);
}

#[test]
fn unknown_keys_get_a_did_you_mean() {
    let yaml = "version: 1\nrules:\n  - id: r\n    whn: 'true'\n    effect: deny\n";
    let d = at(yaml, 4, "unknown field `whn`");
    assert_eq!(d.column, 5);
    assert!(d.hint.unwrap().starts_with("did you mean `when`?"));
    let d = at("version: 1\ndefualt: allow\n", 2, "unknown field `defualt`");
    assert!(d.hint.unwrap().contains("`default`"));
}

#[test]
fn rules_that_can_never_match_a_listed_server() {
    let yaml = "version: 1\nservers:\n  it-ops: { tools: [ssh-exec, system-overview] }\n  db: {}\nrules:\n  - id: typo\n    match: it-ops/ssh-exc\n    effect: deny\n  - id: unknown-server\n    match: crm/*\n    effect: deny\n  - id: fine\n    match: [it-ops/ssh-*, 'db/anything', '*/system-overview']\n    effect: deny\n";
    let d = at(
        yaml,
        7,
        "can never match: server 'it-ops' has no tool matching 'ssh-exc'",
    );
    assert_eq!(d.column, 12);
    assert!(d.hint.unwrap().contains("did you mean 'it-ops/ssh-exec'?"));
    let d = at(yaml, 10, "no server of the `servers:` inventory matches");
    assert!(d.hint.unwrap().contains("it-ops"));
    assert_eq!(findings(yaml).len(), 2, "{:#?}", findings(yaml));
    assert_rejected(yaml);
    // Tools entries too: a classification that matches nothing hides a missing `requires`.
    let yaml = "version: 1\nservers: { s: { tools: [a] } }\ntools:\n  - match: s/b\n    risk: LOW\n";
    at(yaml, 4, "tools entry 's/b' can never match");
}

#[test]
fn duplicate_ids_and_names() {
    let yaml = "version: 1\nrules:\n  - id: r\n    effect: deny\n  - id: r\n    effect: allow\n";
    let d = at(yaml, 5, "duplicate rule id 'r'");
    assert_eq!(d.column, 9);
    let yaml = "version: 1\ntools:\n  - match: s/t\n    operations:\n      - { name: a, when: 'true' }\n      - { name: a, when: 'false' }\n";
    at(yaml, 6, "duplicate operation name 'a'");
    let yaml = "version: 1\ndetectors:\n  custom:\n    - { name: x, words: [a] }\n    - { name: x, words: [b] }\n";
    at(yaml, 5, "duplicate detector name 'x'");
    let yaml = "version: 1\nroles: { a: [x] }\nroles: { b: [y] }\n";
    at(yaml, 3, "duplicate");
}

#[test]
fn type_errors_that_can_be_seen() {
    let yaml = "version: 1\nrules:\n  - id: r\n    when: 'time.hour == \"9\"'\n    effect: deny\n  - id: s\n    when: 'call.risk == 3'\n    effect: deny\n  - id: t\n    when: 'call.risk > \"HIGH\"'\n    effect: deny\n  - id: u\n    when: 'principal.roles.contains(\"admin\")'\n    effect: deny\n  - id: v\n    when: '\"x\" in principal.id'\n    effect: deny\n  - id: w\n    when: 'principal.id'\n    effect: deny\n";
    at(yaml, 4, "comparing an int with a string");
    at(yaml, 7, "comparing a string with an int");
    at(yaml, 10, "risks are strings and compare as text");
    let d = at(yaml, 13, "contains() on a list");
    assert!(d.hint.unwrap().contains("'x' in list"));
    at(yaml, 16, "`in` needs a list or map on the right");
    at(yaml, 19, "a condition must be a bool");
}

#[test]
fn names_that_do_not_exist() {
    let yaml = "version: 1\nroles: { admin: [sudo] }\ntools:\n  - match: s/t\n    operations: [{ name: sudo, when: 'true' }]\nrules:\n  - id: r\n    when: 'call.risk == \"HGH\" || \"destructive-f\" in call.flags || call.operation == \"sudoo\" || \"sudoo\" in principal.capabilities || time.weekday == \"Monday\" || call.method == \"tools/cal\"'\n    effect: deny\n  - id: s\n    when: '\"admn\" in principal.roles'\n    effect: allow\n";
    assert!(
        at(yaml, 8, "'HGH' is not a risk")
            .hint
            .unwrap()
            .contains("did you mean 'HIGH'?")
    );
    assert!(
        at(yaml, 8, "'destructive-f' is not a detector flag")
            .hint
            .unwrap()
            .contains("did you mean 'destructive-fs'?")
    );
    at(yaml, 8, "'sudoo' is not an operation");
    at(yaml, 8, "'sudoo' is not a capability");
    at(yaml, 8, "'Monday' is not a weekday");
    at(yaml, 8, "'tools/cal' is not a governed method");
    // Roles may come from a token: a warning only.
    let d = at(yaml, 11, "'admn' is not a role");
    assert_eq!(d.severity, Severity::Warning);
}

#[test]
fn other_mistakes() {
    at("version: 2\n", 1, "unsupported policy version 2");
    at("version: 1\ntimezone: Mars/Olympus\n", 2, "unknown time zone");
    at(
        "version: 1\nprincipals: { a: { roles: [ghost] } }\n",
        2,
        "role 'ghost' which is not defined",
    );
    at(
        "version: 1\nrules:\n  - { id: r, method: tools/cal, effect: deny }\n",
        3,
        "'tools/cal' is not a governed method",
    );
    at(
        "version: 1\nrules:\n  - { id: r, effect: approve, approvers: { roles: [ghost] } }\n",
        3,
        "role 'ghost'",
    );
    at(
        "version: 1\ndetectors: { builtin: [disk, fs] }\n",
        2,
        "unknown detector set 'fs'",
    );
    at(
        "version: 1\ndetectors:\n  custom:\n    - name: x\n      regex: ['ok', '(unclosed']\n",
        5,
        "invalid regular expression in detector 'x'",
    );
    at(
        "version: 1\nrules:\n  - id: r\n    when: 'args.x.matches(\"[a-\")'\n    effect: deny\n",
        4,
        "invalid regular expression",
    );
    at(
        "version: 1\ntools:\n  - match: s/t\n    operations:\n      - { name: all }\n      - { name: never, when: 'true' }\n",
        6,
        "can never match: 'all' before it has no `when`",
    );
    at(
        "version: 1\ntools:\n  - match: s/t\n    operations: [{ name: o, when: 'call.operation == \"o\"' }]\n",
        4,
        "call.operation is always null",
    );
}

#[test]
fn warnings_do_not_block_loading() {
    let yaml = "version: 1\ntools:\n  - { match: '*/*', requires: [nobody-has-this] }\n  - { match: s/t, risk: LOW }\nrules:\n  - { id: r, when: 'false', effect: deny }\n  - { id: s, method: tools/list, effect: allow }\n  - { id: t, effect: allow, approvers: { roles: [] } }\n";
    let all = findings(yaml);
    assert!(all.iter().all(|d| d.severity == Severity::Warning), "{all:#?}");
    for says in [
        "no role grants it",
        "never used",
        "always false",
        "has no effect",
        "approvers only matter",
    ] {
        assert!(
            all.iter()
                .any(|d| d.message.contains(says) || d.hint.as_deref().unwrap_or("").contains(says)),
            "{says}: {all:#?}"
        );
    }
    assert!(Policy::from_yaml(yaml, "p.yaml").is_ok());
}

#[test]
fn the_version_is_a_hash_of_the_text() {
    let a = Policy::from_yaml("version: 1\n", "a").unwrap();
    let b = Policy::from_yaml("version: 1\n", "b").unwrap();
    let c = Policy::from_yaml("version: 1\ndefault: allow\n", "c").unwrap();
    assert_eq!(a.version(), b.version());
    assert_ne!(a.version(), c.version());
    assert_eq!(a.version().len(), 16);
}

#[test]
fn the_examples_load_without_findings() {
    for file in [
        "../../examples/it-ops/policy.yaml",
        "../../examples/expenses/policy.yaml",
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(Policy::check_yaml(&text, file), vec![], "{file}");
    }
}

fn warnings(yaml: &str) -> Vec<String> {
    findings(yaml)
        .into_iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.message)
        .collect()
}

#[test]
fn risk_effects_and_rules_that_the_decision_order_never_reaches_are_warned_about() {
    // The policy: `default: deny` decides unknown tools, so LOW and MEDIUM never decide.
    let w = warnings(
        "version: 1\ndefault: deny\nrisk_effects: { LOW: allow, MEDIUM: allow }\nrules:\n  - {id: crm, match: 'crm/*', effect: allow}\n",
    );
    assert!(
        w.iter()
            .any(|m| m.starts_with("risk_effects.LOW (allow) never decides")),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|m| m.starts_with("risk_effects.MEDIUM (allow) never decides") && m.contains("`default: deny` wins")),
        "{w:?}"
    );
    // Classifying the tools makes them reachable.
    let w = warnings(
        "version: 1\ndefault: deny\ntools:\n  - {match: 'crm/*', risk: LOW}\n  - {match: 'db/*'}\nrisk_effects: { LOW: allow, MEDIUM: allow, HIGH: approve }\n",
    );
    assert!(w.is_empty(), "{w:?}");
    // A stricter risk effect still decides raised unclassified calls.
    let w = warnings(
        "version: 1\ndefault: allow\nrisk_effects: { MEDIUM: allow, HIGH: approve_if_dangerous, CRITICAL: deny }\n",
    );
    assert!(w.is_empty(), "{w:?}");
    // A rule that needs a LOW tool call, where nothing is LOW.
    let w = warnings(
        "version: 1\ndefault: deny\nrules:\n  - {id: read-only, when: 'call.risk == \"LOW\" && has(args.x)', effect: allow}\n  - {id: fine, when: 'call.risk in [\"LOW\", \"HIGH\"]', effect: approve}\n  - {id: reads, method: resources/read, when: 'call.risk == \"LOW\"', effect: allow}\n",
    );
    assert_eq!(
        w.iter().filter(|m| m.contains("can never fire")).collect::<Vec<_>>(),
        vec!["rule 'read-only' can never fire: it needs call.risk in [LOW], which no call it covers can have"],
        "{w:?}"
    );
}

#[test]
fn the_baseline_and_the_examples_load_without_warnings() {
    for (name, text) in [
        ("baseline", steward_policy::BASELINE_POLICY_YAML),
        ("it-ops", include_str!("../../../examples/it-ops/policy.yaml")),
        ("expenses", include_str!("../../../examples/expenses/policy.yaml")),
    ] {
        let all = Policy::check_yaml(text, name);
        assert!(all.is_empty(), "{name}: {all:#?}");
    }
}

#[test]
fn principals_may_be_marked_as_agents() {
    let yaml = "version: 1\nroles: { admin: [x] }\nprincipals:\n  bob: { roles: [admin] }\n  ci-bot: { roles: [admin], kind: agent }\n  carol: { kind: human }\n";
    let p = Policy::from_yaml(yaml, "p.yaml").expect("loads");
    assert!(
        p.is_agent("ci-bot") && p.is_agent("CI-Bot"),
        "agents are found without case"
    );
    assert!(!p.is_agent("bob") && !p.is_agent("carol") && !p.is_agent("nobody"));
    let bad = "version: 1\nprincipals:\n  x: { kind: robot }\n";
    assert!(
        findings(bad).iter().any(|d| d.line == 3 && d.message.contains("robot")),
        "an unknown kind is an error at its line: {:#?}",
        findings(bad)
    );
    assert_rejected(bad);
}
