//! `/v1/approvals` on `steward serve`: authenticated approvers list, approve and deny; the same
//! rules as the CLI (no self-approval, required roles), and a grant the next identical call uses.

mod approvals_support;

use approvals_support::{Env, http, key, policy, start_gateway};
use serde_json::json;

#[test]
fn approvers_decide_over_http_with_the_same_rules() {
    let env = Env::new(&policy("{ roles: [admin], count: 1 }", "approvals: { mode: queue }"));
    let (gw, config) = start_gateway(&env);
    let (alice, bob, dave) = (
        key(&env, &config, "alice"),
        key(&env, &config, "bob"),
        key(&env, &config, "dave"),
    );
    let p = gw.port;
    let call = json!({"server": "ops", "tool": "run", "args": {"command": "sudo systemctl restart nginx"}});

    let (status, d) = http(p, "POST", "/v1/decide", Some(&alice), Some(call.clone()), None);
    assert_eq!(status, 200, "{d}");
    assert_eq!(d["effect"], "approve");
    assert!(d["message"].as_str().is_some_and(|m| m.contains("apr-")), "{d}");

    assert_eq!(
        http(p, "GET", "/v1/approvals", None, None, None).0,
        401,
        "the API is authenticated"
    );
    let (status, listed) = http(p, "GET", "/v1/approvals?state=pending", Some(&bob), None, None);
    assert_eq!(status, 200, "{listed}");
    let approvals = listed["approvals"].as_array().cloned().unwrap_or_default();
    assert_eq!(approvals.len(), 1, "{listed}");
    let id = approvals[0]["id"].as_str().expect("id").to_string();
    assert_eq!(
        (approvals[0]["principal"].as_str(), approvals[0]["risk"].as_str()),
        (Some("alice"), Some("CRITICAL"))
    );
    // dave can decide nothing here, so he sees nothing.
    let (_, for_dave) = http(p, "GET", "/v1/approvals", Some(&dave), None, None);
    assert_eq!(for_dave["approvals"], json!([]));

    let approve = format!("/v1/approvals/{id}/approve");
    let (status, r) = http(p, "POST", &approve, Some(&alice), None, None);
    assert_eq!(status, 403, "self-approval: {r}");
    assert!(
        r["message"].as_str().is_some_and(|m| m.contains("cannot approve it")),
        "{r}"
    );
    let (status, r) = http(p, "POST", &approve, Some(&dave), None, None);
    assert_eq!(status, 403, "missing role: {r}");
    assert!(r["message"].as_str().is_some_and(|m| m.contains("role admin")), "{r}");
    let (status, _) = http(p, "POST", &approve, Some(&bob), None, Some("http://evil.example"));
    assert_eq!(status, 403, "a cross-site form cannot approve");
    let (status, r) = http(
        p,
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        Some(&bob),
        Some(json!({})),
        None,
    );
    assert_eq!(status, 400, "a denial needs a reason: {r}");

    let (status, r) = http(
        p,
        "POST",
        &approve,
        Some(&bob),
        Some(json!({"reason": "planned restart"})),
        None,
    );
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["complete"], true);
    assert_eq!(r["approval"]["state"], "approved");
    let (status, _) = http(p, "POST", &approve, Some(&bob), None, None);
    assert_eq!(status, 409, "an approved approval is no longer pending");

    // The decision API only says what would happen: it never uses the grant up.
    for _ in 0..2 {
        let (_, d) = http(p, "POST", "/v1/decide", Some(&alice), Some(call.clone()), None);
        assert_eq!(d["effect"], "allow", "{d}");
        assert_eq!(d["approval_id"], id.as_str(), "{d}");
    }
    // A caller that enforces the answer (`steward hook --remote`) runs the identical call once.
    let mut enforced = call.clone();
    enforced["enforce"] = json!(true);
    let (_, d) = http(p, "POST", "/v1/decide", Some(&alice), Some(enforced.clone()), None);
    assert_eq!(d["effect"], "allow", "{d}");
    let (_, d) = http(p, "POST", "/v1/decide", Some(&alice), Some(enforced), None);
    assert_eq!(d["effect"], "approve", "a grant is used once: {d}");

    let (status, a) = http(p, "GET", &format!("/v1/approvals/{id}"), Some(&alice), None, None);
    assert_eq!(status, 200, "{a}");
    assert!(a["consumed_at"].is_string(), "{a}");
    drop(gw);
    let db = env.dir.path().join("gw.db");
    let out = env.steward(&["audit", "verify", "--db", db.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}
