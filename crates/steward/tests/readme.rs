//! Every command in README.md, run as written: the `sh` blocks' commands run in order with
//! `bash`, in a fresh directory holding a copy of `examples/` (as a clone would), with
//! `steward` on PATH and a home of its own, against the gateway on embedded defaults.
//!
//! Two things differ from a reader's terminal, and only these: the gateway's port (8787 may be
//! taken on a shared machine) and the approval ids (`apr-` and 12 hex digits), which are the
//! ones the run created — each block's first id is its block's first pending approval, and so
//! on. Commands that install, run the whole test suite or need Claude Code are listed in
//! [`SKIPPED`]; any other command must be `steward` or `curl`, so a new README command is
//! either run here or skipped on purpose.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const STEWARD: &str = env!("CARGO_BIN_EXE_steward");
const README: &str = include_str!("../../../README.md");
/// Commands not run here, and why.
const SKIPPED: &[(&str, &str)] = &[
    ("cargo install", "installs the binary this test already has"),
    ("scripts/test-all", "runs every test, this one included"),
    ("claude mcp add", "needs Claude Code"),
];
/// One command may take this long.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The `sh` blocks' commands, continuation lines joined, comments dropped.
fn blocks(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut pending = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("```") {
            match current.take() {
                Some(block) => out.push(block),
                None if trimmed == "```sh" => current = Some(Vec::new()),
                None => {}
            }
            continue;
        }
        let Some(block) = current.as_mut() else { continue };
        let code = strip_comment(line).trim();
        if let Some(head) = code.strip_suffix('\\') {
            pending.push_str(head.trim_end());
            pending.push(' ');
            continue;
        }
        pending.push_str(code);
        let command = std::mem::take(&mut pending).trim().to_string();
        if !command.is_empty() {
            block.push(command);
        }
    }
    out
}

/// The line without a trailing `# comment` (a `#` after white space, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev = ' ';
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev.is_whitespace() => return &line[..i],
            _ => {}
        }
        prev = c;
    }
    line
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where commands run, with what environment.
struct Shell {
    dir: tempfile::TempDir,
    path: std::ffi::OsString,
}

