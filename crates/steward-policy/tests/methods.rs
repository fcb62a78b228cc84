//! Every governed method: rules select them with `method:`, `match:` globs name tools, resource
//! URIs and prompts, CEL sees `server.status`, `resource.uri` and `prompt.name`, and list entries
//! are shown or hidden with `visible_for`.

use serde_json::json;
use steward_policy::{Call, Effect, GOVERNED_METHODS, Policy, Principal, Severity};

fn policy(yaml: &str) -> Policy {
    match Policy::from_yaml(yaml, "test.yaml") {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn alice() -> Principal {
    Principal::new("alice", "test")
}

const BASE: &str = "version: 1\ndefault: allow\n";

#[test]
fn every_governed_method_is_accepted_and_others_are_not() {
    for m in GOVERNED_METHODS {
        let y = format!("{BASE}rules:\n  - {{id: r, method: {m}, effect: deny}}\n");
        let errors: Vec<_> = Policy::check_yaml(&y, "t.yaml")
            .into_iter()
            .filter(|d| d.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{m}: {errors:?}");
    }
    let y = format!("{BASE}rules:\n  - {{id: r, method: prompts/read, effect: deny}}\n");
    let d = Policy::check_yaml(&y, "t.yaml");
    assert!(
        d.iter()
            .any(|d| d.severity == Severity::Error && d.message.contains("not a governed method")),
        "{d:?}"
    );
    // `call.method` literals are checked against the same list.
    let y = format!("{BASE}rules:\n  - {{id: r, when: 'call.method == \"prompts/list\"', effect: deny}}\n");
    assert!(Policy::from_yaml(&y, "t.yaml").is_ok());
    let y = format!("{BASE}rules:\n  - {{id: r, when: 'call.method == \"prompt/list\"', effect: deny}}\n");
    assert!(Policy::from_yaml(&y, "t.yaml").is_err());
    // Only deny rules do anything on list methods.
    for m in ["resources/list", "prompts/list", "resources/templates/list"] {
        let y = format!("{BASE}rules:\n  - {{id: r, method: {m}, effect: allow}}\n");
        let d = Policy::check_yaml(&y, "t.yaml");
        assert!(
            d.iter()
                .any(|d| d.severity == Severity::Warning && d.message.contains("has no effect")),
            "{m}: {d:?}"
        );
    }
}

#[test]
fn resource_and_prompt_rules_match_server_slash_name() {
    let p = policy(&format!(
        "{BASE}rules:\n  - {{id: no-docs, match: 'everything/demo://resource/static/document/*', method: resources/read, effect: deny}}\n  - {{id: no-prompt, match: everything/simple-prompt, method: prompts/get, effect: deny}}\n"
    ));
    let who = alice();
    let args = json!({});
    let call = |method, name| Call {
        method,
        ..Call::tool_call(&who, "everything", name, &args)
    };
    let uri = "demo://resource/static/document/architecture.md";
    assert_eq!(p.decide(&call("resources/read", uri)).effect, Effect::Deny);
    assert_eq!(p.decide(&call("prompts/get", "simple-prompt")).effect, Effect::Deny);
    // Other names, other methods, other servers are not covered.
    assert_eq!(
        p.decide(&call("resources/read", "demo://resource/dynamic/text/1"))
            .effect,
        Effect::Allow
    );
    assert_eq!(p.decide(&call("prompts/get", "complex-prompt")).effect, Effect::Allow);
    assert_eq!(p.decide(&call("tools/call", "simple-prompt")).effect, Effect::Allow);
    assert_eq!(p.decide(&call("tools/call", uri)).effect, Effect::Allow);
    let other = Call {
        method: "resources/read",
        ..Call::tool_call(&who, "other", uri, &args)
    };
    assert_eq!(p.decide(&other).effect, Effect::Allow);
}

#[test]
fn a_uri_without_its_server_is_flagged() {
    let y = format!("{BASE}rules:\n  - {{id: r, match: 'demo://resource/*', method: resources/read, effect: deny}}\n");
    let d = Policy::check_yaml(&y, "t.yaml");
    assert!(
        d.iter()
            .any(|d| d.severity == Severity::Warning && d.message.contains("needs its server first")),
        "{d:?}"
    );
}

#[test]
fn the_inventory_checks_resource_rules_by_server_only() {
    let y = format!(
        "{BASE}servers:\n  everything: {{ tools: [echo] }}\nrules:\n  - {{id: r, match: 'everything/demo://x/*', method: resources/read, effect: deny}}\n  - {{id: p, match: 'everything/simple-prompt', method: [prompts/get, prompts/list], effect: deny}}\n"
    );
    assert!(Policy::from_yaml(&y, "t.yaml").is_ok());
    let y = format!(
        "{BASE}servers:\n  everything: {{ tools: [echo] }}\nrules:\n  - {{id: r, match: 'nothing/demo://x/*', method: resources/read, effect: deny}}\n"
    );
    assert!(Policy::from_yaml(&y, "t.yaml").is_err());
}

#[test]
fn server_status_is_readable_and_checked() {
    let p = policy(&format!(
        "{BASE}rules:\n  - {{id: unapproved, when: 'server.status != null && server.status != \"approved\"', effect: deny}}\n  - {{id: by-cel, match: 'cel/*', when: 'server.status + \"\" == \"expired\"', effect: deny}}\n"
    ));
    let who = alice();
    let args = json!({});
    let with = |server, status| Call {
        server_status: status,
        ..Call::tool_call(&who, server, "t", &args)
    };
    assert_eq!(p.decide(&with("s", Some("approved"))).effect, Effect::Allow);
    assert_eq!(p.decide(&with("s", None)).effect, Effect::Allow);
    for status in ["pending_review", "denied", "expired", "unlisted"] {
        assert_eq!(p.decide(&with("s", Some(status))).effect, Effect::Deny, "{status}");
    }
    // The interpreter (a condition the fast path does not take) sees the same value.
    let d = p.explain(&with("cel", Some("expired")));
    assert_eq!(
        d.rule_ids,
        vec!["unapproved".to_string(), "by-cel".to_string()],
        "{:?}",
        d.steps
    );
    // A status that does not exist is an error at load, with a hint.
    let y = format!("{BASE}rules:\n  - {{id: r, when: 'server.status == \"aproved\"', effect: deny}}\n");
    let d = Policy::check_yaml(&y, "t.yaml");
    assert!(
        d.iter()
            .any(|d| d.severity == Severity::Error && d.hint.as_deref().is_some_and(|h| h.contains("approved"))),
        "{d:?}"
    );
    let y = format!("{BASE}rules:\n  - {{id: r, when: 'server.status == 3', effect: deny}}\n");
    assert!(Policy::from_yaml(&y, "t.yaml").is_err());
}

#[test]
fn resource_uri_and_prompt_name_are_null_outside_their_method() {
    let p = policy(&format!(
        "{BASE}rules:\n  - {{id: secret-uri, method: [tools/call, resources/read, prompts/get], when: 'resource.uri != null && resource.uri.contains(\"secret\")', effect: deny}}\n  - {{id: bad-prompt, method: [tools/call, resources/read, prompts/get], when: 'prompt.name == \"leak\"', effect: deny}}\n  - {{id: prompt-args, method: prompts/get, when: 'has(args.topic) && args.topic == \"passwords\"', effect: deny}}\n  - {{id: fails-closed, match: 'strict/*', method: [tools/call, prompts/get], when: 'resource.uri.startsWith(\"file:\")', effect: deny}}\n"
    ));
    let who = alice();
    let empty = json!({});
    let call = |method, server, name, args| Call {
        method,
        ..Call::tool_call(&who, server, name, args)
    };
    assert_eq!(
        p.decide(&call("resources/read", "s", "file:///secret.txt", &empty))
            .effect,
        Effect::Deny
    );
    assert_eq!(
        p.decide(&call("resources/read", "s", "file:///readme.txt", &empty))
            .effect,
        Effect::Allow
    );
    // A tool named like a secret URI is not a resource: `resource.uri` is null.
    assert_eq!(
        p.decide(&call("tools/call", "s", "secret", &empty)).effect,
        Effect::Allow
    );
    assert_eq!(p.decide(&call("prompts/get", "s", "leak", &empty)).effect, Effect::Deny);
    assert_eq!(p.decide(&call("tools/call", "s", "leak", &empty)).effect, Effect::Allow);
    assert_eq!(
        p.decide(&call("resources/read", "s", "leak", &empty)).effect,
        Effect::Allow
    );
    // Prompt arguments are `args`.
    let topic = json!({"topic": "passwords"});
    assert_eq!(
        p.decide(&call("prompts/get", "s", "summary", &topic)).effect,
        Effect::Deny
    );
    // Calling a method on the null `resource.uri` is an error: a deny rule applies (fail closed).
    let d = p.decide(&call("prompts/get", "strict", "summary", &empty));
    assert_eq!((d.effect, d.rule_ids), (Effect::Deny, vec!["fails-closed".to_string()]));
}

#[test]
fn list_entries_are_hidden_by_list_rules_and_by_unconditional_denies() {
    let p = policy(&format!(
        "{BASE}roles: {{ admin: [admin] }}\nprincipals: {{ root: {{ roles: [admin] }} }}\ntools:\n  - {{match: 'fs/admin_*', requires: [admin]}}\nrules:\n  - {{id: hide-docs, match: 'everything/demo://resource/static/document/*', method: resources/list, when: '!(\"admin\" in principal.roles)', effect: deny}}\n  - {{id: hide-templates, match: 'everything/demo://resource/dynamic/*', method: resources/templates/list, effect: deny}}\n  - {{id: no-prompt, match: everything/simple-prompt, method: prompts/get, effect: deny}}\n  - {{id: hide-by-uri, match: 'everything/*', method: resources/list, when: 'resource.uri.endsWith(\".key\")', effect: deny}}\n  - {{id: hide-prompts-of-expired, method: prompts/list, when: 'server.status == \"expired\"', effect: deny}}\n"
    ));
    let (who, root) = (alice(), Principal::new("root", "test"));
    let doc = "demo://resource/static/document/architecture.md";
    // Resources: by the use method (both list rules apply) or by the list method itself.
    assert!(!p.visible_for(&who, "everything", doc, "resources/read"));
    assert!(!p.visible_for(&who, "everything", doc, "resources/list"));
    assert!(p.visible_for(&who, "everything", doc, "resources/templates/list"));
    assert!(p.visible_for(&root, "everything", doc, "resources/read"));
    assert!(!p.visible_for(&who, "everything", "demo://x/server.key", "resources/read"));
    assert!(p.visible_for(&who, "everything", "demo://x/server.pub", "resources/read"));
    let template = "demo://resource/dynamic/text/{id}";
    assert!(!p.visible_for(&root, "everything", template, "resources/templates/list"));
    assert!(p.visible_for(&root, "everything", template, "resources/list"));
    // Prompts: an unconditional deny of prompts/get hides the prompt from prompts/list.
    assert!(!p.visible_for(&root, "everything", "simple-prompt", "prompts/get"));
    assert!(!p.visible_for(&root, "everything", "simple-prompt", "prompts/list"));
    assert!(p.visible_for(&root, "everything", "complex-prompt", "prompts/get"));
    // Tools: requirements still hide them; `visible` is `visible_for(…, "tools/call")`.
    assert!(!p.visible_for(&who, "fs", "admin_panel", "tools/call"));
    assert!(!p.visible(&who, "fs", "admin_panel"));
    assert!(p.visible_for(&root, "fs", "admin_panel", "tools/list"));
    // A resource URI that looks like a tool name is not subject to the tools entry.
    assert!(p.visible_for(&who, "fs", "admin_panel", "resources/read"));
    // What the call says about the server reaches list rules.
    let args = json!({});
    let expired = Call {
        method: "prompts/get",
        server_status: Some("expired"),
        ..Call::tool_call(&root, "everything", "complex-prompt", &args)
    };
    assert!(!p.visible_for_call(&expired));
    // Not a method that lists anything: hidden (fail closed).
    assert!(!p.visible_for(&root, "everything", "complex-prompt", "initialize"));
}
