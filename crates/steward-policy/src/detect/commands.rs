//! Rules over lexed commands: which programs, with which arguments, are dangerous.

use super::shell::{Command, Join, Script};
use super::{Scan, credential_path};
use crate::model::Risk;

const SHELLS: &[&str] = &["sh", "bash", "zsh", "dash", "ksh", "ash", "fish", "mksh", "busybox"];
const INTERPRETERS: &[&str] = &[
    "sh", "bash", "zsh", "dash", "ksh", "ash", "fish", "python", "python2", "python3", "perl",
    "ruby", "node", "php", "lua", "source", ".", "iex",
];
const FETCHERS: &[&str] = &["curl", "wget", "fetch", "aria2c", "iwr", "invoke-webrequest"];
const DB_CLIENTS: &[&str] = &["psql", "mysql", "mariadb", "sqlite3", "clickhouse-client", "cockroach", "sqlcmd"];
/// Directories whose loss breaks the machine or the user's home.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc", "/root",
    "/sbin", "/srv", "/sys", "/usr", "/var",
];

pub(crate) fn scan(script: &Script, out: &mut Scan) {
    let mut pipeline_has_fetcher = false;
    for cmd in &script.commands {
        if cmd.join == Join::Sequence {
            pipeline_has_fetcher = false;
        }
        let (words, privileged) = unwrap(&cmd.words);
        if privileged {
            out.push("privilege-escalation", Risk::High, privileged_detail(&cmd.words));
        }
        redirections(cmd, out);
        let Some(first) = words.first() else { continue };
        let name = program_name(first);
        if cmd.join == Join::Pipe && pipeline_has_fetcher && INTERPRETERS.contains(&name.as_str()) {
            out.push("remote-code", Risk::Critical, format!("download piped into {name}"));
        }
        if FETCHERS.contains(&name.as_str()) {
            pipeline_has_fetcher = true;
        }
        check(&name, &words[1..], out);
        for w in &words[1..] {
            if matches!(w.as_str(), "--force" | "--no-confirm" | "--noconfirm" | "--force-with-lease" | "--yes-i-really-mean-it") {
                out.push("force-flags", Risk::High, format!("{name} {w}"));
            }
            if let Some(p) = credential_path(w) {
                out.push("credential-access", Risk::High, format!("{name} {p}"));
            }
        }
    }
}

/// The program a word runs: `/usr/bin/rm` and `RM.exe` are `rm`.
fn program_name(word: &str) -> String {
    let base = word.rsplit(['/', '\\']).next().unwrap_or(word);
    let base = base.strip_suffix(".exe").unwrap_or(base);
    base.to_ascii_lowercase()
}

fn privileged_detail(words: &[String]) -> String {
    words.iter().take(3).cloned().collect::<Vec<_>>().join(" ")
}

/// Strips variable assignments and wrapper programs (`sudo`, `env`, `nice`, `timeout`, `xargs`…)
/// to find the program that really runs. Returns its words and whether a privilege wrapper was seen.
fn unwrap(words: &[String]) -> (&[String], bool) {
    let mut w = words;
    let mut privileged = false;
    for _ in 0..16 {
        while w.first().is_some_and(|x| is_assignment(x)) {
            w = &w[1..];
        }
        let Some(first) = w.first() else { break };
        let takes_arg: &[&str] = match program_name(first).as_str() {
            "sudo" | "doas" => {
                privileged = true;
                &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group"]
            }
            "pkexec" | "runas" => {
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
            "nohup" | "time" | "exec" | "command" | "builtin" | "unbuffer" | "caffeinate" | "busybox" | "setsid" | "chrt" | "taskset" => &[],
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
        let wrapper = program_name(first);
        w = &w[1..];
        while let Some(x) = w.first() {
            if x == "--" {
                w = &w[1..];
                break;
            }
            if x.starts_with('-') {
                let needs_value = takes_arg.contains(&x.as_str());
                w = &w[1..];
                if needs_value && !w.is_empty() {
                    w = &w[1..];
                }
            } else if wrapper == "env" && is_assignment(x) {
                w = &w[1..];
            } else {
                break;
            }
        }
        if wrapper == "timeout" && w.first().is_some_and(|x| x.chars().next().is_some_and(|c| c.is_ascii_digit())) {
            w = &w[1..];
        }
    }
    (w, privileged)
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

/// Short flags (`-rf`) as a set of letters, and the long flags (`--recursive`).
struct Flags<'a> {
    short: String,
    long: Vec<&'a str>,
    operands: Vec<&'a str>,
}

fn flags(args: &[String]) -> Flags<'_> {
    let mut f = Flags { short: String::new(), long: Vec::new(), operands: Vec::new() };
    let mut end_of_flags = false;
    for a in args {
        if end_of_flags {
            f.operands.push(a);
        } else if a == "--" {
            end_of_flags = true;
        } else if let Some(long) = a.strip_prefix("--") {
            f.long.push(long.split('=').next().unwrap_or(long));
        } else if a.len() > 1 && a.starts_with('-') {
            f.short.push_str(&a[1..]);
        } else {
            f.operands.push(a);
        }
    }
    f
}

impl Flags<'_> {
    fn has(&self, short: char, long: &str) -> bool {
        self.short.contains(short) || self.long.contains(&long)
    }
}

