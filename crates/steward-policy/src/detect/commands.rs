//! Rules over the commands a script runs: which programs, with which flags, aimed at what.
//!
//! Each simple command is first resolved to the program that really runs (through `sudo`, `env`,
//! `nice`, `timeout`, `nohup`, `xargs`, `busybox`, glob paths such as `/???/r?`, …); the rules
//! then judge that program by its flags and by the scope of its targets ([`paths::scope`]).
//! Rules that span commands (a download piped into a shell, a file downloaded then run, `cd ~`
//! before `rm -rf .`, what `echo` feeds `sh`) keep their state across the script.

use std::borrow::Cow;

use super::Scan;
use super::code;
use super::expand::{self, Env};
use super::paths::{self, Scope, credential_path, scope};
use super::shell::{self, Join};
use super::tree::{Cmd, Parsed, RedirKind, Redirect};
use crate::model::Risk;

const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "ash", "fish", "mksh", "tcsh", "csh", "busybox",
];
/// Interpreters whose code (`-c`, `-e`, standard input) is program text, not a shell script.
const CODE_INTERPRETERS: &[&str] = &[
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "php",
    "lua",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "deno",
    "bun",
    "tclsh",
    "pwsh",
    "powershell",
    "osascript",
    "R",
    "Rscript",
    "jshell",
    "groovy",
    "irb",
];
const FETCHERS: &[&str] = &[
    "curl",
    "wget",
    "fetch",
    "aria2c",
    "iwr",
    "invoke-webrequest",
    "irm",
    "invoke-restmethod",
    "http",
    "lwp-download",
    "GET",
];
const DB_CLIENTS: &[&str] = &[
    "psql",
    "mysql",
    "mariadb",
    "sqlite3",
    "clickhouse-client",
    "cockroach",
    "sqlcmd",
    "duckdb",
    "cqlsh",
    "mongosh",
    "mongo",
];
/// Programs that only use a credential file (to log in, to fix its mode), never read it out.
const USES_CREDENTIALS: &[&str] = &[
    "ssh",
    "ssh-add",
    "ssh-keygen",
    "ssh-copy-id",
    "chmod",
    "chown",
    "chgrp",
    "ls",
    "stat",
    "test",
    "[",
    "touch",
    "mkdir",
    "git",
    "gpg-agent",
    "file",
    "du",
    "realpath",
    "ssh-keyscan",
    "mosh",
    "sftp",
    "autossh",
    "kubectl",
    "aws",
    "gcloud",
    "az",
    "docker",
    "helm",
    "terraform",
    "rm",
    "shred",
    "truncate",
    "export",
    "source",
    ".",
];
/// Programs whose arguments are text to print, search or record (rule 2).
const TEXT_ONLY: &[&str] = &[
    "echo", "printf", "man", "which", "type", "whatis", "apropos", "help", "info", "whereis", "true", "false", ":",
];
/// Daemons whose `SIGKILL` takes a service (or the machine) down.
const DAEMONS: &[&str] = &[
    "sshd",
    "systemd",
    "init",
    "dockerd",
    "containerd",
    "kubelet",
    "postgres",
    "postgresql",
    "mysqld",
    "mysql",
    "mariadbd",
    "nginx",
    "apache2",
    "httpd",
    "cron",
    "crond",
    "rsyslogd",
    "journald",
    "systemd-journald",
    "auditd",
    "redis-server",
    "mongod",
    "etcd",
    "haproxy",
    "php-fpm",
    "named",
    "sssd",
    "NetworkManager",
    "firewalld",
    "polkitd",
    "dbus-daemon",
    "launchd",
    "java",
];
/// Security services whose stop is defence evasion rather than a plain outage.
const SECURITY_SERVICES: &[&str] = &[
    "auditd",
    "apparmor",
    "selinux",
    "firewalld",
    "ufw",
    "falco",
    "osqueryd",
    "wazuh-agent",
    "clamav-daemon",
    "crowdstrike",
    "falcon-sensor",
    "rsyslog",
    "syslog",
    "systemd-journald",
    "fail2ban",
    "sysmon",
];
/// Commands that `eval "$(X)"` runs as an idiom: X prints shell settings.
const EVAL_IDIOMS: &[&str] = &[
    "ssh-agent",
    "direnv",
    "pyenv",
    "rbenv",
    "nodenv",
    "goenv",
    "jenv",
    "plenv",
    "brew",
    "conda",
    "starship",
    "zoxide",
    "fnm",
    "mise",
    "rtx",
    "asdf",
    "minikube",
    "docker-machine",
    "thefuck",
    "dircolors",
    "keychain",
    "gpg-agent",
    "opam",
    "luarocks",
    "register-python-argcomplete",
    "kubectl",
    "gh",
    "npm",
    "rustup",
    "poetry",
    "pipenv",
    "fzf",
    "atuin",
    "oh-my-posh",
    "hub",
    "nvm",
    "sdk",
];

/// Resolves a raw program word to a program name: `/usr/bin/rm` and `RM.exe` are `rm`; a glob
/// standing for a program path (`/???/r?`, `/usr/bin/r*`) is the program it matches.
fn program_name(word: &str) -> Cow<'_, str> {
    if word.contains(['*', '?', '['])
        && word.contains('/')
        && let Some(p) = glob_program(word)
    {
        return Cow::Borrowed(p);
    }
    let base = match word.as_bytes().iter().rposition(|&b| b == b'/' || b == b'\\') {
        Some(i) => &word[i + 1..],
        None => word,
    };
    let base = base.strip_suffix(".exe").unwrap_or(base);
    if base.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(base.to_ascii_lowercase())
    } else {
        Cow::Borrowed(base)
    }
}

/// The dangerous program a glob path names, trying the usual binary directories.
fn glob_program(word: &str) -> Option<&'static str> {
    const DIRS: &[&str] = &["/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin"];
    const PROGRAMS: &[&str] = &[
        "rm", "sh", "bash", "dd", "nc", "curl", "wget", "python", "python3", "perl", "chmod", "chown", "mkfs", "shred",
        "kill", "killall", "reboot", "shutdown", "find", "base64", "socat", "ncat", "cat",
    ];
    for dir in DIRS {
        for p in PROGRAMS {
            let path = format!("{dir}/{p}");
            if crate::glob::glob_match(word.as_bytes(), path.as_bytes()) {
                return Some(p);
            }
        }
    }
    None
}

/// Wraps the hand-written lexer's output as a parsed script (the fallback when brush cannot
/// parse a string): words, output and input redirections, nested scripts.
pub(crate) fn from_lexer(s: &str) -> Parsed {
    let script = shell::lex(s);
    let texts = script.texts();
    let mut vars = Env::default();
    let commands = script
        .commands(&texts)
        .iter()
        .map(|c| {
            let mut cmd = Cmd {
                join: c.join,
                words: c.words.iter().map(|w| w.to_string()).collect(),
                ..Cmd::default()
            };
            for t in c.redirect_out {
                cmd.redirects.push(Redirect {
                    kind: RedirKind::Write,
                    fd: None,
                    target: t.to_string(),
                });
            }
            for t in c.redirect_in {
                cmd.redirects.push(Redirect {
                    kind: RedirKind::Read,
                    fd: Some(0),
                    target: t.to_string(),
                });
            }
            // `a=rm; $a -rf /`: the lexer keeps `$a`; substitute what earlier commands assigned.
            if cmd.words.iter().all(|w| is_assignment(w)) {
                for w in &cmd.words {
                    if let Some((k, v)) = w.split_once('=') {
                        vars.vars.insert(k.to_string(), v.to_string());
                    }
                }
            } else if !vars.vars.is_empty() && cmd.words.iter().any(|w| w.contains('$')) {
                cmd.words = cmd.words.iter().flat_map(|w| vars.word(&format!("\"{w}\""))).collect();
            }
            cmd
        })
        .collect();
    Parsed {
        commands,
        nested: script.nested.clone(),
        ..Parsed::default()
    }
}

fn is_assignment(word: &str) -> bool {
    let b = word.as_bytes();
    if !b.first().is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') {
        return false;
    }
    match b.iter().position(|&c| c == b'=') {
        Some(eq) => b[..eq].iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_'),
        None => false,
    }
}

/// What the commands before this one did, for rules that span commands.
#[derive(Default)]
struct State {
    /// The pipeline so far reads from a download (`curl … |`) or a decoder.
    pipe_source: Option<&'static str>,
    /// What the previous stage of the pipeline prints, when it is known (`echo …`, `base64 -d`).
    pipe_text: Option<String>,
    /// The previous stage reads a secret (`cat ~/.ssh/id_rsa |`).
    pipe_secret: bool,
    /// Paths the previous stage lists (`ls /`, `find ~`, `echo /`): what `xargs` gets.
    pipe_paths: Vec<String>,
    /// The pipeline has a network client in it (`nc host port`, `telnet`).
    pipe_network: bool,
    /// The pipeline has an interactive shell in it.
    pipe_shell: bool,
    /// Files a fetcher wrote (`curl -o x.sh`, `wget -O x.sh`).
    downloaded: Vec<String>,
    /// The working directory, when a `cd` set it to somewhere that matters.
    cwd: Option<String>,
}

pub(crate) fn scan(parsed: &Parsed, out: &mut Scan) {
    if parsed.forks_itself {
        out.push(
            "service-disruption",
            Risk::Critical,
            "a fork bomb (a function that pipes itself into itself)",
        );
    }
    let mut state = State::default();
    for cmd in &parsed.commands {
        if cmd.join == Join::Sequence {
            state.pipe_source = None;
            state.pipe_text = None;
            state.pipe_secret = false;
            state.pipe_paths.clear();
            state.pipe_network = false;
            state.pipe_shell = false;
        }
        command(cmd, &mut state, out);
    }
}

