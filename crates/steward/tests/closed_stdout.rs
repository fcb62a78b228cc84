//! A closed stdout (`| head -1`) ends a command quietly with the conventional status (killed by
//! SIGPIPE: 141 in the shell), never with a panic.

use std::process::{Command, Stdio};

const STEWARD: &str = env!("CARGO_BIN_EXE_steward");

/// Runs `steward ARGS | head -1` in bash: steward's status and its stderr.
fn piped_into_head(dir: &std::path::Path, args: &str) -> (String, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "'{STEWARD}' {args} 2>stderr.txt | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}"
        ))
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .env_remove("XDG_DATA_HOME")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let stderr = std::fs::read_to_string(dir.join("stderr.txt")).unwrap_or_default();
    (status, stderr)
}

#[test]
fn long_output_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("audit.db");
    // Far more than a pipe buffer of output from each command.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = steward_store::AuditLog::open_sqlite(&db).unwrap();
    rt.block_on(async {
        for i in 0..3000 {
            let mut e = steward_store::AuditEvent::new(steward_store::EventKind::Decision);
            e.principal = Some(format!("agent-{i}"));
            e.server = Some("ops".into());
            e.tool = Some(format!("tool-{i}"));
            e.effect = Some("allow".into());
            log.append_nowait(e).unwrap();
        }
        log.flush().await;
    });
    log.close();
    let pins = steward_store::PinStore::open_sqlite(&db).unwrap();
    for i in 0..3000 {
        pins.check(
            "ops",
            &serde_json::json!({"name": format!("tool-{i}"), "description": "does a thing"}),
        )
        .unwrap();
    }
    drop(pins);
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let servers: serde_json::Map<String, serde_json::Value> = (0..3000)
        .map(|i| {
            (
                format!("server-{i}"),
                serde_json::json!({"command": "npx", "args": ["-y", format!("mcp-server-{i}")]}),
            )
        })
        .collect();
    std::fs::write(
        home.join(".claude.json"),
        serde_json::json!({"mcpServers": servers}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.path().join("registry.yaml"), "version: 1\napproved: []\n").unwrap();

    for args in [
        "audit query --db audit.db",
        "audit query --db audit.db --json",
        "pins list --db audit.db",
        "pins list --db audit.db --json",
        "registry check --registry registry.yaml",
    ] {
        let (status, stderr) = piped_into_head(dir.path(), args);
        assert!(
            !stderr.contains("panicked"),
            "`steward {args} | head -1` panicked: {stderr}"
        );
        assert_eq!(status, "141", "`steward {args} | head -1` exited {status}: {stderr}");
    }
}