fn check(name: &str, args: &[String], out: &mut Scan) {
    let f = flags(args);
    let line = || format!("{name} {}", args.join(" ")).chars().take(120).collect::<String>();
    match name {
        "rm" | "rmdir" | "unlink" => rm(name, &f, out),
        "shred" | "wipe" | "srm" => out.push("destructive-fs", Risk::High, line()),
        "find" if args.iter().any(|a| a == "-delete") || args.windows(2).any(|w| w[0] == "-exec" && program_name(&w[1]) == "rm") => {
            out.push("destructive-fs", Risk::High, line())
        }
        "mv" if f.operands.last().is_some_and(|d| *d == "/dev/null") => out.push("destructive-fs", Risk::High, line()),
        "dd" => {
            let to_device = args.iter().any(|a| a.starts_with("of=/dev/"));
            if to_device || args.iter().any(|a| a.starts_with("if=") || a.starts_with("of=")) {
                out.push("disk", if to_device { Risk::Critical } else { Risk::High }, line());
            }
        }
        n if n.starts_with("mkfs") || matches!(n, "mke2fs" | "mkswap" | "fdisk" | "sfdisk" | "gdisk" | "cfdisk" | "parted" | "wipefs" | "blkdiscard" | "diskpart" | "format") => {
            out.push("disk", Risk::Critical, line())
        }
        "systemctl" => {
            let sub = f.operands.first().copied().unwrap_or("");
            match sub {
                "stop" | "disable" | "mask" | "kill" | "isolate" | "rescue" | "emergency" => out.push("service-disruption", Risk::High, line()),
                "poweroff" | "reboot" | "halt" | "kexec" => out.push("service-disruption", Risk::Critical, line()),
                _ => {}
            }
        }
        "service" if f.operands.get(1).is_some_and(|s| matches!(*s, "stop" | "restart")) => {
            out.push("service-disruption", Risk::High, line())
        }
        "kill" if f.short.contains('9') || args.iter().any(|a| matches!(a.as_str(), "-KILL" | "-SIGKILL" | "KILL" | "SIGKILL")) || f.operands.contains(&"1") => {
            out.push("service-disruption", Risk::High, line())
        }
        "killall" | "pkill" | "killall5" => out.push("service-disruption", Risk::High, line()),
        "shutdown" | "reboot" | "halt" | "poweroff" => out.push("service-disruption", Risk::Critical, line()),
        "init" | "telinit" if f.operands.first().is_some_and(|r| matches!(*r, "0" | "6" | "1" | "s")) => {
            out.push("service-disruption", Risk::Critical, line())
        }
        "iptables" | "ip6tables" | "iptables-legacy" | "iptables-nft" => {
            if f.has('F', "flush") || f.has('X', "delete-chain") || f.has('D', "delete") || f.has('P', "policy") || f.has('Z', "zero") {
                out.push("firewall", Risk::High, line())
            }
        }
        "nft" if f.operands.first().is_some_and(|s| matches!(*s, "flush" | "delete")) => out.push("firewall", Risk::High, line()),
        "ufw" if f.operands.first().is_some_and(|s| matches!(*s, "disable" | "delete" | "reset")) => out.push("firewall", Risk::High, line()),
        "firewall-cmd" if f.long.iter().any(|l| l.starts_with("remove") || *l == "panic-off" || *l == "set-default-zone") => {
            out.push("firewall", Risk::High, line())
        }
        "chmod" => {
            let mode = f.operands.first().copied().unwrap_or("");
            let world_writable = mode.ends_with('7') && mode.len() >= 3 || mode.ends_with('6') && mode.len() >= 3 && mode.chars().all(|c| c == '6')
                || mode.contains("o+w") || mode.contains("a+w") || mode.contains("+s") || mode == "+w";
            let recursive_system = f.has('R', "recursive") && f.operands.iter().skip(1).any(|p| is_system_path(p));
            if world_writable || recursive_system {
                out.push("permissions", Risk::High, line())
            }
        }
        "chown" | "chgrp" => {
            let owner = f.operands.first().copied().unwrap_or("");
            let to_root = owner == "root" || owner.starts_with("root:") || owner == "0" || owner.starts_with("0:");
            let recursive_system = f.has('R', "recursive") && f.operands.iter().skip(1).any(|p| is_system_path(p));
            if to_root || recursive_system {
                out.push("permissions", Risk::High, line())
            }
        }
        "setfacl" | "chattr" | "visudo" | "passwd" | "usermod" | "useradd" | "userdel" => out.push("permissions", Risk::High, line()),
        "eval" => {
            out.push("remote-code", Risk::High, line());
            out.nested(&args.join(" "));
        }
        "curl" => {
            let upload = args.windows(2).any(|w| {
                matches!(w[0].as_str(), "-d" | "--data" | "--data-binary" | "--data-raw" | "--data-urlencode" | "-F" | "--form")
                    && w[1].contains('@')
            }) || args.iter().any(|a| a.starts_with("--data-binary=@") || a.starts_with("-d@"))
                || f.has('T', "upload-file");
            if upload {
                out.push("exfiltration", Risk::High, line())
            }
        }
        "wget" if f.long.iter().any(|l| *l == "post-file" || *l == "body-file") => out.push("exfiltration", Risk::High, line()),
        "nc" | "ncat" | "netcat" | "socat" if f.operands.len() >= 2 || f.short.contains('e') => out.push("exfiltration", Risk::High, line()),
        "git" => git(&f, args, out),
        "terraform" | "tofu" | "pulumi" => {
            if f.operands.first() == Some(&"destroy") || args.iter().any(|a| a == "-destroy") {
                out.push("infra-destroy", Risk::Critical, line())
            }
        }
        "kubectl" | "oc" if f.operands.first().is_some_and(|s| matches!(*s, "delete" | "drain" | "cordon")) => {
            out.push("infra-destroy", Risk::High, line())
        }
        "helm" if f.operands.first().is_some_and(|s| matches!(*s, "uninstall" | "delete")) => out.push("infra-destroy", Risk::High, line()),
        "aws" | "gcloud" | "az" | "doctl" => {
            if f.operands.iter().any(|s| s.starts_with("delete") || s.starts_with("terminate") || s.starts_with("remove") || *s == "rb" || *s == "purge") {
                out.push("infra-destroy", Risk::High, line())
            }
        }
        "docker" | "podman" => {
            let sub = f.operands.first().copied().unwrap_or("");
            if matches!(sub, "rm" | "rmi" | "prune") || (matches!(sub, "system" | "volume" | "container" | "image" | "network") && f.operands.get(1).is_some_and(|s| matches!(*s, "prune" | "rm"))) {
                out.push("infra-destroy", Risk::Medium, line())
            }
            if matches!(sub, "exec" | "run") {
                nested_command(args, out);
            }
        }
        "ssh" => nested_command(args, out),
        _ => {}
    }
    if SHELLS.contains(&name) || name == "su" {
        // `sh -c SCRIPT`: the script runs too.
        if let Some(pos) = args.iter().position(|a| a == "-c" || (a.starts_with('-') && !a.starts_with("--") && a.ends_with('c')))
            && let Some(script) = args.get(pos + 1)
        {
            out.nested(script);
            if FETCHERS.iter().any(|f| script.contains(f)) && script.contains("$(") {
                out.push("remote-code", Risk::Critical, format!("{name} -c with a download"));
            }
        }
        if args.iter().any(|a| FETCHERS.iter().any(|f| a.contains(&format!("{f} ")))) && args.iter().any(|a| a.contains("$(") || a.contains('\u{1}')) {
            out.push("remote-code", Risk::Critical, format!("{name} runs a download"));
        }
    }
    if matches!(name, "source" | ".") && args.iter().any(|a| a.contains('\u{1}') || a.starts_with("http")) {
        out.push("remote-code", Risk::Critical, line());
    }
    if DB_CLIENTS.contains(&name) {
        for a in &f.operands {
            out.nested(a);
        }
        for w in args.windows(2) {
            if matches!(w[0].as_str(), "-c" | "-e" | "--command" | "--execute" | "-Q") {
                out.nested(&w[1]);
            }
        }
    }
}