fn command(cmd: &Cmd, state: &mut State, out: &mut Scan) {
    for (k, v) in &cmd.assigns {
        assignment(k, v, out);
    }
    let all: Vec<&str> = cmd.words.iter().map(String::as_str).collect();
    let (words, privileged, via_xargs) = unwrap_all(&all);
    let name = words.first().map(|w| program_name(w)).unwrap_or(Cow::Borrowed(""));
    let name = name.as_ref();
    let piped = cmd.join == Join::Pipe;
    // `ls / | xargs rm -rf`: the program gets what the previous stage lists as operands.
    let listed: Vec<String> = if via_xargs && piped {
        state.pipe_paths.clone()
    } else {
        Vec::new()
    };
    let mut args: Vec<&str> = words.get(1..).unwrap_or_default().to_vec();
    if !listed.is_empty() {
        let placeholder = args.iter().position(|a| a.contains("{}"));
        args.retain(|a| !a.contains("{}"));
        let at = placeholder.unwrap_or(args.len()).min(args.len());
        for (i, l) in listed.iter().enumerate() {
            args.insert(at + i, l.as_str());
        }
    }
    redirections(cmd, name, &args, state, out);
    if words.is_empty() {
        // `sudo -i`, `sudo -s`: a root shell; `sudo -v`, `sudo -l`: not.
        let shell_flag = all
            .iter()
            .any(|a| matches!(*a, "-i" | "-s" | "--login" | "--shell" | "-is" | "-si"));
        if let Some(p) = privileged
            && shell_flag
        {
            out.push("privilege-escalation", Risk::High, format!("{p} opens a root shell"));
        }
        return;
    }
    // The program is what a download prints: `$(curl …)` as a command runs the download.
    if let Some(inner) = words[0].strip_prefix("$(")
        && inner
            .split_whitespace()
            .next()
            .is_some_and(|p| is_fetcher(&program_name(p)))
    {
        out.push("remote-code", Risk::Critical, "runs what a download prints".to_string());
    }
    if via_xargs && piped && state.pipe_source == Some("download") {
        out.push("remote-code", Risk::Critical, "a download piped into xargs".to_string());
    }
    if let Some(p) = privileged {
        privilege(p, name, &args, out);
    }
    // What flows in on standard input: a here-string or here-document, else the pipe.
    let stdin_text = cmd
        .stdin
        .clone()
        .or_else(|| if piped { state.pipe_text.clone() } else { None });
    let stdin_unknown_download = piped && state.pipe_source.is_some() && stdin_text.is_none();

    // A shell or interpreter reading code from the network, a decoder, or known text.
    let is_shell = SHELLS.contains(&name) && !(name == "busybox" && args.first().is_some_and(|a| !SHELLS.contains(a)));
    let reads_stdin_code = is_shell && shell_reads_stdin(&args)
        || CODE_INTERPRETERS.contains(&name) && interpreter_reads_stdin(name, &args);
    if reads_stdin_code {
        if stdin_unknown_download {
            out.push(
                "remote-code",
                Risk::Critical,
                format!("{} piped into {name}", state.pipe_source.unwrap_or("a download")),
            );
        } else if let Some(text) = &stdin_text {
            if is_shell {
                out.nested(text);
            } else {
                code_findings(name, text, out);
            }
        }
    }
    if is_fetcher(name) {
        state.pipe_source = Some("download");
        if let Some(file) = download_target(name, &args) {
            state.downloaded.push(file.to_string());
        }
    } else if let Some(text) = matches!(
        name,
        "echo" | "printf" | "cat" | "base64" | "basenc" | "xxd" | "rev" | "tr"
    )
    .then(|| {
        expand::filter(
            &words.iter().map(|w| w.to_string()).collect::<Vec<_>>(),
            stdin_text.clone(),
        )
    })
    .flatten()
    {
        if is_decoder(name, &args) {
            state.pipe_source = None;
        }
        state.pipe_text = Some(text);
    } else if is_decoder(name, &args) {
        state.pipe_source = Some("decoded payload");
        state.pipe_text = None;
    } else if !matches!(name, "tee" | "cat" | "base64" | "gzip" | "xz" | "bzip2") || !piped {
        state.pipe_text = None;
    }
    // Running what was just downloaded: `curl -o x.sh URL && sh x.sh`, `./x.sh`.
    let runs_download = state.downloaded.iter().any(|d| {
        same_file(words[0], d)
            || (SHELLS.contains(&name) || CODE_INTERPRETERS.contains(&name))
                && args
                    .iter()
                    .find(|a| !a.starts_with('-'))
                    .is_some_and(|a| same_file(a, d))
    });
    if runs_download {
        out.push(
            "remote-code",
            Risk::Critical,
            format!("runs a downloaded file ({name})"),
        );
    }
    if name == "cd" {
        state.cwd = args.first().map(|d| d.to_string()).filter(|d| scope(d).dangerous());
    }
    let ctx = Ctx {
        piped,
        stdin_text: stdin_text.as_deref(),
        state,
        substituted: &cmd.substituted,
    };
    let reads_secret = check(name, &args, &ctx, out);
    // The pipeline's memory for the commands after this one.
    let dumps_env = matches!(name, "env" | "printenv" | "set" | "export" | "declare") && args.is_empty();
    let reads_files = matches!(
        name,
        "tar" | "zip" | "cat" | "base64" | "xxd" | "od" | "gzip" | "dd" | "pg_dump" | "mysqldump" | "sqlite3"
    ) && !f_is_listing(name, &args);
    state.pipe_secret = reads_secret
        || dumps_env
        || reads_files && name != "cat"
        || name == "cat" && args.iter().any(|a| !a.starts_with('-'))
        || (piped && state.pipe_secret && matches!(name, "base64" | "gzip" | "xz" | "tar" | "openssl" | "xxd" | "od"));
    state.pipe_paths = listed_paths(name, &args, stdin_text.as_deref());
    if matches!(name, "nc" | "ncat" | "netcat" | "telnet" | "socat")
        || name == "openssl" && args.first() == Some(&"s_client")
    {
        state.pipe_network = true;
    }
    if is_shell && (args.is_empty() || args.contains(&"-i")) {
        state.pipe_shell = true;
    }
    if state.pipe_network && state.pipe_shell {
        out.push(
            "remote-code",
            Risk::Critical,
            "a shell wired to a network connection in a pipeline".to_string(),
        );
    }
    if !interesting(name) {
        force_flags(name, &args, out);
    }
    // Credential files read by any program that does more than use them (for grep and kin, the
    // files come after the pattern).
    if !USES_CREDENTIALS.contains(&name) && !TEXT_ONLY.contains(&name) {
        let searches = matches!(name, "grep" | "egrep" | "fgrep" | "rg" | "ag" | "ack");
        let pattern = searches
            .then(|| args.iter().position(|a| !a.starts_with('-')))
            .flatten();
        if searches
            && (args
                .iter()
                .any(|a| a.starts_with('-') && !a.starts_with("--") && (a.contains('r') || a.contains('R')))
                || name == "rg")
            && args
                .iter()
                .enumerate()
                .any(|(i, a)| Some(i) != pattern && paths::secret_dir(a))
        {
            out.push(
                "credential-access",
                Risk::High,
                format!("{name} searches a credentials directory"),
            );
        }
        for (i, w) in args.iter().enumerate() {
            if Some(i) == pattern {
                continue;
            }
            let flag = w.starts_with('-') && !w.contains('=');
            let path = w
                .split_once('=')
                .map_or(*w, |(k, v)| if k.starts_with('-') { v } else { w });
            if !flag && let Some(p) = credential_path(path) {
                out.push("credential-access", Risk::High, format!("{name} {p}"));
            }
        }
    }
}

/// `HISTFILE=/dev/null`, `HISTSIZE=0`: the shell's history is switched off.
fn assignment(k: &str, v: &str, out: &mut Scan) {
    let off = match k {
        "HISTFILE" => v.is_empty() || v == "/dev/null",
        "HISTSIZE" | "HISTFILESIZE" | "SAVEHIST" => v == "0",
        "LD_PRELOAD" => !v.is_empty(),
        _ => false,
    };
    if off {
        let flag = if k == "LD_PRELOAD" {
            "persistence"
        } else {
            "defense-evasion"
        };
        out.push(flag, Risk::High, format!("{k}={v}"));
    }
}

/// Strips variable assignments and wrapper programs (`sudo`, `env`, `nice`, `timeout`, `xargs`,
/// `busybox`…) to find the program that really runs. Returns its words and the privilege wrapper
/// seen, if any.
fn unwrap<'a, 's>(words: &'a [&'s str]) -> (&'a [&'s str], Option<&'static str>) {
    let (w, p, _) = unwrap_all(words);
    (w, p)
}

