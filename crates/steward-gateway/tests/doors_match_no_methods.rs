//! The doors hand messages to the relay and act on its outcomes; which method is governed, and
//! how, is the relay's knowledge alone (`pipeline/`, `steward-mcp`'s method table). A door that
//! matched a method string itself would be a second pipeline that can drift from the first.

use std::path::{Path, PathBuf};

use steward_policy::GOVERNED_METHODS;

/// Every door's source: the stdio proxy, the HTTP gateway's MCP, SSE and federated endpoints, the
/// decision API, the approver endpoint, and the Claude Code hook.
const DOORS: &[&str] = &[
    "src/proxy",
    "src/serve/mcp.rs",
    "src/serve/legacy_sse.rs",
    "src/serve/federation.rs",
    "src/serve/exchange.rs",
    "src/serve/stream.rs",
    "src/serve/decide_api.rs",
    "src/serve/approver_mcp.rs",
    "../steward/src/cmd_hook.rs",
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).expect("read door directory") {
            rust_files(&entry.expect("entry").path(), out);
        }
    } else if path.extension().is_some_and(|e| e == "rs") {
        out.push(path.to_path_buf());
    }
}

#[test]
fn no_door_matches_a_governed_method_string() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for door in DOORS {
        let path = root.join(door);
        assert!(path.exists(), "door source {} moved: update this list", path.display());
        rust_files(&path, &mut files);
    }
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read door source");
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for m in GOVERNED_METHODS {
                if line.contains(&format!("\"{m}\"")) {
                    found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "doors matching method strings:\n{}", found.join("\n"));
}
