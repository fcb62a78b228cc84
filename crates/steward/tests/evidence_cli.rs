//! `steward audit export --format cef | keygen | checkpoint | verify | prune | sinks` against
//! real SQLite files, as an operator runs them.

use std::path::Path;
use std::process::{Command, Output};

use steward_store::{AuditEvent, AuditLog, EventKind};

fn steward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(args)
        .env("XDG_DATA_HOME", "/nonexistent-steward-test")
        .output()
        .expect("run steward")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn call(tool: &str, kind: EventKind) -> AuditEvent {
    let mut e = AuditEvent::new(kind);
    e.decision_id = Some(format!("d-{tool}"));
    e.principal = Some("alice".into());
    e.door = Some("gateway".into());
    e.server = Some("demo".into());
    e.tool = Some(tool.into());
    e.method = Some("tools/call".into());
    if kind == EventKind::Decision {
        e.effect = Some("allow".into());
        e.risk = Some("LOW".into());
        e.reason = Some("allowed by default".into());
    } else {
        e.outcome = Some("ok".into());
    }
    e
}

fn fill(db: &Path, tools: &[&str]) {
    let log = AuditLog::open_sqlite(db).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for t in tools {
            log.append(call(t, EventKind::Decision)).await.unwrap();
            log.append(call(t, EventKind::Outcome)).await.unwrap();
        }
    });
    log.close();
}

#[test]
fn cef_export_of_a_tool_name_with_a_newline_and_a_pipe_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    fill(&db, &["evil\nCEF:0|Forged|forged|1|x|y|10|suser=root", "ok"]);
    let out = steward(&["audit", "export", "--db", db.to_str().unwrap(), "--format", "cef"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "one line per event: {stdout}");
    assert!(
        lines.iter().all(|l| l.starts_with("CEF:0|Steward|steward|")),
        "{stdout}"
    );
    let first = lines[0];
    // The first seven unescaped pipes end the header fields; the extension follows.
    let mut parts: Vec<String> = Vec::new();
    let (mut cur, mut escaped) = (String::new(), false);
    for c in first.chars() {
        match (escaped, c) {
            (true, _) => {
                cur.push(c);
                escaped = false;
            }
            (false, '\\') => {
                cur.push(c);
                escaped = true;
            }
            (false, '|') if parts.len() < 7 => parts.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    parts.push(cur);
    assert_eq!(parts.len(), 8, "{first}");
    assert_eq!(
        parts[5],
        "allow demo/evil\\nCEF:0\\|Forged\\|forged\\|1\\|x\\|y\\|10\\|suser=root"
    );
    assert_eq!(parts[6], "2");
    let rt: i64 = parts[7]
        .strip_prefix("rt=")
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .expect("rt first, in epoch milliseconds");
    assert!(rt > 1_700_000_000_000, "{rt}");
    assert!(first.contains("suser=alice") && first.contains("act=allow"), "{first}");
    assert!(
        first.contains("cs1=evil\\nCEF:0|Forged|forged|1|x|y|10|suser\\=root cs1Label=tool"),
        "{first}"
    );
}

#[test]
fn truncation_after_a_checkpoint_fails_verify_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    let key = dir.path().join("keys/audit.key");
    fill(&db, &["a", "b", "c", "d"]);
    let (db_s, key_s) = (db.to_str().unwrap(), key.to_str().unwrap());
    let out = steward(&["audit", "keygen", "--out", key_s]);
    assert!(out.status.success(), "{}", text(&out));
    let again = steward(&["audit", "keygen", "--out", key_s]);
    assert!(!again.status.success(), "a key is never overwritten: {}", text(&again));
    let out = steward(&["audit", "checkpoint", "--db", db_s, "--signing-key", key_s]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("seq 8") && text(&out).contains("signed with key"),
        "{}",
        text(&out)
    );
    let pubkey = format!("{key_s}.pub");
    let out = steward(&["audit", "verify", "--db", db_s, "--public-key", &pubkey]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("signed head: seq 8"), "{}", text(&out));

    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("DELETE FROM audit_events WHERE seq > 5", [])
        .unwrap();
    let out = steward(&["audit", "verify", "--db", db_s]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("TRUNCATED") && t.contains("ends at seq 5") && t.contains("rows 6..9"),
        "{t}"
    );
    let out = steward(&["audit", "verify", "--db", db_s, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["truncated"]["log_ends_at"], 5);
}

#[test]
fn prune_on_a_signed_log_keeps_it_verifiable_and_respects_sinks() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("steward.db");
    let key = dir.path().join("audit.key");
    let out = steward(&["audit", "keygen", "--out", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let config = dir.path().join("steward.yaml");
    std::fs::write(
        &config,
        format!(
            "store: {{ sqlite: {} }}\nservers:\n  gh: {{ command: x, env: {{ T: \"${{SURELY_UNSET_FOR_THIS_TEST}}\" }} }}\n\
             audit:\n  signing_key: {{ file: ./audit.key }}\n  sinks:\n    - {{ type: file, path: ./out/audit.jsonl }}\n",
            db.display()
        ),
    )
    .unwrap();
    fill(&db, &["a", "b", "c"]);
    let cfg = config.to_str().unwrap();
    let out = steward(&["audit", "checkpoint", "--config", cfg]);
    assert!(out.status.success(), "{}", text(&out));
    std::thread::sleep(std::time::Duration::from_millis(1200));

    // The file sink has never run: nothing may go without --force.
    let out = steward(&["audit", "sinks", "--config", cfg]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("(never ran)"), "{}", text(&out));
    let out = steward(&["audit", "prune", "--before", "1s", "--config", cfg]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("have not been delivered"), "{}", text(&out));

    let out = steward(&["audit", "prune", "--before", "1s", "--config", cfg, "--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("signed anchor"), "{}", text(&out));
    let db_s = db.to_str().unwrap();
    let pubkey = format!("{}.pub", key.display());
    for args in [
        vec!["audit", "verify", "--db", db_s],
        vec!["audit", "verify", "--db", db_s, "--public-key", &pubkey],
        vec!["audit", "verify", "--config", cfg],
    ] {
        let out = steward(&args);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("from the prune anchor"), "{}", text(&out));
    }
    // Another key does not vouch for the anchor.
    let other = dir.path().join("other.key");
    assert!(
        steward(&["audit", "keygen", "--out", other.to_str().unwrap()])
            .status
            .success()
    );
    let out = steward(&[
        "audit",
        "verify",
        "--db",
        db_s,
        "--public-key",
        &format!("{}.pub", other.display()),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[test]
fn prune_without_sinks_removes_old_rows_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    fill(&db, &["a", "b"]);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let db_s = db.to_str().unwrap();
    let out = steward(&["audit", "prune", "--before", "1s", "--db", db_s, "--dry-run"]);
    assert!(
        out.status.success() && text(&out).contains("would remove 3 row(s)"),
        "{}",
        text(&out)
    );
    let out = steward(&["audit", "prune", "--before", "1s", "--db", db_s]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("pruned 3 row(s)"), "{}", text(&out));
    let out = steward(&["audit", "verify", "--db", db_s]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("anchor is unsigned"), "{}", text(&out));
    let out = steward(&["audit", "prune", "--before", "2000-01-01", "--db", db_s]);
    assert!(
        out.status.success() && text(&out).contains("nothing to prune"),
        "{}",
        text(&out)
    );
}
