//! Rules over lexed commands: which programs, with which arguments, are dangerous.

use std::borrow::Cow;
use std::collections::HashMap;

use super::shell::{Command, Join, Script};
use super::{Scan, credential_path};
use crate::model::Risk;

const SHELLS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "ash", "fish", "mksh", "busybox", "su",
];
const INTERPRETERS: &[&str] = &[
    "sh",
    "bash",
    "zsh",
    "dash",
    "ksh",
    "ash",
    "fish",
    "mksh",
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "node",
    "php",
    "lua",
    "source",
    ".",
    "iex",
    "pwsh",
    "powershell",
];
/// Interpreters whose `-c`/`-e` code is a program text, not a shell script: the string literals
/// in it (what `os.system("…")` or `system("…")` would run) are scanned as scripts.
const CODE_INTERPRETERS: &[&str] = &[
    "python", "python2", "python3", "perl", "ruby", "node", "php", "lua", "awk", "gawk", "mawk",
];
const FETCHERS: &[&str] = &["curl", "wget", "fetch", "aria2c", "iwr", "invoke-webrequest"];
const DB_CLIENTS: &[&str] = &[
    "psql",
    "mysql",
    "mariadb",
    "sqlite3",
    "clickhouse-client",
    "cockroach",
    "sqlcmd",
];
/// Directories whose loss breaks the machine or the user's home.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root", "/sbin", "/srv", "/sys",
    "/usr", "/var",
];
/// Directories holding a user's credentials, as path components.
const SECRET_DIRS: &[&str] = &[".ssh", ".aws", ".gnupg", ".kube", ".docker", ".password-store"];

/// What the commands before this one in the script did, for rules that span commands.
#[derive(Default)]
struct State {
    /// The pipeline so far reads from a download (`curl … |`) or a decoder (`base64 -d |`).
    pipe_source: Option<&'static str>,
    /// Files a fetcher wrote (`curl -o x.sh`, `wget -O x.sh`).
    downloaded: Vec<String>,
    /// Variables assigned by plain assignment commands (`a=rm`).
    vars: HashMap<String, String>,
}

pub(crate) fn scan(script: &Script, commands: &[Command<'_>], out: &mut Scan) {
    let mut state = State::default();
    for cmd in commands {
        if cmd.join == Join::Sequence {
            state.pipe_source = None;
        }
        // `a=rm; $a -rf /`: scan the command again with the variables substituted.
        if !state.vars.is_empty() && cmd.words.iter().any(|w| w.contains('$')) {
            let line: Vec<Cow<'_, str>> = cmd.words.iter().map(|w| substitute(w, &state.vars)).collect();
            if line.iter().zip(cmd.words).any(|(a, b)| a.as_ref() != *b) {
                out.nested(&line.join(" "));
            }
        }
        if cmd.words.first().is_some_and(|w| is_assignment(w)) && cmd.words.iter().all(|w| is_assignment(w)) {
            for w in cmd.words {
                if let Some((k, v)) = w.split_once('=')
                    && state.vars.len() < 64
                {
                    state.vars.insert(k.to_string(), v.to_string());
                }
            }
            continue;
        }
        let (words, privileged) = unwrap(cmd.words);
        if privileged {
            out.push("privilege-escalation", Risk::High, privileged_detail(cmd.words));
        }
        let name = words.first().map(|w| program_name(w)).unwrap_or(Cow::Borrowed(""));
        redirections(cmd, &name, out);
        if words.is_empty() {
            continue;
        }
        let name = name.as_ref();
        let args = &words[1..];
        if cmd.join == Join::Pipe
            && let Some(source) = state.pipe_source
            && INTERPRETERS.contains(&name)
        {
            out.push("remote-code", Risk::Critical, format!("{source} piped into {name}"));
        }
        if is_fetcher(name) {
            state.pipe_source = Some("download");
            if let Some(file) = download_target(name, args) {
                state.downloaded.push(file.to_string());
            }
        } else if is_decoder(name, args) {
            state.pipe_source = Some("decoded payload");
        }
        // Running what was just downloaded: `curl -o x.sh URL && sh x.sh`, `./x.sh`.
        let runs_download = state.downloaded.iter().any(|d| {
            same_file(words[0], d)
                || INTERPRETERS.contains(&name)
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
        let ctx = Ctx {
            piped: cmd.join == Join::Pipe,
            nested: &script.nested,
        };
        check(name, args, &ctx, out);
        for w in args {
            if w.starts_with("--")
                && matches!(
                    *w,
                    "--force" | "--no-confirm" | "--noconfirm" | "--force-with-lease" | "--yes-i-really-mean-it"
                )
            {
                out.push("force-flags", Risk::High, format!("{name} {w}"));
            }
            // A flag names no file, unless it carries one (`--key-file=~/.ssh/id_rsa`).
            let flag = w.starts_with('-') && !w.contains('=');
            if !flag && let Some(p) = credential_path(w) {
                out.push("credential-access", Risk::High, format!("{name} {p}"));
            }
        }
    }
}

/// What `check` needs to know about a command's place in the script.
struct Ctx<'a> {
    /// The command reads the previous command's output.
    piped: bool,
    /// The scripts nested in the whole script (`$(…)`, `<(…)`).
    nested: &'a [String],
}

/// The program a word runs: `/usr/bin/rm` and `RM.exe` are `rm`.
fn program_name(word: &str) -> Cow<'_, str> {
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

fn privileged_detail(words: &[&str]) -> String {
    words.iter().take(3).copied().collect::<Vec<_>>().join(" ")
}

/// `$name` and `${name}` replaced by values assigned earlier in the script.
fn substitute<'w>(word: &'w str, vars: &HashMap<String, String>) -> Cow<'w, str> {
    if !word.contains('$') {
        return Cow::Borrowed(word);
    }
    let mut out = word.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v).replace(&format!("${k}"), v);
    }
    Cow::Owned(out)
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
    matches!(name, "curl" | "wget" | "fetch" | "aria2c" | "iwr" | "invoke-webrequest")
}