/// [`unwrap`], also saying whether `xargs` was among the wrappers (its program gets what the
/// previous pipeline stage prints as operands).
fn unwrap_all<'a, 's>(words: &'a [&'s str]) -> (&'a [&'s str], Option<&'static str>, bool) {
    let mut w = words;
    let mut privileged = None;
    let mut xargs = false;
    for _ in 0..16 {
        while w.first().is_some_and(|x| is_assignment(x)) {
            w = &w[1..];
        }
        let Some(first) = w.first() else { break };
        let wrapper = program_name(first);
        let takes_arg: &[&str] = match wrapper.as_ref() {
            "sudo" | "doas" => {
                privileged = Some(if wrapper == "sudo" { "sudo" } else { "doas" });
                &[
                    "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group", "--chdir",
                ]
            }
            "pkexec" | "runas" | "run0" | "runuser" => {
                privileged = Some("pkexec");
                &["--user", "-u", "-g"]
            }
            "env" => &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"],
            "nice" => &["-n", "--adjustment"],
            "ionice" => &["-c", "-n", "-p", "--class", "--classdata"],
            "timeout" => &["-s", "-k", "--signal", "--kill-after"],
            "xargs" => {
                xargs = true;
                &[
                    "-I",
                    "-n",
                    "-P",
                    "-L",
                    "-d",
                    "-E",
                    "-s",
                    "-a",
                    "--replace",
                    "--max-args",
                    "--delimiter",
                ]
            }
            "watch" => &["-n", "--interval", "-d"],
            "stdbuf" => &["-i", "-o", "-e"],
            "strace" | "ltrace" => &["-o", "-e", "-p", "-s"],
            "flock" => &["-w", "-E"],
            "nohup" | "time" | "exec" | "command" | "builtin" | "unbuffer" | "caffeinate" | "setsid" | "chrt"
            | "taskset" | "torsocks" | "proxychains" | "proxychains4" | "nsenter" | "unshare" | "firejail"
            | "systemd-run" | "script" | "faketime" => &[],
            "busybox" | "toybox" if w.get(1).is_some_and(|a| !a.starts_with('-')) => {
                // A multi-call binary runs its applet.
                w = &w[1..];
                continue;
            }
            "chroot" => {
                w = &w[1..];
                if w.first().is_some_and(|x| !x.starts_with('-')) {
                    w = &w[1..];
                }
                continue;
            }
            _ => break,
        };
        // `env` alone prints the environment; a wrapper with nothing after it runs nothing.
        if w.len() == 1 && wrapper == "env" {
            break;
        }
        let is_env = wrapper == "env";
        let is_timeout = wrapper == "timeout";
        let is_flock = wrapper == "flock";
        w = &w[1..];
        while let Some(x) = w.first() {
            if *x == "--" {
                w = &w[1..];
                break;
            }
            if x.starts_with('-') && x.len() > 1 {
                let needs_value = takes_arg.contains(x);
                w = &w[1..];
                if needs_value && !w.is_empty() {
                    w = &w[1..];
                }
            } else if is_env && is_assignment(x) {
                w = &w[1..];
            } else {
                break;
            }
        }
        if (is_timeout || is_flock)
            && w.first()
                .is_some_and(|x| x.chars().next().is_some_and(|c| c.is_ascii_digit() || c == '/'))
        {
            w = &w[1..];
        }
    }
    (w, privileged, xargs)
}

/// `tar -t`, `zip -l`: listing an archive sends nothing.
fn f_is_listing(name: &str, args: &[&str]) -> bool {
    matches!(name, "tar" | "zip")
        && args
            .iter()
            .any(|a| a.starts_with('-') && !a.starts_with("--") && (a.contains('t') || a.contains('l')))
}

/// `sudo` alone is not dangerous (rule 9): what it runs is judged. A root shell is.
fn privilege(wrapper: &str, name: &str, args: &[&str], out: &mut Scan) {
    let root_shell = SHELLS.contains(&name) && !args.contains(&"-c")
        || matches!(name, "su" | "-i" | "-s" | "-" | "")
        || name.starts_with('-');
    if root_shell {
        out.push(
            "privilege-escalation",
            Risk::High,
            format!("{wrapper} opens a root shell"),
        );
    } else {
        out.push("privilege-escalation", Risk::Medium, format!("{wrapper} {name}"));
    }
}

fn shell_reads_stdin(args: &[&str]) -> bool {
    // `sh`, `bash -s`, `sh -` read the script from standard input; `sh script.sh`, `sh -c` do not.
    let mut rest = args
        .iter()
        .skip_while(|a| a.starts_with('-') && **a != "-" && !a.contains('c'));
    match rest.next() {
        None => !args
            .iter()
            .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c')),
        Some(a) => *a == "-" || *a == "-s",
    }
}

fn interpreter_reads_stdin(name: &str, args: &[&str]) -> bool {
    if matches!(name, "awk" | "gawk" | "mawk" | "nawk") {
        return false;
    }
    // `python3`, `python3 -`, `perl -w`: code from standard input; `-m json.tool`, a script
    // file, `-c CODE` are not.
    let it = args.iter();
    for a in it {
        match *a {
            "-" => return true,
            "-m" | "-c" | "-e" | "-E" | "-r" | "--eval" | "-p" | "--print" | "-n" | "-ne" | "-pe" | "-i" => {
                return false;
            }
            a if a.starts_with('-') => {}
            _ => return false,
        }
    }
    true
}

/// What `check` needs to know about a command's place in the script.
struct Ctx<'a> {
    /// The command reads the previous command's output.
    piped: bool,
    /// What it reads on standard input, when known.
    stdin_text: Option<&'a str>,
    state: &'a State,
    /// First programs of its process substitutions.
    substituted: &'a [String],
}

/// Programs `check` has rules for; everything else is skipped without parsing its flags.
fn interesting(name: &str) -> bool {
    matches!(
        name,
        "rm" | "rmdir"
            | "unlink"
            | "shred"
            | "wipe"
            | "srm"
            | "find"
            | "mv"
            | "cp"
            | "install"
            | "ln"
            | "tee"
            | "dd"
            | "mke2fs"
            | "mkswap"
            | "fdisk"
            | "sfdisk"
            | "gdisk"
            | "sgdisk"
            | "cfdisk"
            | "parted"
            | "wipefs"
            | "blkdiscard"
            | "diskpart"
            | "format"
            | "systemctl"
            | "service"
            | "kill"
            | "killall"
            | "pkill"
            | "killall5"
            | "shutdown"
            | "reboot"
            | "halt"
            | "poweroff"
            | "init"
            | "telinit"
            | "iptables"
            | "ip6tables"
            | "iptables-legacy"
            | "iptables-nft"
            | "nft"
            | "ufw"
            | "firewall-cmd"
            | "chmod"
            | "chown"
            | "chgrp"
            | "setfacl"
            | "chattr"
            | "visudo"
            | "passwd"
            | "usermod"
            | "useradd"
            | "userdel"
            | "gpasswd"
            | "setenforce"
            | "eval"
            | "curl"
            | "wget"
            | "nc"
            | "ncat"
            | "netcat"
            | "socat"
            | "telnet"
            | "scp"
            | "rsync"
            | "rclone"
            | "gsutil"
            | "git"
            | "terraform"
            | "tofu"
            | "pulumi"
            | "kubectl"
            | "oc"
            | "helm"
            | "aws"
            | "gcloud"
            | "az"
            | "doctl"
            | "docker"
            | "podman"
            | "ssh"
            | "truncate"
            | "crontab"
            | "history"
            | "unset"
            | "export"
            | "set"
            | "auditctl"
            | "aa-teardown"
            | "aa-disable"
            | "journalctl"
            | "sed"
            | "launchctl"
            | "exec"
            | "su"
            | "dig"
            | "nslookup"
            | "host"
            | "drill"
            | "security"
            | "sqlite3"
            | "tar"
            | "zip"
            | "7z"
            | "mkfifo"
            | "sudo"
            | "ssh-copy-id"
            | "utmpdump"
            | "source"
            | "."
            | "at"
            | "batch"
            | "update-rc.d"
            | "chkconfig"
            | "mount"
            | "umount"
            | "nsenter"
    ) || name.starts_with("mkfs")
        || SHELLS.contains(&name)
        || CODE_INTERPRETERS.contains(&name)
        || DB_CLIENTS.contains(&name)
}

/// Short flags (`-rf`) as a set of ASCII characters, the long flags (`--recursive`) and the
/// operands, of one command's arguments.
struct Flags<'a> {
    short: u128,
    long: Vec<&'a str>,
    operands: Vec<&'a str>,
}

fn flags<'a>(args: &[&'a str]) -> Flags<'a> {
    let mut f = Flags {
        short: 0,
        long: Vec::new(),
        operands: Vec::with_capacity(args.len()),
    };
    let mut end_of_flags = false;
    for a in args {
        if end_of_flags {
            f.operands.push(a);
        } else if *a == "--" {
            end_of_flags = true;
        } else if let Some(long) = a.strip_prefix("--") {
            f.long.push(long.split('=').next().unwrap_or(long));
        } else if a.len() > 1 && a.starts_with('-') {
            for b in a.bytes().skip(1) {
                if b < 128 {
                    f.short |= 1u128 << b;
                }
            }
        } else {
            f.operands.push(a);
        }
    }
    f
}

impl Flags<'_> {
    fn short(&self, c: char) -> bool {
        (c as u32) < 128 && self.short & (1u128 << (c as u32)) != 0
    }

    fn has(&self, short: char, long: &str) -> bool {
        self.short(short) || self.long.contains(&long)
    }

    fn long_starts(&self, prefix: &str) -> bool {
        self.long.iter().any(|l| l.starts_with(prefix))
    }

    fn sub(&self, i: usize) -> &str {
        self.operands.get(i).copied().unwrap_or("")
    }

    /// Rule 8: a dry run, a plan or a help page changes nothing.
    fn dry_run(&self) -> bool {
        self.long.iter().any(|l| {
            matches!(
                *l,
                "dry-run" | "help" | "what-if" | "whatif" | "check" | "simulate" | "plan"
            )
        })
    }
}

fn line(name: &str, args: &[&str]) -> String {
    format!("{name} {}", args.join(" ")).chars().take(120).collect()
}

