//! Approver rules that cannot be empty: under the baseline policy (`CRITICAL: approve`, no
//! approvers named) only a principal with `steward:approver` releases a CRITICAL call; a key
//! without roles approves nothing and sees only its own approvals, at every door.

mod approvals_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use approvals_support::{Env, Gateway, STEWARD, WAIT, http, stderr};
use serde_json::json;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A gateway on the baseline policy (no `policy:`) serving the demo, with API keys.
fn baseline_gateway(env: &Env) -> (Gateway, std::path::PathBuf) {
    let port = free_port();
    let config = env.dir.path().join("steward.yaml");
    std::fs::write(
        &config,
        format!("listen: 127.0.0.1:{port}\nstore: {{ sqlite: ./gw.db }}\nauth: {{ api_keys: true }}\n"),
    )
    .unwrap();
    let child = Command::new(STEWARD)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let gw = Gateway { child, port };
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
        || http(port, "GET", "/readyz", None, None, None).0 != 200
    {
        assert!(Instant::now() < deadline, "the gateway never became ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    (gw, config)
}

fn key(env: &Env, config: &std::path::Path, principal: &str, roles: &str) -> String {
    let mut args = vec![
        "keys",
        "create",
        "--config",
        config.to_str().unwrap(),
        "--principal",
        principal,
    ];
    if !roles.is_empty() {
        args.extend(["--roles", roles]);
    }
    let out = env.steward(&args);
    assert!(out.status.success(), "keys create: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn under_the_baseline_only_steward_approver_releases_a_critical_call() {
    let env = Env::new("version: 1\n");
    let (gw, config) = baseline_gateway(&env);
    let alice = key(&env, &config, "alice", "");
    let mallory = key(&env, &config, "mallory", "");
    let admin = key(&env, &config, "root", "admin");
    let approver = key(&env, &config, "erin", "steward:approver");
    let p = gw.port;
    let call = json!({"server": "demo", "tool": "run_command", "args": {"command": "rm -rf /"}});
    let (status, d) = http(p, "POST", "/v1/decide", Some(&alice), Some(call.clone()), None);
    assert_eq!((status, d["effect"].as_str()), (200, Some("approve")), "{d}");

    // Listed only to its requester and to those who may decide it, arguments included.
    let listed = |k: &str| {
        let (status, l) = http(p, "GET", "/v1/approvals", Some(k), None, None);
        assert_eq!(status, 200, "{l}");
        l["approvals"].as_array().cloned().unwrap_or_default()
    };
    assert!(listed(&mallory).is_empty(), "a role-less key sees others' approvals");
    assert!(listed(&admin).is_empty(), "a role that may not decide sees nothing");
    assert_eq!(listed(&alice).len(), 1, "the requester sees its own");
    let mine = listed(&approver);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["required_roles"], json!(["steward:approver"]));
    let id = mine[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        http(p, "GET", &format!("/v1/approvals/{id}"), Some(&mallory), None, None).0,
        404,
        "not yours to see is not there"
    );

    let approve = format!("/v1/approvals/{id}/approve");
    for (who, k) in [("mallory", &mallory), ("root", &admin)] {
        let (status, r) = http(p, "POST", &approve, Some(k), None, None);
        assert_eq!(status, 403, "{who}: {r}");
        assert!(
            r["message"].as_str().is_some_and(|m| m.contains("steward:approver")),
            "{r}"
        );
    }
    let (status, r) = http(
        p,
        "POST",
        &format!("/v1/approvals/{id}/deny"),
        Some(&mallory),
        Some(json!({"reason": "no"})),
        None,
    );
    assert_eq!(status, 403, "a role-less key cannot deny either: {r}");
    // The CLI takes roles from the policy in force: the baseline names nobody.
    let out = env.steward(&[
        "approvals",
        "approve",
        &id,
        "--as",
        "bob",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("steward:approver"), "{}", stderr(&out));

    let (status, r) = http(p, "POST", &approve, Some(&approver), None, None);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["complete"], true);

    // Every transition this gateway made is counted.
    let mut s = std::net::TcpStream::connect(("127.0.0.1", p)).unwrap();
    use std::io::{Read, Write};
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    for state in ["pending", "approved"] {
        assert!(
            text.contains(&format!("steward_approvals_total{{state=\"{state}\"}} 1")),
            "{state}: {text}"
        );
    }
    drop(gw);
}
