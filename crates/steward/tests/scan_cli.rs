//! `steward scan` on a fixture home (tests/fixtures/scan/home/.claude.json) with four stdio
//! servers: one poisoned, one clean (with prompts, resources and pagination), and two that
//! share a tool name. The findings must be exactly those, as a table, JSON and SARIF 2.1.0;
//! a second run after a tool changes reports drift.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan")
}

/// A copy of the fixture home and definitions in a temporary directory, with the paths filled in.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let defs = dir.path().join("defs");
        std::fs::create_dir_all(&defs).unwrap();
        for f in ["poisoned.json", "clean.json", "notes_a.json", "notes_b.json"] {
            std::fs::copy(fixtures().join(f), defs.join(f)).unwrap();
        }
        let home = dir.path().join("home");
        let project = dir.path().join("project");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&project).unwrap();
        let template = std::fs::read_to_string(fixtures().join("home/.claude.json")).unwrap();
        let config = template
            .replace("{PYTHON}", "python3")
            .replace("{FIXTURES}", &fixtures().to_string_lossy())
            .replace("{DEFS}", &defs.to_string_lossy());
        std::fs::write(home.join(".claude.json"), config).unwrap();
        Fixture { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn scan(&self, format: &str) -> Output {
        let home = self.path("home");
        let project = self.path("project");
        Command::new(env!("CARGO_BIN_EXE_steward"))
            .args(["scan", "--home"])
            .arg(&home)
            .arg("--project")
            .arg(&project)
            .args(["--format", format, "--timeout", "20s"])
            .env("XDG_DATA_HOME", self.path("data"))
            .env_remove("STEWARD_REGISTRY")
            .output()
            .unwrap()
    }

    fn scan_json(&self) -> (i32, Value) {
        let out = self.scan("json");
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{e}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        (out.status.code().unwrap_or(-1), v)
    }
}

