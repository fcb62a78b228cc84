//! What a path stands for: the scope of a command's target (labelling rule 1) and the files
//! that hold credentials, persistence hooks or logs.

/// Where a path points, from the point of view of what losing it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `/`, `/*`.
    Root,
    /// The user's home, or a top-level entry of it that is not a cache (`~`, `~/*`, `~/.config`).
    Home,
    /// A system directory or a file in one (`/etc`, `/usr/lib`, `/var/lib/postgresql`).
    System,
    /// Another user's home (`/home/bob`), or a top-level entry of it.
    OtherHome,
    /// A device (`/dev/sda`).
    Device,
    /// The whole working directory (`.`, `*`, `./*`): everything in it, not a regenerable part.
    Cwd,
    /// Above the working directory (`..`, `../../`).
    Parent,
    /// A variable whose value is unknown, alone (`$DIR`, `$DIR/`): may be empty, and then `/`.
    Unknown,
    /// A specific path in the project, a cache, a temp dir: regenerable.
    Local,
}

impl Scope {
    /// Whether deleting (or overwriting) what the path names is dangerous.
    pub fn dangerous(self) -> bool {
        !matches!(self, Scope::Local)
    }
}

/// Path components that name regenerable things: deleting them costs a rebuild.
const REGENERABLE: &[&str] = &[
    ".cache",
    "cache",
    "caches",
    "Caches",
    "node_modules",
    "target",
    "build",
    "dist",
    "out",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".venv",
    "venv",
    ".tox",
    ".gradle",
    ".next",
    ".nuxt",
    "coverage",
    ".nyc_output",
    "tmp",
    "temp",
    ".tmp",
    "DerivedData",
    ".npm",
    ".yarn",
    ".pnpm-store",
    "incremental",
    "debug",
    "release",
    ".turbo",
    ".parcel-cache",
];

/// The scope of a command's target, as written (after expansion).
pub(crate) fn scope(path: &str) -> Scope {
    let p = path.trim();
    if p.is_empty() {
        return Scope::Local;
    }
    let p = p.trim_end_matches('/');
    let p = if p.is_empty() { "/" } else { p };
    // Globs at the end name everything in the directory.
    let dir = p.trim_end_matches("/*").trim_end_matches("/.*");
    let dir = if dir.is_empty() { "/" } else { dir };
    if matches!(dir, "/" | "/." | "/*") {
        return Scope::Root;
    }
    if p.starts_with("/dev/") {
        return if matches!(
            p,
            "/dev/null" | "/dev/zero" | "/dev/stdout" | "/dev/stderr" | "/dev/random" | "/dev/urandom"
        ) || p.starts_with("/dev/fd/")
            || p.starts_with("/dev/tcp/")
            || p.starts_with("/dev/udp/")
            || p.starts_with("/dev/shm/")
        {
            Scope::Local
        } else {
            Scope::Device
        };
    }
    if matches!(dir, "." | "*" | "./*" | ".*") {
        return Scope::Cwd;
    }
    if dir == ".." || dir.starts_with("../") || dir.contains("/../") {
        return Scope::Parent;
    }
    // The home: `~`, `$HOME`, `${HOME}`, `~user`.
    let home_rest = ["~/", "$HOME/", "${HOME}/"]
        .iter()
        .find_map(|h| dir.strip_prefix(h))
        .or_else(|| matches!(dir, "~" | "$HOME" | "${HOME}").then_some(""));
    if let Some(rest) = home_rest {
        return inside_home(rest, Scope::Home);
    }
    if let Some(rest) = dir.strip_prefix('~') {
        // `~bob`, `~bob/x`: another user's home.
        let rest = rest.split_once('/').map_or("", |(_, r)| r);
        return inside_home(rest, Scope::OtherHome);
    }
    if let Some(rest) = dir.strip_prefix("/home/").or_else(|| dir.strip_prefix("/Users/")) {
        let rest = rest.split_once('/').map_or("", |(_, r)| r);
        return inside_home(rest, Scope::OtherHome);
    }
    if dir == "/root" || dir.starts_with("/root/") {
        return inside_home(dir.strip_prefix("/root/").unwrap_or(""), Scope::OtherHome);
    }
    if dir == "/tmp" || dir == "/var/tmp" {
        return if p.ends_with('*') { Scope::System } else { Scope::Local };
    }
    if dir.starts_with("/tmp/") || dir.starts_with("/var/tmp/") || dir.starts_with("/private/tmp/") {
        return Scope::Local;
    }
    if dir.starts_with('/') {
        // Outside the home and the temp dirs every absolute path is the system's or another
        // project's (`/var/cache/app` included: the system regenerates it, an agent should not).
        return Scope::System;
    }
    if let Some(var) = dir.strip_prefix('$') {
        let name = var.trim_start_matches('{');
        if !name.contains('/') {
            return Scope::Unknown;
        }
    }
    Scope::Local
}