impl Shell {
    fn new() -> Shell {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("examples"), &dir.path().join("examples"));
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let bin = Path::new(STEWARD).parent().unwrap().to_path_buf();
        let mut paths = vec![bin];
        paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        Shell {
            dir,
            path: std::env::join_paths(paths).unwrap(),
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.current_dir(self.dir.path())
            .env("PATH", &self.path)
            .env("HOME", self.dir.path().join("home"))
            .env_remove("XDG_DATA_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("STEWARD_REGISTRY")
            .env("COLUMNS", "100")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        c
    }

    /// Runs one command line with bash; its exit status and output.
    fn run(&self, line: &str) -> (Option<i32>, String, String) {
        let mut child = self
            .command("bash")
            .args(["-c", line])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("`{line}` did not finish within {COMMAND_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Pending approvals, oldest first.
    fn pending(&self) -> Vec<String> {
        let (code, out, err) = self.run("steward approvals list --state pending --json");
        assert_eq!(code, Some(0), "{err}");
        let mut ids: Vec<(String, String)> = out
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|a| {
                (
                    a["created_at"].as_str().unwrap_or("").to_string(),
                    a["id"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http(port: u16, request: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// A call that needs approval, made the way the README's curl makes one.
fn request_approval(port: u16, command: &str) {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "run_command", "arguments": {"command": command}}})
    .to_string();
    let answer = http(
        port,
        &format!(
            "POST /mcp/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n\
             Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2026-07-28\r\nMcp-Method: tools/call\r\n\
             Mcp-Name: run_command\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(answer.contains("apr-"), "{answer}");
}

/// `apr-` and 12 hex digits, as they appear in the line.
fn approval_ids(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("apr-") {
        let id: String = rest[at..].chars().take(16).collect();
        if id.len() == 16 && id[4..].chars().all(|c| c.is_ascii_hexdigit()) && !out.contains(&id) {
            out.push(id.clone());
        }
        rest = &rest[at + 4..];
    }
    out
}

#[test]
fn every_readme_command_works_as_written() {
    let shell = Shell::new();
    let port = free_port();
    let has_curl = shell.run("command -v curl").0 == Some(0);
    let mut serve: Option<Serve> = None;
    let mut ran = 0;
    let mut blocks_seen = 0;
    for block in blocks(README) {
        blocks_seen += 1;
        // README ids → this run's approvals, per block.
        let mut ids: HashMap<String, String> = HashMap::new();
        for command in block {
            if let Some((_, why)) = SKIPPED.iter().find(|(prefix, _)| command.starts_with(prefix)) {
                eprintln!("skipped ({why}): {command}");
                continue;
            }
            assert!(
                command.starts_with("steward ") || command.starts_with("curl "),
                "README command `{command}` is neither run nor skipped by this test: add it to SKIPPED or make it a steward command"
            );
            if command == "steward serve" {
                let child = shell
                    .command(STEWARD)
                    .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                serve = Some(Serve(child));
                let deadline = Instant::now() + Duration::from_secs(30);
                while TcpStream::connect(("127.0.0.1", port)).is_err()
                    || !http(
                        port,
                        "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                    )
                    .starts_with("HTTP/1.1 200")
                {
                    assert!(Instant::now() < deadline, "steward serve did not become ready");
                    std::thread::sleep(Duration::from_millis(100));
                }
                ran += 1;
                continue;
            }
            if command.starts_with("curl ") && !has_curl {
                eprintln!("skipped (no curl here): {command}");
                request_approval(port, "rm -rf /");
                continue;
            }
            let mut line = command.replace("8787", &port.to_string());
            for readme_id in approval_ids(&command) {
                let real = match ids.get(&readme_id) {
                    Some(real) => real.clone(),
                    None => {
                        let taken: Vec<&String> = ids.values().collect();
                        let mut free: Vec<String> =
                            shell.pending().into_iter().filter(|p| !taken.contains(&p)).collect();
                        if free.is_empty() {
                            request_approval(port, &format!("rm -rf /srv/{}", ids.len()));
                            free = shell.pending().into_iter().filter(|p| !taken.contains(&p)).collect();
                        }
                        let real = free.first().cloned().expect("a pending approval");
                        ids.insert(readme_id.clone(), real.clone());
                        real
                    }
                };
                line = line.replace(&readme_id, &real);
            }
            assert!(serve.is_some() || !line.contains("curl"), "curl before steward serve");
            let (code, out, err) = shell.run(&line);
            assert_eq!(
                code,
                Some(0),
                "README command failed: `{command}`\nstdout:\n{out}\nstderr:\n{err}"
            );
            eprintln!("ran: {line}\n  {}", out.lines().next().unwrap_or(""));
            ran += 1;
        }
    }
    assert!(
        blocks_seen >= 5 && ran >= 15,
        "the README lost its commands? {blocks_seen} blocks, {ran} run"
    );
    drop(serve);
}

#[test]
fn every_example_file_the_readme_names_exists() {
    for word in README.split(|c: char| c.is_whitespace() || matches!(c, '`' | '(' | ')' | '"' | '\'' | ',')) {
        let word = word.trim_end_matches(['.', ':', ';']);
        if word.starts_with("examples/") || word.starts_with("docs/") {
            assert!(repo().join(word).exists(), "README names {word}, which does not exist");
        }
    }
}

#[test]
fn comments_and_continuations_are_read_like_a_shell() {
    let text = "```sh\nsteward a --x 'b # c'   # note\nsteward d \\\n  --e f\n```\n```json\n{}\n```\n";
    assert_eq!(
        blocks(text),
        vec![vec!["steward a --x 'b # c'".to_string(), "steward d --e f".to_string()]]
    );
}