/// Judges one resolved command. Returns whether it reads a secret (for the next pipeline stage).
fn check(name: &str, args: &[&str], ctx: &Ctx<'_>, out: &mut Scan) -> bool {
    if !interesting(name) {
        return false;
    }
    let f = flags(args);
    if f.dry_run() && !matches!(name, "sh" | "bash" | "eval") {
        return false;
    }
    let l = || line(name, args);
    let cwd_danger = ctx.state.cwd.is_some();
    match name {
        "rm" | "rmdir" | "unlink" => rm(name, &f, ctx, out),
        "shred" | "wipe" | "srm" => {
            for t in &f.operands {
                let s = scope(t);
                if paths::history_file(t) || paths::log_file(t) {
                    out.push("defense-evasion", Risk::High, format!("{name} {t}"));
                } else if s == Scope::Device {
                    out.push("disk", Risk::Critical, format!("{name} {t}"));
                } else if s.dangerous() || paths::credential_path(t).is_some() && t.starts_with('/') {
                    out.push("destructive-fs", Risk::High, format!("{name} {t}"));
                }
            }
        }
        "truncate" => {
            for t in &f.operands {
                if args.iter().any(|a| a.starts_with("-s") || a.starts_with("--size")) && truncates_to_zero(args) {
                    if paths::log_file(t) || paths::history_file(t) {
                        out.push("defense-evasion", Risk::High, format!("truncate {t}"));
                    } else if scope(t).dangerous() && !matches!(scope(t), Scope::Cwd | Scope::Unknown) {
                        out.push("destructive-fs", Risk::High, format!("truncate {t}"));
                    }
                }
            }
        }
        "crontab" => {
            if f.short('r') {
                out.push("destructive-fs", Risk::High, l());
            } else if !f.short('l')
                && !f.short('e')
                && (!f.operands.is_empty() || ctx.piped || ctx.stdin_text.is_some())
            {
                // `crontab FILE`, `… | crontab -`: installs jobs that run on their own.
                out.push("persistence", Risk::High, l());
                if let Some(t) = ctx.stdin_text {
                    out.nested(t);
                }
            }
        }
        "at" | "batch" if ctx.piped || ctx.stdin_text.is_some() => out.push("persistence", Risk::High, l()),
        "find" => return find(args, ctx, out),
        "mv" | "cp" | "install" | "ln" => copy_like(name, &f, args, out),
        "tee" => {
            for t in &f.operands {
                let kind = if f.has('a', "append") {
                    RedirKind::Append
                } else {
                    RedirKind::Write
                };
                write_target(t, kind, ctx.stdin_text, "tee", out);
            }
        }
        "dd" => {
            let of = args.iter().find_map(|a| a.strip_prefix("of="));
            let input = args.iter().find_map(|a| a.strip_prefix("if="));
            if let Some(of) = of {
                match scope(of) {
                    Scope::Device => out.push("disk", Risk::Critical, l()),
                    Scope::System | Scope::Root | Scope::Home | Scope::OtherHome => {
                        out.push("destructive-fs", Risk::High, l())
                    }
                    _ => {}
                }
            }
            if let Some(i) = input
                && credential_path(i).is_some()
            {
                out.push("credential-access", Risk::High, l());
            }
        }
        n if n.starts_with("mkfs")
            || matches!(
                n,
                "mke2fs"
                    | "mkswap"
                    | "wipefs"
                    | "blkdiscard"
                    | "sgdisk"
                    | "sfdisk"
                    | "gdisk"
                    | "cfdisk"
                    | "parted"
                    | "fdisk"
                    | "diskpart"
                    | "format"
            ) =>
        {
            let listing =
                f.short('l') || f.long.contains(&"list") || matches!(n, "parted") && f.operands.contains(&"print");
            let device = f.operands.iter().any(|o| scope(o) == Scope::Device) || matches!(n, "diskpart" | "format");
            if device && !listing {
                out.push("disk", Risk::Critical, l());
            }
        }
        "systemctl" => {
            let user = f.long.contains(&"user");
            let sub = f.sub(0);
            let units: Vec<&str> = f.operands.iter().skip(1).copied().collect();
            let security = units
                .iter()
                .any(|u| SECURITY_SERVICES.iter().any(|s| u.trim_end_matches(".service") == *s));
            match sub {
                "stop" | "disable" | "mask" | "kill" => {
                    if security {
                        out.push("defense-evasion", Risk::High, l());
                    } else if !user {
                        out.push("service-disruption", Risk::High, l());
                    }
                }
                "isolate" | "rescue" | "emergency" => out.push("service-disruption", Risk::High, l()),
                "poweroff" | "reboot" | "halt" | "kexec" => out.push("service-disruption", Risk::Critical, l()),
                "enable" | "link" | "preset" => out.push("persistence", Risk::High, l()),
                _ => {}
            }
        }
        "update-rc.d" | "chkconfig"
            if args
                .iter()
                .any(|a| matches!(*a, "enable" | "defaults" | "on" | "--add")) =>
        {
            out.push("persistence", Risk::High, l())
        }
        "service" => {
            let unit = f.sub(0);
            if matches!(f.sub(1), "stop") {
                if SECURITY_SERVICES.contains(&unit) {
                    out.push("defense-evasion", Risk::High, l());
                } else {
                    out.push("service-disruption", Risk::High, l());
                }
            }
        }
        "launchctl" if matches!(f.sub(0), "load" | "bootstrap" | "enable" | "submit") => {
            out.push("persistence", Risk::High, l())
        }
        "kill" => {
            // Rule 6: `kill -9 PID` is benign; init (1) and every process (-1) are not.
            let targets: Vec<&str> = args
                .iter()
                .filter(|a| !a.starts_with('-') || a.parse::<i64>().is_ok_and(|n| n < 0))
                .copied()
                .collect();
            if targets.iter().any(|t| matches!(*t, "1" | "-1")) || args.contains(&"-1") {
                out.push("service-disruption", Risk::High, l());
            }
        }
        "killall" | "pkill" | "killall5" => {
            let sigkill = args
                .iter()
                .any(|a| matches!(*a, "-9" | "-KILL" | "-SIGKILL" | "--signal=KILL" | "--signal=9"))
                || args
                    .windows(2)
                    .any(|w| matches!(w[0], "-s" | "--signal") && (w[1].contains("KILL") || w[1] == "9"));
            let daemon = f.operands.iter().any(|o| {
                let o = o.rsplit('/').next().unwrap_or(o);
                DAEMONS.contains(&o)
                    || o.len() > 3 && o.ends_with('d') && o.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            let reload = args.iter().any(|a| {
                matches!(
                    *a,
                    "-HUP" | "-SIGHUP" | "-1" | "-USR1" | "-USR2" | "-0" | "-WINCH" | "-s"
                ) && !sigkill
            });
            if name == "killall5" || daemon && (sigkill || !reload) {
                out.push("service-disruption", Risk::High, l());
            }
        }
        "shutdown" | "reboot" | "halt" | "poweroff" if !f.short('k') && !f.short('c') => {
            out.push("service-disruption", Risk::Critical, l());
        }
        "init" | "telinit" if matches!(f.sub(0), "0" | "6" | "1" | "s" | "S") => {
            out.push("service-disruption", Risk::Critical, l())
        }
        "iptables" | "ip6tables" | "iptables-legacy" | "iptables-nft" => {
            let policy_accept = args.windows(2).any(|w| matches!(w[0], "-P" | "--policy")) && args.contains(&"ACCEPT");
            if f.has('F', "flush")
                || f.has('X', "delete-chain")
                || f.has('D', "delete")
                || f.has('Z', "zero")
                || policy_accept
            {
                out.push("firewall", Risk::High, l());
            }
        }
        "nft" if matches!(f.sub(0), "flush" | "delete") => out.push("firewall", Risk::High, l()),
        "ufw" if matches!(f.sub(0), "disable" | "delete" | "reset") => out.push("firewall", Risk::High, l()),
        "firewall-cmd"
            if f.long
                .iter()
                .any(|l| l.starts_with("remove") || *l == "panic-off" || *l == "set-default-zone") =>
        {
            out.push("firewall", Risk::High, l())
        }
        "chmod" => chmod(&f, out),
        "chown" | "chgrp" => {
            let owner = f.sub(0);
            let to_root = owner == "root" || owner.starts_with("root:") || owner == "0" || owner.starts_with("0:");
            let targets = &f.operands[1.min(f.operands.len())..];
            let system = targets
                .iter()
                .any(|p| matches!(scope(p), Scope::Root | Scope::System | Scope::OtherHome | Scope::Home));
            if system && (f.has('R', "recursive") || targets.iter().any(|p| paths::is_system(p)))
                || to_root && !targets.is_empty()
            {
                out.push("permissions", Risk::High, l());
            }
        }
        "usermod" | "gpasswd" => {
            let groups = args.iter().any(|a| {
                matches!(*a, "sudo" | "wheel" | "root" | "admin" | "docker")
                    || a.contains("sudo")
                    || a.contains("wheel")
            });
            if groups || f.long.contains(&"password") || f.short('o') {
                out.push("privilege-escalation", Risk::High, l());
            }
        }
        "useradd"
            if f.short('o')
                || args
                    .iter()
                    .any(|a| *a == "0" || a.contains("sudo") || a.contains("wheel")) =>
        {
            out.push("privilege-escalation", Risk::High, l())
        }
        "userdel" | "visudo" | "passwd" | "setfacl" | "chattr"
            if !(name == "passwd" && (f.short('S') || f.short('l') && f.operands.is_empty())) =>
        {
            out.push("permissions", Risk::High, l());
        }
        "setenforce" if matches!(f.sub(0), "0" | "permissive" | "Permissive") => {
            out.push("defense-evasion", Risk::High, l())
        }
        "auditctl" if f.short('D') || args.windows(2).any(|w| w[0] == "-e" && w[1] == "0") => {
            out.push("defense-evasion", Risk::High, l())
        }
        "aa-teardown" | "aa-disable" => out.push("defense-evasion", Risk::High, l()),
        "journalctl" if f.long_starts("vacuum") || f.long.contains(&"rotate") && f.long_starts("vacuum") => {
            out.push("defense-evasion", Risk::High, l())
        }
        "history" if f.short('c') || f.short('w') && f.operands.contains(&"/dev/null") || f.short('d') => {
            out.push("defense-evasion", Risk::High, l())
        }
        "unset" if args.contains(&"HISTFILE") => out.push("defense-evasion", Risk::High, l()),
        "export" | "declare" | "typeset" => {
            for a in args {
                if let Some((k, v)) = a.split_once('=') {
                    assignment(k, v, out);
                    if k == "PROMPT_COMMAND" && !v.is_empty() {
                        out.nested(v);
                        if v.contains("curl") || v.contains("wget") || v.contains("/tmp/") {
                            out.push("persistence", Risk::High, format!("PROMPT_COMMAND={v}"));
                        }
                    }
                }
            }
        }
        "set" if args.windows(2).any(|w| w[0] == "+o" && w[1] == "history") => {
            out.push("defense-evasion", Risk::High, l())
        }
        "sed" if f.short('i') || f.long_starts("in-place") => {
            // Editing system configuration in place: SELinux off, sudoers, sshd.
            let targets = f.operands.iter().skip(1);
            for t in targets {
                if t.starts_with("/etc/selinux")
                    || args
                        .iter()
                        .any(|a| a.contains("SELINUX=disabled") || a.contains("SELINUX=permissive"))
                {
                    out.push("defense-evasion", Risk::High, l());
                } else if paths::autostart(t) || t.starts_with("/etc/ssh/sshd_config") || t.starts_with("/etc/pam.d") {
                    out.push("persistence", Risk::High, l());
                } else if paths::log_file(t) {
                    out.push("defense-evasion", Risk::High, l());
                }
            }
        }
        "utmpdump" => {}
        "eval" => eval(args, ctx, out),
        "exec" => {}
        "su" => {
            if let Some(pos) = args.iter().position(|a| *a == "-c" || *a == "--command") {
                if let Some(script) = args.get(pos + 1) {
                    out.nested(script);
                }
            } else {
                out.push("privilege-escalation", Risk::High, l());
            }
        }
        "curl" => curl(&f, args, ctx, out),
        "wget" => {
            let posts = f.long.iter().any(|l| matches!(*l, "post-file" | "body-file"));
            let file = args.iter().find_map(|a| {
                a.strip_prefix("--post-file=")
                    .or_else(|| a.strip_prefix("--body-file="))
            });
            if posts && file.is_none_or(|p| credential_path(p).is_some() || paths::is_system(p) || paths::secret_dir(p))
            {
                out.push("exfiltration", Risk::High, l());
            }
        }
        "nc" | "ncat" | "netcat" | "socat" | "telnet" => network(name, &f, args, ctx, out),
        "dig" | "nslookup" | "host" | "drill" => {
            // DNS exfiltration: data from a command or a variable as a label of a queried name.
            let leaks = f.operands.iter().any(|o| {
                (o.contains("$(") || o.contains('`') || o.contains('$')) && o.contains(").")
                    || o.starts_with('$') && o.contains('.') && !o.starts_with("$(")
            });
            if leaks {
                out.push("exfiltration", Risk::High, l());
            }
        }
        "scp" | "rsync" => {
            sync(name, &f, out);
            let remote = |p: &str| p.contains(':') && !p.starts_with('/') && !p.starts_with("./");
            let sources = f.operands.len().saturating_sub(1);
            if f.operands.last().is_some_and(|d| remote(d)) && f.operands[..sources].iter().any(|s| secret_source(s)) {
                out.push("exfiltration", Risk::High, l());
            }
        }
        "tar" | "zip" | "7z" => {
            let reads = f
                .operands
                .iter()
                .any(|o| secret_source(o) && !o.ends_with(".tgz") && !o.ends_with(".tar.gz"));
            if reads && !f.short('t') && !f.short('x') {
                out.push("credential-access", Risk::High, l());
                return true;
            }
        }
        "rclone"
            if (matches!(
                f.sub(0),
                "purge" | "delete" | "deletefile" | "rmdir" | "rmdirs" | "cleanup"
            ) || f.sub(0) == "sync"
                || f.sub(0) == "move" && f.long.contains(&"delete-empty-src-dirs")) =>
        {
            out.push("destructive-fs", Risk::High, l());
        }
        "gsutil" if matches!(f.sub(0), "rm" | "rb") || f.sub(0) == "rsync" && f.short('d') => {
            out.push("destructive-fs", Risk::High, l())
        }
        "git" => git(args, out),
        "terraform" | "tofu" | "pulumi" => {
            let sub = f.sub(0);
            if sub == "destroy" || args.contains(&"-destroy") && sub == "apply" {
                out.push("infra-destroy", Risk::Critical, l());
            } else if matches!(sub, "apply" | "up" | "import" | "state")
                && (args
                    .iter()
                    .any(|a| a.starts_with("-auto-approve") || *a == "--yes" || *a == "-y" || *a == "--auto-approve")
                    || sub == "state" && f.sub(1) == "rm")
            {
                out.push("infra-destroy", Risk::High, l());
            }
        }
        "kubectl" | "oc" => kubectl(&f, args, out),
        "helm" if matches!(f.sub(0), "uninstall" | "delete" | "del") => out.push("infra-destroy", Risk::High, l()),
        "aws" | "gcloud" | "az" | "doctl" => cloud(name, &f, args, out),
        "docker" | "podman" => docker(&f, args, out),
        "ssh" => nested_command(
            args,
            &[
                "-p", "-i", "-l", "-o", "-F", "-J", "-b", "-c", "-D", "-E", "-e", "-L", "-m", "-O", "-Q", "-R", "-S",
                "-W", "-w", "-B", "-I",
            ],
            false,
            out,
        ),
        "security"
            if matches!(
                f.sub(0),
                "find-generic-password" | "find-internet-password" | "dump-keychain" | "export"
            ) && (f.short('w') || f.short('g') || f.sub(0) == "dump-keychain" || f.sub(0) == "export") =>
        {
            out.push("credential-access", Risk::High, l());
            return true;
        }
        "mkfifo" | "mount" | "umount" | "nsenter" | "ssh-copy-id"
            if name == "nsenter"
                && args
                    .windows(2)
                    .any(|w| matches!(w[0], "-t" | "--target") && w[1] == "1") =>
        {
            out.push("privilege-escalation", Risk::High, l());
        }
        _ => {}
    }
    let mut reads_secret = false;
    if matches!(
        name,
        "cat"
            | "less"
            | "more"
            | "head"
            | "tail"
            | "base64"
            | "xxd"
            | "od"
            | "strings"
            | "grep"
            | "tar"
            | "cp"
            | "sqlite3"
            | "gpg"
    ) {
        reads_secret = f.operands.iter().any(|o| credential_path(o).is_some());
    }
    if SHELLS.contains(&name) {
        shell(name, args, ctx, out);
    }
    if matches!(name, "source" | ".")
        && (args.iter().any(|a| a.starts_with("http")) || ctx.substituted.iter().any(|p| is_fetcher(&program_name(p))))
    {
        out.push("remote-code", Risk::Critical, l());
    }
    if CODE_INTERPRETERS.contains(&name) {
        interpreter(name, args, &f, ctx, out);
    }
    if DB_CLIENTS.contains(&name) {
        for w in args.windows(2) {
            if matches!(w[0], "-c" | "-e" | "--command" | "--execute" | "-Q" | "--eval") {
                out.nested(w[1]);
            }
        }
        if name == "sqlite3" {
            for o in f.operands.iter().skip(1) {
                out.nested(o);
            }
            reads_secret |= f.operands.first().is_some_and(|o| credential_path(o).is_some());
            if reads_secret {
                out.push("credential-access", Risk::High, l());
            }
        }
        if let Some(t) = ctx.stdin_text {
            out.nested(t);
        }
    }
    let _ = cwd_danger;
    reads_secret
}

fn truncates_to_zero(args: &[&str]) -> bool {
    args.iter()
        .any(|a| matches!(*a, "-s0" | "-s" | "--size=0" | "-s=0") || a.ends_with('0') && a.starts_with("-s"))
        && !args.iter().any(|a| {
            a.chars().filter(|c| c.is_ascii_digit()).any(|c| c != '0')
                && (a.starts_with("-s") || a.starts_with("--size"))
        })
        || args.windows(2).any(|w| matches!(w[0], "-s" | "--size") && w[1] == "0")
}

fn rm(name: &str, f: &Flags<'_>, ctx: &Ctx<'_>, out: &mut Scan) {
    let recursive = f.has('r', "recursive") || f.has('R', "recursive") || name == "rmdir";
    let force = f.has('f', "force");
    let no_preserve = f.long.contains(&"no-preserve-root");
    for target in &f.operands {
        let s = match (scope(target), &ctx.state.cwd) {
            // `cd ~ && rm -rf .`: the working directory is where the `cd` went.
            (Scope::Cwd, Some(cwd)) => scope(cwd),
            (s, _) => s,
        };
        if paths::history_file(target) || paths::log_file(target) {
            out.push("defense-evasion", Risk::High, format!("{name} {target}"));
            continue;
        }
        let risk = match s {
            _ if no_preserve => Some(Risk::Critical),
            Scope::Root | Scope::Home if recursive || force || target.ends_with('*') => Some(Risk::Critical),
            Scope::System | Scope::OtherHome | Scope::Cwd | Scope::Parent | Scope::Unknown if recursive => {
                Some(Risk::High)
            }
            Scope::System | Scope::Device => Some(Risk::High),
            Scope::Root | Scope::Home => Some(Risk::High),
            _ => None,
        };
        if let Some(risk) = risk {
            out.push("destructive-fs", risk, format!("{name} {} {target}", short_flags(f)));
        }
    }
}

fn short_flags(f: &Flags<'_>) -> String {
    let s: String = (0u8..128)
        .filter(|b| f.short & (1u128 << b) != 0)
        .map(char::from)
        .collect();
    if s.is_empty() { String::new() } else { format!("-{s}") }
}

/// `find PATH … -delete`, `-exec rm {} \;`, `-exec CMD`: what runs on what the search finds.
fn find(args: &[&str], ctx: &Ctx<'_>, out: &mut Scan) -> bool {
    let roots: Vec<&str> = args
        .iter()
        .take_while(|a| !a.starts_with('-') && !a.starts_with('(') && **a != "!")
        .copied()
        .collect();
    let roots: Vec<&str> = if roots.is_empty() { vec!["."] } else { roots };
    let scope_of = |r: &str| match (scope(r), &ctx.state.cwd) {
        (Scope::Cwd, Some(cwd)) => scope(cwd),
        (Scope::Cwd, None) => Scope::Local,
        (s, _) => s,
    };
    let wide = roots.iter().any(|r| scope_of(r).dangerous());
    let l = || line("find", args);
    if args.contains(&"-delete") && wide {
        let log = roots.iter().any(|r| paths::log_file(r));
        out.push(
            if log { "defense-evasion" } else { "destructive-fs" },
            if roots.iter().any(|r| matches!(scope_of(r), Scope::Root | Scope::Home)) {
                Risk::Critical
            } else {
                Risk::High
            },
            l(),
        );
    }
    // `-exec CMD … {} ;`: CMD runs with the found paths (the roots stand for them).
    let mut i = 0;
    while i < args.len() {
        if matches!(args[i], "-exec" | "-execdir" | "-ok" | "-okdir") {
            let end = args[i + 1..]
                .iter()
                .position(|a| matches!(*a, ";" | "\\;" | "+"))
                .map_or(args.len(), |p| i + 1 + p);
            let inner: Vec<String> = args[i + 1..end]
                .iter()
                .flat_map(|a| {
                    if a.contains("{}") {
                        // What is found under a root the project owns is the project's.
                        roots
                            .iter()
                            .map(|r| {
                                if scope_of(r).dangerous() {
                                    a.replace("{}", r)
                                } else {
                                    a.replace("{}", "./found")
                                }
                            })
                            .collect::<Vec<_>>()
                    } else {
                        vec![a.to_string()]
                    }
                })
                .collect();
            if let Some(first) = inner.first() {
                let prog = program_name(first);
                // `find . -exec /bin/sh -p \;`: a shell run by find (GTFOBins), not a script.
                if SHELLS.contains(&prog.as_ref()) && !inner.iter().any(|a| a == "-c") {
                    out.push(
                        "privilege-escalation",
                        Risk::High,
                        format!("find -exec {}", inner.join(" ")),
                    );
                }
                let script = inner.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ");
                out.nested(&script);
            }
            i = end;
        }
        i += 1;
    }
    false
}

/// `mv`/`cp`/`install`/`ln`: the destination is written; moving system paths away loses them.
fn copy_like(name: &str, f: &Flags<'_>, args: &[&str], out: &mut Scan) {
    let l = || line(name, args);
    let Some(dest) = f.operands.last() else { return };
    let sources = &f.operands[..f.operands.len().saturating_sub(1)];
    if name == "mv"
        && (*dest == "/dev/null"
            || sources.iter().any(|p| {
                matches!(scope(p), Scope::Root | Scope::Home | Scope::System | Scope::OtherHome)
                    && !paths::log_file(dest)
            }))
    {
        out.push("destructive-fs", Risk::High, l());
        return;
    }
    if name == "ln" {
        if sources.contains(&"/dev/null") && paths::history_file(dest) {
            out.push("defense-evasion", Risk::High, l());
        }
        return;
    }
    if sources.contains(&"/dev/null") && scope(dest).dangerous() {
        out.push("destructive-fs", Risk::High, l());
    } else if paths::autostart(dest) || dest.ends_with('/') && paths::autostart(&format!("{dest}x")) {
        out.push("persistence", Risk::High, l());
    } else if paths::log_file(dest) && name == "mv" {
        out.push("defense-evasion", Risk::High, l());
    } else if name == "cp" && sources.iter().any(|s| credential_path(s).is_some())
        || f.has('r', "recursive") && sources.iter().any(|s| paths::secret_dir(s))
    {
        out.push("credential-access", Risk::High, l());
    }
}

/// A file written with `>`, `>>` or `tee`: truncation of what matters, persistence through
/// start-up files, log wiping.
fn write_target(t: &str, kind: RedirKind, text: Option<&str>, how: &str, out: &mut Scan) {
    let what = format!("{how} {t}");
    if paths::autostart(t) {
        out.push("persistence", Risk::High, what);
        if let Some(text) = text {
            out.nested(text);
        }
        return;
    }
    if paths::shell_rc(t) {
        match kind {
            RedirKind::Write if text.is_none_or(|t| t.trim().is_empty()) => {
                out.push("destructive-fs", Risk::High, what)
            }
            _ => {
                if let Some(text) = text {
                    out.nested(text);
                    if rc_payload(text) {
                        out.push("persistence", Risk::High, what);
                    }
                } else {
                    // Unknown text into a start-up file.
                    out.push("persistence", Risk::High, what);
                }
            }
        }
        return;
    }
    if paths::log_file(t) || paths::history_file(t) {
        if kind == RedirKind::Write {
            out.push("defense-evasion", Risk::High, what);
        }
        return;
    }
    if kind == RedirKind::Write || kind == RedirKind::ReadWrite {
        match scope(t) {
            Scope::Device => out.push("disk", Risk::Critical, what),
            Scope::System | Scope::Root | Scope::OtherHome => out.push("destructive-fs", Risk::High, what),
            Scope::Home if t.contains('/') => out.push("destructive-fs", Risk::High, what),
            _ => {}
        }
    } else if kind == RedirKind::Append && t.starts_with("/etc/") {
        out.push("persistence", Risk::High, what);
    }
}

/// Code appended to a shell start-up file that does more than set up the shell.
fn rc_payload(text: &str) -> bool {
    let t = text.trim();
    [
        "curl",
        "wget",
        "nc ",
        "/tmp/",
        "/dev/tcp",
        "base64",
        "nohup",
        " &",
        "&\n",
        "LD_PRELOAD",
        "PROMPT_COMMAND",
        "alias sudo",
        "alias ssh",
        "alias su=",
        "alias ls=",
        "/.cache/",
        "python -c",
        "python3 -c",
        "bash -i",
    ]
    .iter()
    .any(|p| t.contains(p))
        || t.ends_with('&')
}

fn chmod(f: &Flags<'_>, out: &mut Scan) {
    let mode = f.sub(0);
    let targets = &f.operands[1.min(f.operands.len())..];
    let digits = mode.chars().all(|c| c.is_ascii_digit()) && mode.len() >= 3;
    let setuid = mode.contains("+s")
        || mode.contains("u+s")
        || mode.contains("g+s")
        || digits && mode.len() == 4 && matches!(mode.chars().next(), Some('4' | '2' | '6'));
    let world_writable = digits && matches!(mode.chars().last(), Some('7' | '6' | '3' | '2'))
        || mode.contains("o+w")
        || mode.contains("a+w")
        || mode.contains("a+rwx")
        || mode == "+w"
        || mode.contains("o+rwx");
    let nothing = digits && mode.trim_start_matches('0').is_empty();
    let wide = targets
        .iter()
        .any(|t| matches!(scope(t), Scope::Root | Scope::System | Scope::Home | Scope::OtherHome));
    let line = format!("chmod {mode} {}", targets.join(" "));
    if setuid && !targets.is_empty() {
        out.push("privilege-escalation", Risk::High, line);
    } else if (world_writable || nothing || f.has('R', "recursive") && !digits_safe(mode)) && wide {
        out.push("permissions", Risk::High, line);
    }
}

fn digits_safe(mode: &str) -> bool {
    matches!(
        mode,
        "755" | "644" | "750" | "700" | "600" | "640" | "u+x" | "+x" | "go-w" | "o-w" | "g-w" | "u+rwx" | "go-rwx"
    )
}

fn eval(args: &[&str], ctx: &Ctx<'_>, out: &mut Scan) {
    let text = args.join(" ");
    if text.trim().is_empty() {
        return;
    }
    // `eval "$(ssh-agent -s)"`: the substitution was not evaluated statically (it stays `$(…)`).
    if let Some(inner) = text.trim().strip_prefix("$(").and_then(|t| t.strip_suffix(')')) {
        let first = inner
            .split_whitespace()
            .next()
            .map(|p| program_name(p).into_owned())
            .unwrap_or_default();
        if is_fetcher(&first) {
            out.push("remote-code", Risk::Critical, format!("eval of a download ({first})"));
        } else if !EVAL_IDIOMS.contains(&first.as_str())
            && !inner.contains(" init")
            && !inner.contains("hook")
            && !inner.contains("shellenv")
            && !inner.contains("env")
        {
            out.push("remote-code", Risk::High, format!("eval of generated code ({first})"));
        }
        return;
    }
    if text.starts_with('$') && !text.contains(' ') {
        // `eval "$PAYLOAD"`: code nobody can read here.
        out.push("remote-code", Risk::High, format!("eval {text}"));
        return;
    }
    let _ = ctx;
    out.nested(&text);
}

fn shell(name: &str, args: &[&str], ctx: &Ctx<'_>, out: &mut Scan) {
    // `sh -c SCRIPT`: the script runs too.
    if let Some(pos) = args
        .iter()
        .position(|a| *a == "-c" || (a.starts_with('-') && !a.starts_with("--") && a.ends_with('c')))
        && let Some(script) = args.get(pos + 1)
    {
        out.nested(script);
        if let Some(inner) = script.trim().strip_prefix("$(")
            && inner
                .split_whitespace()
                .next()
                .is_some_and(|p| is_fetcher(&program_name(p)))
        {
            out.push("remote-code", Risk::Critical, format!("{name} -c runs a download"));
        }
    }
    // `bash <(curl …)`: process substitution feeding a download to a shell.
    if ctx.substituted.iter().any(|p| is_fetcher(&program_name(p))) {
        out.push(
            "remote-code",
            Risk::Critical,
            format!("{name} runs a download (process substitution)"),
        );
    }
}

fn interpreter(name: &str, args: &[&str], f: &Flags<'_>, ctx: &Ctx<'_>, out: &mut Scan) {
    if ctx.substituted.iter().any(|p| is_fetcher(&program_name(p))) {
        out.push(
            "remote-code",
            Risk::Critical,
            format!("{name} runs a download (process substitution)"),
        );
    }
    let code = args
        .windows(2)
        .find(|w| {
            matches!(
                w[0],
                "-c" | "-e" | "-E" | "-r" | "--eval" | "-p" | "-pe" | "-ne" | "-le" | "-lne" | "-pi"
            )
        })
        .map(|w| w[1])
        .or_else(|| {
            args.iter()
                .find_map(|a| a.strip_prefix("-e").filter(|r| !r.is_empty() && name == "perl"))
        })
        .or_else(|| {
            matches!(name, "awk" | "gawk" | "mawk" | "nawk")
                .then(|| f.operands.first().copied())
                .flatten()
        });
    // `ruby -rsocket -e …`: the required library is part of the code.
    let required: String = args
        .iter()
        .filter_map(|a| a.strip_prefix("-r").or_else(|| a.strip_prefix("-M")))
        .collect::<Vec<_>>()
        .join(" ");
    if let Some(code) = code {
        let code = if required.is_empty() {
            code.to_string()
        } else {
            format!("{required} {code}")
        };
        code_findings(name, &code, out);
    }
}

fn code_findings(name: &str, code: &str, out: &mut Scan) {
    let found = code::inspect(code);
    for c in &found.commands {
        out.nested(c);
    }
    if let Some(d) = found.destroys {
        out.push("destructive-fs", Risk::High, format!("{name}: {d}"));
    }
    if found.reverse_shell {
        out.push(
            "remote-code",
            Risk::Critical,
            format!("{name}: a socket wired to a shell"),
        );
    }
    if found.runs_download {
        out.push("remote-code", Risk::Critical, format!("{name}: runs code it downloads"));
    }
    // Python and friends read code from stdin: scan a shell command line in it too.
    if found.commands.is_empty() && code.contains("rm -rf") {
        out.nested(code);
    }
}

fn curl(f: &Flags<'_>, args: &[&str], ctx: &Ctx<'_>, out: &mut Scan) {
    // What curl sends: `-d @file`, `-F name=@file`, `-T file`, `--data-binary @-` (standard input).
    let mut sent: Vec<&str> = Vec::new();
    for w in args.windows(2) {
        if matches!(
            w[0],
            "-d" | "--data" | "--data-binary" | "--data-urlencode" | "--data-raw" | "--json"
        ) && let Some(file) = w[1].strip_prefix('@')
        {
            sent.push(file);
        }
        if matches!(w[0], "-F" | "--form")
            && let Some((_, v)) = w[1].split_once("=@").or_else(|| w[1].split_once("=<"))
        {
            sent.push(v.split(';').next().unwrap_or(v));
        }
        if matches!(w[0], "-T" | "--upload-file") {
            sent.push(w[1]);
        }
    }
    for a in args {
        for p in ["--data-binary=@", "-d@", "--data=@", "--upload-file="] {
            if let Some(file) = a.strip_prefix(p) {
                sent.push(file);
            }
        }
    }
    let secret = |p: &str| {
        secret_source(p) || paths::is_system(p) || p.starts_with("/etc/") || p == "-" && ctx.state.pipe_secret
    };
    if sent.iter().any(|p| secret(p)) {
        out.push("exfiltration", Risk::High, line("curl", args));
    }
    let _ = f;
}

fn network(name: &str, f: &Flags<'_>, args: &[&str], ctx: &Ctx<'_>, out: &mut Scan) {
    let l = || line(name, args);
    let exec = match name {
        "socat" => args.iter().any(|a| {
            let u = a.to_ascii_uppercase();
            u.starts_with("EXEC:") || u.starts_with("SYSTEM:") || u.contains(",EXEC:")
        }),
        "telnet" => false,
        _ => f.short('e') || f.short('c') || f.long.iter().any(|l| matches!(*l, "exec" | "sh-exec" | "lua-exec")),
    };
    if exec {
        out.push("remote-code", Risk::Critical, l());
        return;
    }
    // Data piped into a network client: what the previous stage read leaves the machine.
    let local = f
        .operands
        .iter()
        .any(|o| matches!(*o, "localhost" | "127.0.0.1" | "::1"));
    if ctx.piped && !f.short('z') && !f.short('l') && ctx.state.pipe_secret && !local {
        out.push("exfiltration", Risk::High, l());
    }
}

fn sync(name: &str, f: &Flags<'_>, out: &mut Scan) {
    if name != "rsync" {
        return;
    }
    let deletes = f
        .long
        .iter()
        .any(|l| l.starts_with("delete") || *l == "remove-source-files");
    if !deletes || f.short('n') {
        return;
    }
    if let Some(dest) = f.operands.last() {
        let local_dest = dest.rsplit_once(':').map_or(*dest, |(_, p)| p);
        if matches!(
            scope(local_dest),
            Scope::Root | Scope::Home | Scope::System | Scope::OtherHome
        ) {
            out.push("destructive-fs", Risk::High, format!("rsync --delete to {dest}"));
        }
    }
}

fn git(args: &[&str], out: &mut Scan) {
    let l = || line("git", args);
    // Global options before the subcommand, some with a value: `git -C repo push -f`.
    let mut rest = args;
    while let Some(first) = rest.first() {
        if matches!(*first, "-C" | "-c" | "--git-dir" | "--work-tree" | "--namespace") {
            rest = rest.get(2..).unwrap_or_default();
        } else if first.starts_with('-') {
            rest = &rest[1..];
        } else {
            break;
        }
    }
    let f = &flags(rest);
    let protected = |r: &str| {
        let r = r.trim_start_matches('+').trim_start_matches(':');
        let dest = r.rsplit(':').next().unwrap_or(r);
        let dest = dest.trim_start_matches("refs/heads/");
        matches!(
            dest,
            "main" | "master" | "trunk" | "develop" | "production" | "prod" | "release"
        )
    };
    let dangerous = match f.sub(0) {
        "push" => {
            let refs: Vec<&str> = f.operands.iter().skip(2).copied().collect();
            let force =
                f.has('f', "force") || f.long.contains(&"force-with-lease") || refs.iter().any(|r| r.starts_with('+'));
            let delete = f.long.contains(&"delete") || f.short('d') || refs.iter().any(|r| r.starts_with(':'));
            let all = f.long.iter().any(|l| matches!(*l, "all" | "mirror" | "prune"));
            // No refspec: the current branch, which may be main.
            let unknown = refs.is_empty();
            (force || delete) && (all || unknown && !delete || refs.iter().any(|r| protected(r)))
                || f.long.contains(&"mirror")
        }
        "reset" => f.long.contains(&"hard"),
        "clean" => f.has('f', "force") && !f.short('n') && !f.long.contains(&"dry-run"),
        "branch" => {
            (f.short('D') || f.short('d') && f.short('f') || f.long.contains(&"delete") && f.long.contains(&"force"))
                && (f.operands.iter().skip(1).any(|b| protected(b)) || f.short('D'))
        }
        "checkout" => {
            !f.short('b') && !f.short('B') && f.operands.iter().skip(1).any(|p| *p == "." || *p == "*" || *p == ":/")
        }
        "restore" => f.operands.iter().skip(1).any(|p| *p == "." || *p == "*" || *p == ":/"),
        "filter-branch" | "filter-repo" => true,
        "reflog" => f.sub(1) == "expire",
        "gc" => f.long.iter().any(|l| l.starts_with("prune")),
        "stash" => matches!(f.sub(1), "clear" | "drop"),
        "update-ref" => f.short('d'),
        "rebase" => false,
        _ => false,
    };
    if dangerous {
        out.push("destructive-git", Risk::High, l());
    }
}

fn kubectl(f: &Flags<'_>, args: &[&str], out: &mut Scan) {
    let l = || line("kubectl", args);
    // The subcommand may follow options with values (`kubectl -n prod delete …`).
    let ops: Vec<&str> = operands_after_options(
        args,
        &[
            "-n",
            "--namespace",
            "--context",
            "--kubeconfig",
            "-l",
            "--selector",
            "-o",
            "--output",
            "--cluster",
            "--user",
            "-f",
            "--filename",
        ],
    );
    let Some(pos) = ops
        .iter()
        .position(|s| matches!(*s, "delete" | "drain" | "cordon" | "replace" | "scale"))
    else {
        return;
    };
    let what = ops.get(pos + 1).copied().unwrap_or("");
    let all = f.long.iter().any(|l| matches!(*l, "all" | "all-namespaces")) || f.short('A');
    let heavy = matches!(
        what.split('/').next().unwrap_or(what),
        "ns" | "namespace"
            | "namespaces"
            | "node"
            | "nodes"
            | "pv"
            | "pvc"
            | "persistentvolumeclaim"
            | "persistentvolumeclaims"
            | "persistentvolume"
            | "crd"
            | "crds"
            | "customresourcedefinition"
            | "all"
            | "deployment"
            | "deployments"
            | "deploy"
            | "statefulset"
            | "statefulsets"
            | "sts"
            | "daemonset"
            | "ds"
            | "secret"
            | "secrets"
            | "service"
            | "svc"
    );
    match ops[pos] {
        "delete" if all || heavy || args.iter().any(|a| *a == "-f" || a.starts_with("--filename")) => {
            out.push("infra-destroy", Risk::High, l())
        }
        "drain" | "cordon" => out.push("infra-destroy", Risk::High, l()),
        "scale" if args.contains(&"--replicas=0") => out.push("infra-destroy", Risk::High, l()),
        _ => {}
    }
}

fn operands_after_options<'a>(args: &[&'a str], with_value: &[&str]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a.starts_with('-') {
            if with_value.contains(&a) {
                i += 1;
            }
        } else {
            out.push(a);
        }
        i += 1;
    }
    out
}