fn is_decoder(name: &str, args: &[&str]) -> bool {
    match name {
        "base64" | "base32" | "basenc" => args.iter().any(|a| *a == "-d" || *a == "--decode" || *a == "-D"),
        "xxd" => args.iter().any(|a| *a == "-r" || *a == "-revert"),
        "openssl" => args.contains(&"-d") && args.iter().any(|a| *a == "base64" || *a == "enc"),
        "uudecode" | "gunzip" | "zcat" | "rev" => true,
        _ => false,
    }
}

/// Strips variable assignments and wrapper programs (`sudo`, `env`, `nice`, `timeout`, `xargs`…)
/// to find the program that really runs. Returns its words and whether a privilege wrapper was seen.
fn unwrap<'a, 's>(words: &'a [&'s str]) -> (&'a [&'s str], bool) {
    let mut w = words;
    let mut privileged = false;
    for _ in 0..16 {
        while w.first().is_some_and(|x| is_assignment(x)) {
            w = &w[1..];
        }
        let Some(first) = w.first() else { break };
        let wrapper = program_name(first);
        let takes_arg: &[&str] = match wrapper.as_ref() {
            "sudo" | "doas" => {
                privileged = true;
                &[
                    "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group",
                ]
            }
            "pkexec" | "runas" | "run0" => {
                privileged = true;
                &["--user"]
            }
            "env" => &["-u", "--unset", "-C", "--chdir", "-S", "--split-string"],
            "nice" => &["-n", "--adjustment"],
            "ionice" => &["-c", "-n", "-p", "--class", "--classdata"],
            "timeout" => &["-s", "-k", "--signal", "--kill-after"],
            "xargs" => &["-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a"],
            "watch" => &["-n", "--interval", "-d"],
            "stdbuf" => &["-i", "-o", "-e"],
            "nohup" | "time" | "exec" | "command" | "builtin" | "unbuffer" | "caffeinate" | "setsid" | "chrt"
            | "taskset" | "torsocks" | "proxychains" | "proxychains4" => &[],
            "chroot" => {
                w = &w[1..];
                // The new root directory comes first.
                if w.first().is_some_and(|x| !x.starts_with('-')) {
                    w = &w[1..];
                }
                continue;
            }
            _ => break,
        };
        let is_env = wrapper == "env";
        let is_timeout = wrapper == "timeout";
        w = &w[1..];
        while let Some(x) = w.first() {
            if *x == "--" {
                w = &w[1..];
                break;
            }
            if x.starts_with('-') {
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
        if is_timeout
            && w.first()
                .is_some_and(|x| x.chars().next().is_some_and(|c| c.is_ascii_digit()))
        {
            w = &w[1..];
        }
    }
    (w, privileged)
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

    fn sub(&self, i: usize) -> &str {
        self.operands.get(i).copied().unwrap_or("")
    }
}

/// Programs `check` has rules for; everything else is skipped without parsing its flags.
fn interesting(name: &str) -> bool {
    matches!(
        name,
        "rm" | "rmdir" | "unlink" | "shred" | "wipe" | "srm" | "find" | "mv" | "dd" | "mke2fs" | "mkswap" | "fdisk"
            | "sfdisk" | "gdisk" | "cfdisk" | "parted" | "wipefs" | "blkdiscard" | "diskpart" | "format" | "systemctl"
            | "service" | "kill" | "killall" | "pkill" | "killall5" | "shutdown" | "reboot" | "halt" | "poweroff" | "init"
            | "telinit" | "iptables" | "ip6tables" | "iptables-legacy" | "iptables-nft" | "nft" | "ufw" | "firewall-cmd"
            | "chmod" | "chown" | "chgrp" | "setfacl" | "chattr" | "visudo" | "passwd" | "usermod" | "useradd" | "userdel"
            | "setenforce" | "eval" | "curl" | "wget" | "nc" | "ncat" | "netcat" | "socat" | "scp" | "rsync" | "git"
            | "terraform" | "tofu" | "pulumi" | "kubectl" | "oc" | "helm" | "aws" | "gcloud" | "az" | "doctl" | "docker"
            | "podman" | "ssh" | "truncate" | "crontab"
            // shells and interpreters
            | "sh" | "bash" | "zsh" | "dash" | "ksh" | "ash" | "fish" | "mksh" | "busybox" | "su" | "python" | "python2"
            | "python3" | "perl" | "ruby" | "node" | "php" | "lua" | "source" | "." | "iex" | "pwsh" | "powershell" | "awk"
            | "gawk" | "mawk"
            // database clients
            | "psql" | "mysql" | "mariadb" | "sqlite3" | "clickhouse-client" | "cockroach" | "sqlcmd"
    ) || name.starts_with("mkfs")
}

fn check(name: &str, args: &[&str], ctx: &Ctx<'_>, out: &mut Scan) {
    if !interesting(name) {
        return;
    }
    let f = flags(args);
    let line = || {
        format!("{name} {}", args.join(" "))
            .chars()
            .take(120)
            .collect::<String>()
    };
    match name {
        "rm" | "rmdir" | "unlink" => rm(name, &f, out),
        "shred" | "wipe" | "srm" => out.push("destructive-fs", Risk::High, line()),
        "truncate" if f.operands.iter().any(|p| is_system_path(p)) => out.push("destructive-fs", Risk::High, line()),
        "crontab" if f.short('r') => out.push("destructive-fs", Risk::High, line()),
        "find"
            if args.contains(&"-delete")
                || args
                    .windows(2)
                    .any(|w| matches!(w[0], "-exec" | "-execdir") && program_name(w[1]) == "rm") =>
        {
            out.push("destructive-fs", Risk::High, line())
        }
        "mv" if f.operands.last().is_some_and(|d| *d == "/dev/null")
            || f.operands.len() >= 2
                && f.operands[..f.operands.len() - 1]
                    .iter()
                    .any(|p| is_system_path(p) || matches!(*p, "~" | "$HOME" | "/")) =>
        {
            out.push("destructive-fs", Risk::High, line())
        }
        "dd" => {
            let to_device = args.iter().any(|a| a.starts_with("of=/dev/") && *a != "of=/dev/null");
            if to_device || args.iter().any(|a| a.starts_with("if=") || a.starts_with("of=")) {
                out.push("disk", if to_device { Risk::Critical } else { Risk::High }, line());
            }
        }
        n if n.starts_with("mkfs")
            || matches!(
                n,
                "mke2fs"
                    | "mkswap"
                    | "fdisk"
                    | "sfdisk"
                    | "gdisk"
                    | "cfdisk"
                    | "parted"
                    | "wipefs"
                    | "blkdiscard"
                    | "diskpart"
                    | "format"
            ) =>
        {
            out.push("disk", Risk::Critical, line())
        }
        "systemctl" => match f.sub(0) {
            "stop" | "disable" | "mask" | "kill" | "isolate" | "rescue" | "emergency" => {
                out.push("service-disruption", Risk::High, line())
            }
            "poweroff" | "reboot" | "halt" | "kexec" => out.push("service-disruption", Risk::Critical, line()),
            _ => {}
        },
        "service" if matches!(f.sub(1), "stop") => out.push("service-disruption", Risk::High, line()),
        "kill" => {
            let sigkill = f.short('9')
                || args.iter().any(|a| matches!(*a, "-KILL" | "-SIGKILL"))
                || args
                    .windows(2)
                    .any(|w| matches!(w[0], "-s" | "-n") && (w[1].contains("KILL") || w[1] == "9"));
            if sigkill || f.operands.contains(&"1") {
                out.push("service-disruption", Risk::High, line())
            }
        }
        "killall" | "pkill" | "killall5" => out.push("service-disruption", Risk::High, line()),
        "shutdown" | "reboot" | "halt" | "poweroff" => out.push("service-disruption", Risk::Critical, line()),
        "init" | "telinit" if matches!(f.sub(0), "0" | "6" | "1" | "s") => {
            out.push("service-disruption", Risk::Critical, line())
        }
        "iptables" | "ip6tables" | "iptables-legacy" | "iptables-nft"
            if f.has('F', "flush")
                || f.has('X', "delete-chain")
                || f.has('D', "delete")
                || f.has('P', "policy")
                || f.has('Z', "zero") =>
        {
            out.push("firewall", Risk::High, line())
        }
        "nft" if matches!(f.sub(0), "flush" | "delete") => out.push("firewall", Risk::High, line()),
        "ufw" if matches!(f.sub(0), "disable" | "delete" | "reset") => out.push("firewall", Risk::High, line()),
        "firewall-cmd"
            if f.long
                .iter()
                .any(|l| l.starts_with("remove") || *l == "panic-off" || *l == "set-default-zone") =>
        {
            out.push("firewall", Risk::High, line())
        }
        "chmod" => {
            let mode = f.sub(0);
            let world_writable = mode.len() >= 3
                && mode.chars().all(|c| c.is_ascii_digit())
                && matches!(mode.chars().last(), Some('7' | '6' | '3' | '2'))
                || mode.contains("o+w")
                || mode.contains("a+w")
                || mode.contains("+s")
                || mode == "+w"
                || mode.starts_with('4') && mode.len() == 4;
            let recursive_system = f.has('R', "recursive") && f.operands.iter().skip(1).any(|p| is_system_path(p));
            if world_writable || recursive_system {
                out.push("permissions", Risk::High, line())
            }
        }
        "chown" | "chgrp" => {
            let owner = f.sub(0);
            let to_root = owner == "root" || owner.starts_with("root:") || owner == "0" || owner.starts_with("0:");
            let recursive_system = f.has('R', "recursive") && f.operands.iter().skip(1).any(|p| is_system_path(p));
            if to_root || recursive_system {
                out.push("permissions", Risk::High, line())
            }
        }
        "setfacl" | "chattr" | "visudo" | "passwd" | "usermod" | "useradd" | "userdel" => {
            out.push("permissions", Risk::High, line())
        }
        "setenforce" if matches!(f.sub(0), "0" | "permissive" | "Permissive") => {
            out.push("permissions", Risk::High, line())
        }
        "eval" => {
            out.push("remote-code", Risk::High, line());
            out.nested(&args.join(" "));
        }
        "curl" => {
            // `-d @file` posts a file (`@-`: standard input); `-F name=@file` uploads one.
            let upload = args.windows(2).any(|w| {
                matches!(w[0], "-d" | "--data" | "--data-binary" | "--data-urlencode") && w[1].starts_with('@')
                    || matches!(w[0], "-F" | "--form") && (w[1].contains("=@") || w[1].contains("=<"))
            }) || args
                .iter()
                .any(|a| a.starts_with("--data-binary=@") || a.starts_with("-d@") || a.starts_with("--data=@"))
                || f.has('T', "upload-file");
            if upload {
                out.push("exfiltration", Risk::High, line())
            }
        }
        "wget" if f.long.iter().any(|l| *l == "post-file" || *l == "body-file") => {
            out.push("exfiltration", Risk::High, line())
        }
        "nc" | "ncat" | "netcat" | "socat" => {
            if f.short('e')
                || f.short('c') && name != "socat"
                || args.iter().any(|a| a.contains("EXEC:") || a.contains("SYSTEM:"))
            {
                out.push("remote-code", Risk::Critical, line())
            } else if (ctx.piped && !f.short('z')) || f.short('l') && f.short('p') && ctx.piped {
                out.push("exfiltration", Risk::High, line())
            }
        }
        "scp" | "rsync" => {
            let remote = |p: &str| p.contains(':') && !p.starts_with('/') && !p.starts_with("./");
            let sources = f.operands.len().saturating_sub(1);
            if f.operands.last().is_some_and(|d| remote(d)) && f.operands[..sources].iter().any(|s| secret_source(s)) {
                out.push("exfiltration", Risk::High, line())
            }
        }
        "git" => git(&f, args, out),
        "terraform" | "tofu" | "pulumi" if f.sub(0) == "destroy" || args.contains(&"-destroy") => {
            out.push("infra-destroy", Risk::Critical, line())
        }
        // The subcommand may follow options with values (`kubectl -n prod delete …`).
        "kubectl" | "oc"
            if f.operands
                .iter()
                .take(3)
                .any(|s| matches!(*s, "delete" | "drain" | "cordon")) =>
        {
            out.push("infra-destroy", Risk::High, line())
        }
        "helm" if matches!(f.sub(0), "uninstall" | "delete") => out.push("infra-destroy", Risk::High, line()),
        "aws" | "gcloud" | "az" | "doctl"
            if f.operands.iter().any(|s| {
                s.starts_with("delete")
                    || s.starts_with("terminate")
                    || s.starts_with("remove")
                    || *s == "rb"
                    || *s == "purge"
                    || (*s == "rm" && f.has('r', "recursive"))
            }) =>
        {
            out.push("infra-destroy", Risk::High, line())
        }
        "docker" | "podman" => {
            let sub = f.sub(0);
            if matches!(sub, "rm" | "rmi" | "prune")
                || (matches!(sub, "system" | "volume" | "container" | "image" | "network")
                    && matches!(f.sub(1), "prune" | "rm"))
            {
                out.push("infra-destroy", Risk::Medium, line())
            }
            if matches!(sub, "run" | "create")
                && (f
                    .long
                    .iter()
                    .any(|l| *l == "privileged" || *l == "pid" && args.contains(&"--pid=host"))
                    || args.windows(2).any(|w| {
                        matches!(w[0], "-v" | "--volume")
                            && (w[1].starts_with("/:") || w[1].starts_with("/var/run/docker.sock"))
                    })
                    || args
                        .iter()
                        .any(|a| a.starts_with("--cap-add=SYS_ADMIN") || *a == "--cap-add=ALL"))
            {
                out.push("privilege-escalation", Risk::High, line())
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
        "ssh" => nested_command(
            args,
            &[
                "-p", "-i", "-l", "-o", "-F", "-J", "-b", "-c", "-D", "-E", "-e", "-L", "-m", "-O", "-Q", "-R", "-S",
                "-W", "-w", "-B", "-I",
            ],
            false,
            out,
        ),
        _ => {}
    }
    if SHELLS.contains(&name) {
        // `sh -c SCRIPT`: the script runs too.
        if let Some(pos) = args
            .iter()
            .position(|a| *a == "-c" || (a.starts_with('-') && !a.starts_with("--") && a.ends_with('c')))
            && let Some(script) = args.get(pos + 1)
        {
            out.nested(script);
            if FETCHERS.iter().any(|f| script.contains(f)) && script.contains("$(") {
                out.push("remote-code", Risk::Critical, format!("{name} -c with a download"));
            }
        }
        if args
            .iter()
            .any(|a| FETCHERS.iter().any(|f| a.contains(&format!("{f} "))))
            && args.iter().any(|a| a.contains("$("))
        {
            out.push("remote-code", Risk::Critical, format!("{name} runs a download"));
        }
    }
    if INTERPRETERS.contains(&name) {
        // `bash <(curl …)`: process substitution feeding a download to an interpreter.
        let substituted = args.iter().any(|a| a.contains('\u{1}'));
        if substituted
            && ctx.nested.iter().any(|n| {
                n.split_whitespace()
                    .next()
                    .is_some_and(|p| FETCHERS.contains(&program_name(p).as_ref()))
            })
        {
            out.push(
                "remote-code",
                Risk::Critical,
                format!("{name} runs a download (process substitution)"),
            );
        }
        if matches!(name, "source" | ".") && args.iter().any(|a| a.starts_with("http")) {
            out.push("remote-code", Risk::Critical, line());
        }
    }
    if CODE_INTERPRETERS.contains(&name) {
        // `python3 -c 'os.system("…")'`, `awk 'BEGIN{system("…")}'`: scan what the code runs.
        let code = args
            .windows(2)
            .find(|w| matches!(w[0], "-c" | "-e" | "-E" | "-r" | "--eval"))
            .map(|w| w[1])
            .or_else(|| {
                matches!(name, "awk" | "gawk" | "mawk")
                    .then(|| f.operands.first().copied())
                    .flatten()
            });
        if let Some(code) = code {
            for command in code_commands(code) {
                out.nested(&command);
            }
        }
    }
    if DB_CLIENTS.contains(&name) {
        for a in &f.operands {
            out.nested(a);
        }
        for w in args.windows(2) {
            if matches!(w[0], "-c" | "-e" | "--command" | "--execute" | "-Q") {
                out.nested(w[1]);
            }
        }
    }
}

/// Calls in program text that run a command line.
const EXEC_CALLS: &[&str] = &[
    "system(",
    "exec(",
    "popen(",
    "spawn(",
    "execSync(",
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
    "%x(",
];

/// The command lines program text runs: the string arguments of `system(…)`, `os.popen(…)`,
/// `subprocess.run([…])` and kin (list forms joined with spaces), and backquoted commands.
/// Other string literals (`print("rm -rf / is bad")`) are not commands.
fn code_commands(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    if !code.contains(['(', '`']) {
        return out;
    }
    for call in EXEC_CALLS {
        let mut from = 0;
        while let Some(i) = code[from..].find(call) {
            let after = &code[from + i + call.len()..];
            from += i + call.len();
            let trimmed = after.trim_start();
            let (list, body) = match trimmed.strip_prefix('[') {
                Some(rest) => (true, rest),
                None => (false, trimmed),
            };
            let end = if list {
                body.find(']').unwrap_or(body.len())
            } else {
                body.find(')').unwrap_or(body.len())
            };
            let literals = string_literals(&body[..end]);
            let command = if list {
                literals.join(" ")
            } else {
                literals.first().map(|s| s.to_string()).unwrap_or_default()
            };
            if !command.is_empty() && out.len() < 32 {
                out.push(command);
            }
        }
    }
    let mut rest = code;
    while let Some(start) = rest.find('`') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('`') else { break };
        if out.len() < 32 {
            out.push(after[..end].to_string());
        }
        rest = &after[end + 1..];
    }
    out
}

/// The contents of the quoted string literals in program text.
fn string_literals(code: &str) -> Vec<&str> {
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

/// A local path that holds secrets: a credential file or a credentials directory.
fn secret_source(p: &str) -> bool {
    credential_path(p).is_some() || p.split('/').any(|c| SECRET_DIRS.contains(&c)) || p == "/etc/shadow"
}

/// `ssh host CMD`, `docker exec ctr CMD`: scan the command that runs there as a script of its own.
/// `args` start after the program (for docker, after `exec`/`run`); options are skipped (those in
/// `with_value` with their value), then the host or container, and the rest is the command. ssh
/// joins it with spaces for the remote shell; docker runs it as an argument vector, so arguments
/// are quoted back.
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
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:@%+,".contains(&b))
    {
        Cow::Borrowed(word)
    } else {
        Cow::Owned(format!("'{}'", word.replace('\'', r"'\''")))
    }
}

fn rm(name: &str, f: &Flags<'_>, out: &mut Scan) {
    let recursive = f.has('r', "recursive") || f.has('R', "recursive") || name == "rmdir";
    let force = f.has('f', "force");
    let no_preserve = f.long.contains(&"no-preserve-root");
    for target in &f.operands {
        let t = target.trim_end_matches('/');
        let t = if t.is_empty() { "/" } else { t };
        let catastrophic = no_preserve
            || matches!(
                t,
                "/" | "/*" | "~" | "~/*" | "$HOME" | "${HOME}" | "$HOME/*" | "*" | "." | ".." | "./*" | "../*"
            )
            || SYSTEM_DIRS.contains(&t)
            || SYSTEM_DIRS
                .iter()
                .any(|d| *d != "/" && t.strip_prefix(d).is_some_and(|rest| rest == "/*"));
        let outside_project =
            t.starts_with('/') || t.starts_with('~') || t.starts_with('$') || t.split('/').any(|c| c == "..");
        let flag = if catastrophic && (recursive || force || t.ends_with('*')) {
            Some(Risk::Critical)
        } else if outside_project && recursive && !t.starts_with("/tmp/") || is_system_path(t) {
            Some(Risk::High)
        } else {
            None
        };
        if let Some(risk) = flag {
            let short: String = (0u8..128)
                .filter(|b| f.short & (1u128 << b) != 0)
                .map(char::from)
                .collect();
            let short = if short.is_empty() {
                String::new()
            } else {
                format!(" -{short}")
            };
            out.push("destructive-fs", risk, format!("{name}{short} {target}"));
        }
    }
}

fn is_system_path(p: &str) -> bool {
    SYSTEM_DIRS.iter().any(|d| *d != "/" && (p == *d || p.len() > d.len() && p.starts_with(d) && p.as_bytes()[d.len()] == b'/'))
        && !p.starts_with("/tmp")
        && !p.starts_with("/home/") // a user's own files are handled by the rm rules above
        || p == "/"
}

fn git(_: &Flags<'_>, args: &[&str], out: &mut Scan) {
    let line = || format!("git {}", args.join(" ")).chars().take(120).collect::<String>();
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
    let dangerous = match f.sub(0) {
        "push" => {
            f.has('f', "force")
                || f.long.contains(&"force-with-lease")
                || f.long.contains(&"delete")
                || f.long.contains(&"mirror")
                || f.short('d')
                || f.operands
                    .iter()
                    .skip(1)
                    .any(|r| r.starts_with('+') || r.starts_with(':'))
        }
        "reset" => f.long.contains(&"hard"),
        "clean" => f.has('f', "force"),
        "branch" => f.short('D') || (f.short('d') && f.short('f')),
        "checkout" | "restore" => f.operands.iter().skip(1).any(|p| *p == ".") && !f.short('b'),
        "filter-branch" | "filter-repo" => true,
        "reflog" => f.sub(1) == "expire",
        "gc" => f.long.contains(&"prune"),
        "stash" => matches!(f.sub(1), "clear" | "drop"),
        "update-ref" => f.short('d'),
        _ => false,
    };
    if dangerous {
        out.push("destructive-git", Risk::High, line());
    }
}

fn redirections(cmd: &Command<'_>, program: &str, out: &mut Scan) {
    for &t in cmd.redirect_out {
        if [
            "/dev/sd",
            "/dev/nvme",
            "/dev/hd",
            "/dev/vd",
            "/dev/xvd",
            "/dev/mmcblk",
            "/dev/disk",
        ]
        .iter()
        .any(|d| t.starts_with(d))
        {
            out.push("disk", Risk::Critical, format!("> {t}"));
        } else if t != "/dev/null"
            && t != "/dev/stdout"
            && t != "/dev/stderr"
            && !t.starts_with("/dev/fd/")
            && !t.starts_with("/dev/tcp/")
            && !t.starts_with("/dev/udp/")
            && is_system_path(t)
        {
            out.push("destructive-fs", Risk::High, format!("> {t}"));
        }
        if t.starts_with("/dev/tcp/") || t.starts_with("/dev/udp/") {
            if SHELLS.contains(&program) || INTERPRETERS.contains(&program) {
                // `bash -i >& /dev/tcp/host/port 0>&1`: a reverse shell.
                out.push("remote-code", Risk::Critical, format!("{program} wired to {t}"));
            } else {
                out.push("exfiltration", Risk::High, format!("> {t}"));
            }
        }
    }
    for source in cmd.redirect_in {
        if let Some(p) = credential_path(source) {
            out.push("credential-access", Risk::High, format!("< {p}"));
        }
    }
}
