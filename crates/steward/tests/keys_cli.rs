//! `steward keys create|list|revoke` end to end: the real binary on a real SQLite file.

use std::path::Path;
use std::process::{Command, Output};

use steward_store::{AuditReader, KeyError, KeyStore, QueryFilter};

fn steward(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

#[test]
fn create_list_revoke_through_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("steward.yaml");
    // An unset ${VAR} in an upstream must not stop key management.
    std::fs::write(
        &cfg,
        "listen: 0.0.0.0:8787\nstore: { sqlite: ./state/gw.db }\nauth:\n  api_keys: true\nservers:\n  gh: { command: gh-mcp, env: { T: \"${STEWARD_SURELY_UNSET}\" } }\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    // Run from elsewhere: the store path is relative to the config file, not the cwd.
    let elsewhere = tempfile::tempdir().unwrap();

    let out = steward(
        &[
            "keys",
            "create",
            "--config",
            cfg,
            "--principal",
            "alice",
            "--roles",
            "developer,approver",
            "--expires",
            "90d",
            "--name",
            "laptop",
        ],
        elsewhere.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    // The key, alone on stdout, one line.
    assert_eq!(printed.lines().count(), 1, "{printed:?}");
    let key = printed.trim_end_matches('\n');
    assert!(key.starts_with("stw_") && !key.contains(' '), "{key}");
    assert!(stderr(&out).contains("alice"));
    assert!(!stderr(&out).contains(&key[17..]), "the secret must not be on stderr");

    let db = dir.path().join("state/gw.db");
    let store = KeyStore::open_sqlite(&db).unwrap();
    let record = store.verify(key).unwrap();
    assert_eq!(record.principal, "alice");
    assert_eq!(record.roles, vec!["developer", "approver"]);
    assert!(record.expires.is_some());
    assert!(!elsewhere.path().join("steward-data").exists());

    // list: never the secret, in either format.
    let secret = &key[17..];
    let table = steward(&["keys", "list", "--config", cfg], elsewhere.path());
    assert!(table.status.success());
    assert!(stdout(&table).contains(&record.id) && stdout(&table).contains("active"));
    assert!(!stdout(&table).contains(secret));
    let json = steward(&["keys", "list", "--config", cfg, "--json"], elsewhere.path());
    let line: serde_json::Value = serde_json::from_str(stdout(&json).lines().next().unwrap()).unwrap();
    assert_eq!(line["id"], record.id.as_str());
    assert_eq!(line["principal"], "alice");
    assert_eq!(line["roles"], serde_json::json!(["developer", "approver"]));
    assert_eq!(line["name"], "laptop");
    assert_eq!(line["status"], "active");
    assert!(line["revoked"].is_null() && line["created"].is_string() && line["expires"].is_string());
    assert!(!stdout(&json).contains(secret));

    // revoke: the gateway's next check refuses it.
    let out = steward(&["keys", "revoke", "--config", cfg, &record.id], elsewhere.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(matches!(store.verify(key), Err(KeyError::Revoked(_))));
    let again = steward(&["keys", "revoke", "--config", cfg, &record.id], elsewhere.path());
    assert!(again.status.success());
    assert!(stdout(&again).contains("already"));
    let json = steward(&["keys", "list", "--config", cfg, "--json"], elsewhere.path());
    assert!(stdout(&json).contains("\"status\":\"revoked\""));
    let missing = steward(&["keys", "revoke", "--config", cfg, "ffffffffffff"], elsewhere.path());
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("no API key"));

    // Both changes are in the audit log, and the chain is intact; no secret in it.
    let reader = AuditReader::open(&db).unwrap();
    let rows = reader
        .query(&QueryFilter {
            kind: Some("system".into()),
            ..QueryFilter::default()
        })
        .unwrap();
    let methods: Vec<_> = rows.iter().filter_map(|r| r.method.clone()).collect();
    assert_eq!(methods, vec!["keys/create", "keys/revoke"]);
    assert!(reader.verify().unwrap().ok());
    assert!(!rows.iter().any(|r| r.to_json().to_string().contains(secret)));
}

#[test]
fn defaults_to_the_serve_store_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let out = steward(&["keys", "create", "--principal", "svc-ci"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let key = stdout(&out).trim().to_string();
    let store = KeyStore::open_sqlite(&dir.path().join("steward-data/steward.db")).unwrap();
    assert!(store.verify(&key).unwrap().roles.is_empty());

    for bad in [
        vec!["keys", "create", "--principal", ""],
        vec!["keys", "create", "--principal", "a", "--expires", "soon"],
        vec!["keys", "create", "--principal", "a", "--expires", "2001-01-01"],
        vec!["keys", "create", "--principal", "a", "--roles", "has space"],
        vec!["keys", "create", "--principal", "a", "--config", "missing.yaml"],
    ] {
        let out = steward(&bad, dir.path());
        assert_eq!(out.status.code(), Some(1), "{bad:?}");
        assert!(stdout(&out).is_empty(), "{bad:?} printed {}", stdout(&out));
    }
    assert_eq!(store.list().unwrap().len(), 1);
}