fn cloud(name: &str, f: &Flags<'_>, args: &[&str], out: &mut Scan) {
    let l = || line(name, args);
    let ops = &f.operands;
    if name == "aws" && ops.first() == Some(&"s3") {
        let sub = ops.get(1).copied().unwrap_or("");
        if sub == "rm" && f.has('r', "recursive") || sub == "rb" || sub == "sync" && f.long.contains(&"delete") {
            out.push("destructive-fs", Risk::High, l());
        }
        return;
    }
    let destroys = ops.iter().any(|s| {
        s.starts_with("delete")
            || s.starts_with("terminate")
            || s.starts_with("remove")
            || *s == "rb"
            || *s == "purge"
            || s.starts_with("destroy")
    });
    if destroys {
        out.push("infra-destroy", Risk::High, l());
    }
}

fn docker(f: &Flags<'_>, args: &[&str], out: &mut Scan) {
    let l = || line("docker", args);
    let sub = f.sub(0);
    if matches!(sub, "rm" | "rmi")
        || (matches!(sub, "container" | "image" | "network") && matches!(f.sub(1), "prune" | "rm"))
    {
        out.push("infra-destroy", Risk::Medium, l());
    }
    if sub == "system" && f.sub(1) == "prune" || sub == "volume" && matches!(f.sub(1), "prune" | "rm") {
        let all = f.short('a') || f.long.contains(&"all") || f.long.contains(&"volumes") || sub == "volume";
        out.push("infra-destroy", if all { Risk::High } else { Risk::Medium }, l());
    }
    if matches!(sub, "run" | "create") {
        let privileged = f.long.contains(&"privileged")
            || args
                .iter()
                .any(|a| *a == "--pid=host" || a.starts_with("--cap-add=SYS_ADMIN") || *a == "--cap-add=ALL")
            || args.windows(2).any(|w| {
                matches!(w[0], "-v" | "--volume" | "--mount")
                    && (w[1].starts_with("/:")
                        || w[1].contains("docker.sock")
                        || w[1].starts_with("/etc:")
                        || w[1].starts_with("/root"))
            })
            || args
                .iter()
                .any(|a| a.starts_with("--volume=/:") || a.starts_with("-v/:"));
        if privileged {
            out.push("privilege-escalation", Risk::High, l());
        }
    }
    if matches!(sub, "exec" | "run") {
        let after = args
            .iter()
            .position(|a| *a == sub)
            .map(|i| &args[i + 1..])
            .unwrap_or_default();
        let with_value = [
            "-e",
            "--env",
            "-u",
            "--user",
            "-w",
            "--workdir",
            "--name",
            "-v",
            "--volume",
            "-p",
            "--publish",
            "--network",
            "--entrypoint",
            "--env-file",
            "-l",
            "--label",
            "--mount",
            "--platform",
        ];
        nested_command(after, &with_value, true, out);
    }
}