/// A path inside a home (`rest` after the home): the home itself and its top-level entries are
/// the user's, unless they are caches or build output; deeper paths are the user's projects.
fn inside_home(rest: &str, top: Scope) -> Scope {
    let parts: Vec<&str> = rest.split('/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| REGENERABLE.contains(c)) {
        return Scope::Local;
    }
    match parts.len() {
        0 | 1 => top,
        // `~/.config/x`, `~/.local/share`: still the user's settings and data.
        2 if parts[0].starts_with('.') || matches!(parts[0], "Documents" | "Desktop" | "Pictures" | "Library") => top,
        _ => Scope::Local,
    }
}

/// A path that is a system file or directory (not a temp dir, not a device).
pub(crate) fn is_system(p: &str) -> bool {
    matches!(scope(p), Scope::System | Scope::Root)
}

/// Files whose contents are secrets: reading, copying or sending them is credential access.
pub(crate) fn credential_path(word: &str) -> Option<&str> {
    let b = word.as_bytes();
    if b.len() < 4 || b.len() > 4096 {
        return None;
    }
    // Cheap gate: every credential path has a `/`, starts with `.`, or is a key file.
    let mut candidate = b[0] == b'.';
    // White space: only in a browser store's name (`…/Default/Login Data`).
    let spaced = b.len() >= 10 && b[b.len() - 10..].eq_ignore_ascii_case(b"login data");
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_whitespace() && !(spaced && c == b' ') {
            return None;
        }
        candidate |= c == b'/' || c == b'_' && i >= 2 && b[i - 2..i].eq_ignore_ascii_case(b"id");
    }
    let ends_ci = |suffix: &[u8]| b.len() >= suffix.len() && b[b.len() - suffix.len()..].eq_ignore_ascii_case(suffix);
    if !candidate && !ends_ci(b".key") && !ends_ci(b".pem") && !ends_ci(b"Login Data") {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    let lower = lower.as_str();
    let file = lower.rsplit('/').next().unwrap_or(lower);
    let public = file.ends_with(".pub")
        || file.ends_with(".example")
        || file.ends_with(".sample")
        || file.ends_with(".template")
        || file.ends_with(".dist");
    if public {
        return None;
    }
    let sensitive_file = matches!(
        file,
        "id_rsa"
            | "id_dsa"
            | "id_ecdsa"
            | "id_ed25519"
            | "id_ecdsa_sk"
            | "id_ed25519_sk"
            | ".netrc"
            | "_netrc"
            | ".pgpass"
            | ".git-credentials"
            | ".npmrc"
            | ".pypirc"
            | "master.key"
            | ".vault-token"
            | ".boto"
            | "credentials.db"
            | "access_tokens.db"
            | "accesstokens.json"
            | "msal_token_cache.json"
            | "msal_token_cache.bin"
            | "application_default_credentials.json"
            | "legacy_credentials"
            | "logins.json"
            | "key3.db"
            | "key4.db"
            | "login data"
            | "cookies.sqlite"
            | "keychain-2.db"
            | "login.keychain-db"
            | ".htpasswd"
            | "secring.gpg"
            | "wallet.dat"
    ) || file.starts_with("id_") && !file.contains('.') && lower.contains(".ssh/")
        || (file == ".env" || file.starts_with(".env.") || file.ends_with(".env") && file.len() > 4)
        || (file.ends_with(".pem") || file.ends_with(".key") || file.ends_with(".p12") || file.ends_with(".pfx"))
            && (lower.contains("private")
                || lower.contains("/.ssh/")
                || lower.contains("/ssl/")
                || lower.contains("secret"));
    let system_secret = matches!(
        lower,
        "/etc/shadow" | "/etc/gshadow" | "/etc/shadow-" | "/etc/sudoers" | "/etc/master.passwd"
    ) || lower.starts_with("/etc/ssh/ssh_host_") && !file.ends_with(".pub")
        || lower.contains("/secrets/kubernetes.io/serviceaccount/token")
        || lower.starts_with("/proc/") && lower.ends_with("/environ")
        || lower.contains(".aws/credentials")
        || lower.contains(".aws/sso/cache")
        || lower.contains(".kube/config")
        || lower.contains(".docker/config.json")
        || lower.contains(".gnupg/private-keys")
        || lower.contains(".gnupg/secring")
        || lower.contains(".config/gcloud/") && !file.ends_with(".log")
        || lower.contains(".azure/") && (file.contains("token") || file.ends_with(".json") && file.contains("cred"))
        || lower.contains(".password-store/")
        || lower.contains("/.ssh/") && (file.starts_with("id_") || file.ends_with(".pem") || file.ends_with("_key"));
    let shadow_ok = !matches!(file, "shadow" | "gshadow") || lower.starts_with("/etc/");
    (sensitive_file && shadow_ok || system_secret).then_some(word)
}