/// `ssh host CMD`, `docker exec ctr CMD`: scan the remote command as a script of its own.
fn nested_command(args: &[String], out: &mut Scan) {
    let operands: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if operands.len() >= 2 {
        let rest: Vec<&str> = operands[1..].iter().map(|s| s.as_str()).collect();
        out.nested(&rest.join(" "));
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
            || matches!(t, "/" | "/*" | "~" | "~/*" | "$HOME" | "${HOME}" | "$HOME/*" | "*" | "." | ".." | "./*" | "../*")
            || SYSTEM_DIRS.contains(&t)
            || SYSTEM_DIRS.iter().any(|d| *d != "/" && t.strip_prefix(d).is_some_and(|rest| rest == "/*"));
        let outside_project = t.starts_with('/') || t.starts_with('~') || t.starts_with('$') || t.split('/').any(|c| c == "..");
        let flag = if catastrophic && (recursive || force || t.ends_with('*')) {
            Some(Risk::Critical)
        } else if outside_project && recursive {
            Some(Risk::High)
        } else if is_system_path(t) {
            Some(Risk::High)
        } else {
            None
        };
        if let Some(risk) = flag {
            let short = if f.short.is_empty() { String::new() } else { format!(" -{}", f.short) };
            out.push("destructive-fs", risk, format!("{name}{short} {target}"));
        }
    }
}