/// A local path that holds secrets: a credential file or a credentials directory, a dump of a
/// database, a file named for secrets.
fn secret_source(p: &str) -> bool {
    let file = p.rsplit('/').next().unwrap_or(p).to_ascii_lowercase();
    credential_path(p).is_some()
        || p.split('/').any(|c| paths::SECRET_DIRS.contains(&c))
        || p == "/etc/shadow"
        || ["secret", "password", "passwd", "credential", "token", ".kdbx", "wallet"]
            .iter()
            .any(|k| file.contains(k))
            && !file.ends_with(".md")
        || [".sql", ".dump", ".bak", ".sqlite", ".sqlite3"]
            .iter()
            .any(|e| file.ends_with(e))
}

/// `ssh host CMD`, `docker exec ctr CMD`: scan the command that runs there as a script of its own.
fn nested_command(args: &[&str], with_value: &[&str], argv: bool, out: &mut Scan) {
    let mut rest = args;
    while let Some(first) = rest.first() {
        if *first == "--" {
            rest = &rest[1..];
            break;
        }
        if !first.starts_with('-') {
            break;
        }
        let takes = with_value.contains(first) && !first.contains('=');
        rest = rest.get(if takes { 2 } else { 1 }..).unwrap_or_default();
    }
    let command = rest.get(1..).unwrap_or_default();
    if command.is_empty() {
        return;
    }
    let script = if argv {
        command.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
    } else {
        command.join(" ")
    };
    out.nested(&script);
}