/// Directories that hold a user's credentials, as path components.
pub(crate) const SECRET_DIRS: &[&str] = &[
    ".ssh",
    ".aws",
    ".gnupg",
    ".kube",
    ".docker",
    ".password-store",
    ".azure",
    "gcloud",
];

/// A path that names a credentials directory itself (`~/.ssh`, `/home/a/.aws/`).
pub(crate) fn secret_dir(p: &str) -> bool {
    let p = p.trim_end_matches('/').trim_end_matches("/*");
    p.rsplit('/').next().is_some_and(|last| SECRET_DIRS.contains(&last))
}

/// Shell start-up files: code appended to them runs in every new shell.
pub(crate) fn shell_rc(p: &str) -> bool {
    let file = p.rsplit('/').next().unwrap_or(p);
    matches!(
        file,
        ".bashrc"
            | ".bash_profile"
            | ".bash_login"
            | ".profile"
            | ".zshrc"
            | ".zprofile"
            | ".zshenv"
            | ".zlogin"
            | ".kshrc"
            | ".cshrc"
            | ".tcshrc"
            | "config.fish"
            | ".xprofile"
            | ".xinitrc"
    ) || matches!(
        p,
        "/etc/profile" | "/etc/bash.bashrc" | "/etc/bashrc" | "/etc/zshrc" | "/etc/environment"
    ) || p.starts_with("/etc/profile.d/")
}

/// Files and directories where writing something makes it run later (persistence).
pub(crate) fn autostart(p: &str) -> bool {
    p == "/etc/crontab"
        || p.starts_with("/etc/cron")
        || p.starts_with("/var/spool/cron")
        || p.contains("/systemd/system")
        || p.contains(".config/systemd/user")
        || p.contains("/LaunchAgents")
        || p.contains("/LaunchDaemons")
        || p.ends_with("authorized_keys")
        || p.ends_with("authorized_keys2")
        || p == "/etc/ld.so.preload"
        || p == "/etc/sudoers"
        || p.starts_with("/etc/sudoers.d")
        || p.starts_with("/etc/init.d/")
        || p == "/etc/rc.local"
        || p.contains("/.config/autostart")
        || p.starts_with("/etc/update-motd.d/")
        || p.ends_with(".git/hooks/pre-commit") && p.starts_with('/')
}

/// Shell history files.
pub(crate) fn history_file(p: &str) -> bool {
    let file = p.rsplit('/').next().unwrap_or(p);
    matches!(
        file,
        ".bash_history"
            | ".zsh_history"
            | ".history"
            | ".sh_history"
            | ".python_history"
            | ".mysql_history"
            | ".psql_history"
            | ".lesshst"
            | ".viminfo"
    )
}

/// System logs.
pub(crate) fn log_file(p: &str) -> bool {
    p.starts_with("/var/log") || p.starts_with("/var/adm") || p == "/var/run/utmp" || p.starts_with("/run/log/journal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        for (p, s) in [
            ("/", Scope::Root),
            ("/*", Scope::Root),
            ("~", Scope::Home),
            ("~/", Scope::Home),
            ("~/*", Scope::Home),
            ("$HOME", Scope::Home),
            ("${HOME}/", Scope::Home),
            ("~/.config", Scope::Home),
            ("~/Documents/*", Scope::Home),
            ("~/.cache/pip", Scope::Local),
            ("~/projects/demo/build", Scope::Local),
            ("/etc", Scope::System),
            ("/usr/lib", Scope::System),
            ("/var/lib/postgresql", Scope::System),
            ("/home/bob", Scope::OtherHome),
            ("/root", Scope::OtherHome),
            ("/dev/sda", Scope::Device),
            ("/dev/null", Scope::Local),
            (".", Scope::Cwd),
            ("*", Scope::Cwd),
            ("../../", Scope::Parent),
            ("$DIR", Scope::Unknown),
            ("./build", Scope::Local),
            ("node_modules", Scope::Local),
            ("/tmp/build-1234", Scope::Local),
            ("/tmp/*", Scope::System),
            ("target/", Scope::Local),
        ] {
            assert_eq!(scope(p), s, "{p}");
        }
    }

    #[test]
    fn credentials() {
        for p in [
            "~/.ssh/id_rsa",
            "/etc/shadow",
            "~/.aws/credentials",
            ".env",
            "config/.env.production",
            "~/.kube/config",
            "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "~/.config/google-chrome/Default/Login Data",
            "~/.mozilla/firefox/x.default/logins.json",
            "~/.azure/accessTokens.json",
            "/proc/1/environ",
        ] {
            assert!(credential_path(p).is_some(), "{p}");
        }
        for p in [
            "~/.ssh/id_rsa.pub",
            ".env.example",
            "~/.aws/config",
            "~/.ssh/known_hosts",
            "/etc/passwd",
            "README.md",
        ] {
            assert!(credential_path(p).is_none(), "{p}");
        }
    }
}