fn is_system_path(p: &str) -> bool {
    SYSTEM_DIRS.iter().any(|d| *d != "/" && (p == *d || p.starts_with(&format!("{d}/"))))
        && !p.starts_with("/tmp")
        && !p.starts_with("/home/") // a user's own files are handled by the rm rules above
        || p == "/"
}

fn git(f: &Flags<'_>, args: &[String], out: &mut Scan) {
    let line = || format!("git {}", args.join(" ")).chars().take(120).collect::<String>();
    let sub = f.operands.first().copied().unwrap_or("");
    let dangerous = match sub {
        "push" => {
            f.has('f', "force") || f.long.contains(&"force-with-lease") || f.long.contains(&"delete") || f.long.contains(&"mirror")
                || f.operands.iter().skip(1).any(|r| r.starts_with('+') || r.starts_with(':'))
        }
        "reset" => f.long.contains(&"hard"),
        "clean" => f.has('f', "force"),
        "branch" => f.short.contains('D') || (f.short.contains('d') && f.short.contains('f')),
        "checkout" | "restore" => f.operands.iter().skip(1).any(|p| *p == ".") && !f.short.contains('b'),
        "filter-branch" | "filter-repo" => true,
        "reflog" => f.operands.get(1) == Some(&"expire"),
        "gc" => f.long.contains(&"prune"),
        "stash" => f.operands.get(1).is_some_and(|s| matches!(*s, "clear" | "drop")),
        _ => false,
    };
    if dangerous {
        out.push("destructive-git", Risk::High, line());
    }
}

fn redirections(cmd: &Command, out: &mut Scan) {
    for target in &cmd.redirect_out {
        let t = target.as_str();
        if ["/dev/sd", "/dev/nvme", "/dev/hd", "/dev/vd", "/dev/xvd", "/dev/mmcblk", "/dev/disk"].iter().any(|d| t.starts_with(d)) {
            out.push("disk", Risk::Critical, format!("> {t}"));
        } else if t != "/dev/null" && t != "/dev/stdout" && t != "/dev/stderr" && is_system_path(t) {
            out.push("destructive-fs", Risk::High, format!("> {t}"));
        }
        if t.starts_with("/dev/tcp/") || t.starts_with("/dev/udp/") {
            out.push("exfiltration", Risk::High, format!("> {t}"));
        }
    }
    for source in &cmd.redirect_in {
        if let Some(p) = credential_path(source) {
            out.push("credential-access", Risk::High, format!("< {p}"));
        }
    }
}