/// A word quoted for a POSIX shell when it needs to be.
fn quote(word: &str) -> Cow<'_, str> {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,~".contains(&b))
    {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

fn same_file(word: &str, downloaded: &str) -> bool {
    let strip = |s: &str| s.trim_start_matches("./").to_string();
    strip(word) == strip(downloaded)
}

fn download_target<'a>(name: &str, args: &[&'a str]) -> Option<&'a str> {
    let opts: &[&str] = if name == "wget" {
        &["-O", "--output-document"]
    } else {
        &["-o", "--output"]
    };
    args.windows(2)
        .find(|w| opts.contains(&w[0]))
        .map(|w| w[1])
        .filter(|f| *f != "-" && *f != "/dev/null")
}

fn is_fetcher(name: &str) -> bool {
    FETCHERS.contains(&name)
}

fn is_decoder(name: &str, args: &[&str]) -> bool {
    match name {
        "base64" | "base32" | "basenc" => args.iter().any(|a| matches!(*a, "-d" | "--decode" | "-D" | "-di")),
        "xxd" => args.iter().any(|a| *a == "-r" || *a == "-revert"),
        "openssl" => args.contains(&"-d") && args.iter().any(|a| *a == "base64" || *a == "enc"),
        "uudecode" | "gunzip" | "zcat" | "rev" => true,
        _ => false,
    }
}