/// (severity, kind, server, item) of every finding.
fn summary(report: &Value) -> Vec<(String, String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().to_string(),
                f["kind"].as_str().unwrap().to_string(),
                f["server"].as_str().unwrap().to_string(),
                f["item"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

#[test]
fn reports_exactly_the_poisoned_tool_and_the_shared_name_then_drift() {
    let fx = Fixture::new();
    let (code, report) = fx.scan_json();
    assert_eq!(code, 1, "a HIGH finding exits 1: {report:#}");

    let servers = report["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 4, "{report:#}");
    for s in servers {
        assert_eq!(s["reachable"], true, "{s:#}");
    }
    let clock = servers.iter().find(|s| s["name"] == "clock").unwrap();
    // Paginated one item per page: every page was followed.
    assert_eq!(
        (
            clock["tools"].as_u64(),
            clock["prompts"].as_u64(),
            clock["resources"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );

    let found = summary(&report);
    let on: std::collections::BTreeSet<(&str, &str)> =
        found.iter().map(|(_, _, s, i)| (s.as_str(), i.as_str())).collect();
    assert_eq!(
        on,
        [
            ("notes-a", "tool search_notes"),
            ("notes-b", "tool search_notes"),
            ("weather-plus", "tool add")
        ]
        .into_iter()
        .collect(),
        "{found:#?}"
    );
    let poison: Vec<&(String, String, String, String)> = found.iter().filter(|f| f.2 == "weather-plus").collect();
    assert!(
        poison
            .iter()
            .any(|f| f.0 == "HIGH" && f.1 == "hidden_instruction_block"),
        "{poison:#?}"
    );
    assert!(
        poison.iter().any(|f| f.0 == "HIGH" && f.1 == "concealment"),
        "{poison:#?}"
    );
    let dups: Vec<&(String, String, String, String)> = found.iter().filter(|f| f.1 == "duplicate_tool_name").collect();
    assert_eq!(dups.len(), 2, "{found:#?}");
    assert!(dups.iter().all(|f| f.0 == "MEDIUM"));
    assert!(
        found
            .iter()
            .all(|f| f.1 != "unreachable" && f.1 != "analysis-incomplete" && !f.1.ends_with("_drift"))
    );
    assert_eq!(report["summary"]["servers"], 4);

    // Second run: one tool changed.
    let defs = fx.path("defs/notes_b.json");
    let changed = std::fs::read_to_string(&defs).unwrap().replace(
        "Creates a note with a title and a body.",
        "Creates a note. Also copies it to the team space.",
    );
    std::fs::write(&defs, changed).unwrap();
    let (code, report) = fx.scan_json();
    assert_eq!(code, 1);
    let found = summary(&report);
    let drift: Vec<_> = found.iter().filter(|f| f.1 == "tool_drift").collect();
    assert_eq!(
        drift,
        [&(
            "HIGH".to_string(),
            "tool_drift".to_string(),
            "notes-b".to_string(),
            "tool create_note".to_string()
        )],
        "{found:#?}"
    );
    // Third run: the changed tool is the pin now.
    let (_, report) = fx.scan_json();
    assert!(summary(&report).iter().all(|f| f.1 != "tool_drift"));
}

#[test]
fn table_and_sarif_say_the_same() {
    let fx = Fixture::new();
    let out = fx.scan("table");
    assert_eq!(out.status.code(), Some(1));
    let table = String::from_utf8_lossy(&out.stdout);
    for want in [
        "weather-plus",
        "clock",
        "notes-a",
        "notes-b",
        "hidden_instruction_block",
        "duplicate_tool_name",
        "HIGH",
    ] {
        assert!(table.contains(want), "{want} missing from:\n{table}");
    }
    assert!(
        table.lines().filter(|l| l.contains("duplicate_tool_name")).count() == 2,
        "{table}"
    );
    assert!(
        !table
            .lines()
            .any(|l| l.trim_start().starts_with("HIGH") && l.contains(" clock ")),
        "{table}"
    );

    let out = fx.scan("sarif");
    assert_eq!(out.status.code(), Some(1));
    let sarif: Value = serde_json::from_slice(&out.stdout).unwrap();
    validate_sarif(&sarif);
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let (_, json) = fx.scan_json();
    assert_eq!(results.len(), json["findings"].as_array().unwrap().len());
    assert!(results.iter().all(|r| r["properties"]["server"] != "clock"));
    let add = results
        .iter()
        .find(|r| r["ruleId"] == "hidden_instruction_block")
        .expect("the poisoned tool is a result");
    assert_eq!(add["level"], "error");
    let uri = add["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert!(
        uri.starts_with("file://") && uri.ends_with("/home/.claude.json"),
        "{uri}"
    );
    assert!(
        add["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .unwrap()
            >= 1
    );
}

#[test]
fn an_unreachable_server_is_a_high_finding_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join(".claude.json"),
        r#"{"mcpServers": {"gone": {"command": "/nonexistent/steward-test-server"}}}"#,
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["scan", "--format", "json", "--timeout", "5s", "--home"])
        .arg(&home)
        .arg("--project")
        .arg(dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary(&v),
        [("HIGH".into(), "unreachable".into(), "gone".into(), "-".into())]
    );

    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["scan", "--home", "/nonexistent/home"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["scan", "--format", "xml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// The required structure of a SARIF 2.1.0 log, as the OASIS schema
/// (sarif-schema-2.1.0.json) states it for what Steward writes: `version` "2.1.0" and
/// `runs`; each run a `tool.driver` with a `name`; rules with an `id`; results with a
/// `message` holding `text`, a `level` from the schema's enum, a `ruleIndex` that points at
/// the rule with the result's `ruleId`, locations whose artifact URIs are strings and regions
/// whose `startLine` is at least 1; property bags and fingerprints of the right types.
fn validate_sarif(log: &Value) {
    assert_eq!(log["version"], "2.1.0");
    assert!(log["$schema"].as_str().is_some_and(|s| s.contains("sarif-2.1.0")));
    let runs = log["runs"].as_array().expect("runs is an array");
    assert!(!runs.is_empty());
    for run in runs {
        let driver = &run["tool"]["driver"];
        assert!(driver["name"].is_string(), "tool.driver.name is required");
        let rules = driver["rules"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for r in rules {
            assert!(r["id"].is_string(), "reportingDescriptor.id is required");
            if let Some(level) = r.pointer("/defaultConfiguration/level") {
                assert!(matches!(level.as_str(), Some("none" | "note" | "warning" | "error")));
            }
            for k in ["shortDescription", "fullDescription"] {
                if let Some(m) = r.get(k) {
                    assert!(m["text"].is_string(), "multiformatMessageString.text is required");
                }
            }
        }
        if let Some(bases) = run.get("originalUriBaseIds") {
            for (_, b) in bases.as_object().expect("originalUriBaseIds is an object") {
                assert!(b["uri"].as_str().is_some_and(|u| u.ends_with('/')));
            }
        }
        for res in run["results"].as_array().expect("results is an array") {
            assert!(res["message"]["text"].is_string() || res["message"]["id"].is_string());
            assert!(matches!(
                res["level"].as_str(),
                Some("none" | "note" | "warning" | "error")
            ));
            let id = res["ruleId"].as_str().expect("ruleId");
            let index = res["ruleIndex"].as_i64().expect("ruleIndex is an integer");
            assert!(index >= -1);
            if index >= 0 {
                assert_eq!(rules[index as usize]["id"], id);
            }
            for loc in res["locations"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                let phys = &loc["physicalLocation"];
                assert!(phys["artifactLocation"]["uri"].is_string());
                if let Some(region) = phys.get("region") {
                    assert!(region["startLine"].as_u64().is_some_and(|l| l >= 1));
                }
            }
            if let Some(fp) = res.get("partialFingerprints") {
                assert!(fp.as_object().unwrap().values().all(Value::is_string));
            }
            if let Some(p) = res.get("properties") {
                assert!(p.is_object());
            }
        }
    }
}

#[test]
fn an_http_server_is_listed_with_its_declared_headers_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let log = dir.path().join("requests.jsonl");
    let server = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/servers/recording_http_server.py");
    let mut child = Command::new("python3")
        .arg(&server)
        .args(["--port", &port.to_string(), "--log"])
        .arg(&log)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "the HTTP fixture did not start");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join(".claude.json"),
        format!(
            r#"{{"mcpServers": {{"remote": {{"type": "http", "url": "http://127.0.0.1:{port}/mcp", "headers": {{"X-Api-Key": "${{SCAN_TEST_KEY}}"}}}}}}}}"#
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_steward"))
        .args(["scan", "--format", "json", "--timeout", "10s", "--home"])
        .arg(&home)
        .arg("--project")
        .arg(dir.path())
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("SCAN_TEST_KEY", "k-123")
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let s = &v["servers"][0];
    assert_eq!(
        (s["transport"].as_str(), s["reachable"].as_bool(), s["tools"].as_u64()),
        (Some("http"), Some(true), Some(2)),
        "{v:#}"
    );
    let requests: Vec<Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let posts: Vec<&Value> = requests.iter().filter(|r| r["method"] == "POST").collect();
    assert!(posts.len() >= 3, "{requests:#?}");
    for r in &posts {
        assert_eq!(r["headers"]["x-api-key"], "k-123", "{r:#}");
        assert!(r["headers"].get("authorization").is_none());
    }
    // After initialize, the session id the server minted is sent back.
    assert!(
        posts[1..].iter().all(|r| r["headers"]["mcp-session-id"].is_string()),
        "{posts:#?}"
    );
}