/// The paths a command lists on its output (`ls /`, `find ~`, `echo /`): what `xargs` gets.
fn listed_paths(name: &str, args: &[&str], _stdin: Option<&str>) -> Vec<String> {
    match name {
        "ls" | "find" | "echo" | "printf" | "locate" | "fd" => args
            .iter()
            .filter(|a| !a.starts_with('-'))
            .take(8)
            .map(|a| a.to_string())
            .collect(),
        _ => Vec::new(),
    }
}

fn force_flags(name: &str, args: &[&str], out: &mut Scan) {
    for w in args {
        if matches!(
            *w,
            "--force"
                | "--no-confirm"
                | "--noconfirm"
                | "--yes-i-really-mean-it"
                | "--force-yes"
                | "--allow-downgrades"
        ) && !matches!(name, "cargo" | "npm" | "yarn" | "pnpm" | "pip" | "pip3")
        {
            out.push("force-flags", Risk::High, format!("{name} {w}"));
        }
        if matches!(name, "npm" | "yarn" | "pnpm")
            && *w == "--force"
            && args
                .first()
                .is_some_and(|a| matches!(*a, "publish" | "unpublish" | "cache"))
        {
            out.push("force-flags", Risk::High, format!("{name} {w}"));
        }
    }
}

fn redirections(cmd: &Cmd, program: &str, args: &[&str], state: &mut State, out: &mut Scan) {
    let is_shell = SHELLS.contains(&program)
        || CODE_INTERPRETERS.contains(&program)
        || program == "exec"
        || program.is_empty() && cmd.words.is_empty();
    let text = if matches!(program, "echo" | "printf" | "cat") {
        let words: Vec<String> = cmd.words.clone();
        let (w, _) = {
            let refs: Vec<&str> = words.iter().map(String::as_str).collect();
            let (w, p) = unwrap(&refs);
            (w.iter().map(|x| x.to_string()).collect::<Vec<_>>(), p)
        };
        expand::filter(&w, cmd.stdin.clone()).or_else(|| cmd.stdin.clone())
    } else {
        cmd.stdin.clone()
    };
    let text = text.or_else(|| {
        if cmd.join == Join::Pipe && program == "cat" {
            state.pipe_text.clone()
        } else {
            None
        }
    });
    let empty_write = matches!(program, "" | ":" | "true" | "echo" | "printf" | "cat")
        && (args.is_empty()
            || args == ["/dev/null"]
            || args == ["-n"]
            || args
                .iter()
                .all(|a| a.is_empty() || *a == "\"\"" || *a == "-n" || *a == "/dev/null" || a.is_empty()))
        || program == "cat" && args.contains(&"/dev/null");
    for r in &cmd.redirects {
        let t = r.target.as_str();
        if t.starts_with("/dev/tcp/") || t.starts_with("/dev/udp/") {
            let host = t.split('/').nth(3).unwrap_or("");
            if is_shell || program == "exec" || cmd.words.first().is_some_and(|w| w == "exec") {
                out.push(
                    "remote-code",
                    Risk::Critical,
                    format!("{} wired to {t}", if program.is_empty() { "exec" } else { program }),
                );
            } else if !matches!(host, "localhost" | "127.0.0.1") && r.kind != RedirKind::Read {
                out.push("exfiltration", Risk::High, format!("> {t}"));
            } else if r.kind == RedirKind::Read || r.kind == RedirKind::Dup && r.fd == Some(0) {
                state.pipe_network = true;
            }
            continue;
        }
        match r.kind {
            RedirKind::Read | RedirKind::Dup if r.fd == Some(0) || r.kind == RedirKind::Read => {
                if let Some(p) = credential_path(t) {
                    out.push("credential-access", Risk::High, format!("< {p}"));
                    state.pipe_secret = true;
                }
            }
            RedirKind::Dup => {}
            kind => {
                if t == "/dev/null" || t.starts_with("&") || t == "\u{1}" {
                    continue;
                }
                let kind = if empty_write && kind == RedirKind::Write {
                    RedirKind::Write
                } else {
                    kind
                };
                let text = if empty_write { Some("") } else { text.as_deref() };
                write_target(t, kind, text, if kind == RedirKind::Append { ">>" } else { ">" }, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_paths_resolve_to_programs() {
        assert_eq!(program_name("/???/r?"), "rm");
        assert_eq!(program_name("/b?n/r?"), "rm");
        assert_eq!(program_name("/usr/bin/r*"), "rm");
        assert_eq!(program_name("/usr/bin/rm"), "rm");
    }
}
