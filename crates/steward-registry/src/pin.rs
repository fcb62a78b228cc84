//! Which package a server command runs, and whether its version is pinned.
//!
//! `npx -y @scope/server@1.2.3`, `uvx mcp-server-time==2026.1.1`, `docker run ... image:1.2`:
//! launchers fetch a package at start-up, so the version in the command line is the version
//! that runs. A missing version, `latest` or a range means "whatever is newest today".

use serde::Serialize;

/// Where a launcher fetches packages from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ecosystem {
    Npm,
    Pypi,
    Docker,
}

/// A package a command line runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRef {
    pub ecosystem: Ecosystem,
    pub name: String,
    /// The version or tag as written; `None` when the command names none.
    pub version: Option<String>,
}

impl PackageRef {
    /// Whether the command pins an exact version (a digest counts for images).
    pub fn is_pinned(&self) -> bool {
        self.version.as_deref().is_some_and(is_exact_version)
    }
}

/// Whether a version string names one exact release: not empty, `latest`, a tag such as
/// `next`, or a range (`^1`, `~1.2`, `>=1`, `1.x`, `*`).
pub fn is_exact_version(v: &str) -> bool {
    let v = v.trim();
    if let Some(digest) = v.strip_prefix("sha256:") {
        return !digest.is_empty();
    }
    let v = v.strip_prefix('v').unwrap_or(v);
    let lower = v.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "latest" | "next" | "stable" | "edge" | "nightly" | "main" | "master" | "canary" | "beta" | "alpha"
    ) {
        return false;
    }
    if v.contains(['^', '~', '>', '<', '*', '|', ' ', ',']) {
        return false;
    }
    // A version starts with a digit; `1.x`, `1.2.X` are ranges.
    v.chars().next().is_some_and(|c| c.is_ascii_digit())
        && !v.split(['.', '-', '+']).any(|p| p.eq_ignore_ascii_case("x"))
}

/// Splits an npm spec: `@scope/pkg@1.2.3` → (`@scope/pkg`, `1.2.3`); `pkg` → (`pkg`, None).
pub fn split_npm_spec(spec: &str) -> (String, Option<String>) {
    let (scope, rest) = match spec.strip_prefix('@') {
        Some(r) => ("@", r),
        None => ("", spec),
    };
    // In `@scope/pkg@1`, the version `@` comes after the `/`.
    let search_from = if scope.is_empty() {
        0
    } else {
        rest.find('/').map(|i| i + 1).unwrap_or(rest.len())
    };
    match rest[search_from..].find('@') {
        Some(i) => {
            let at = search_from + i;
            (format!("{scope}{}", &rest[..at]), Some(rest[at + 1..].to_string()))
        }
        None => (spec.to_string(), None),
    }
}

/// Splits a Python spec: `pkg==1.2`, `pkg@1.2` → (`pkg`, `1.2`); `pkg>=1` → (`pkg`, `>=1`).
fn split_pypi_spec(spec: &str) -> (String, Option<String>) {
    if let Some((n, v)) = spec.split_once("==") {
        return (n.to_string(), Some(v.to_string()));
    }
    if let Some((n, v)) = spec.split_once('@') {
        return (n.to_string(), Some(v.to_string()));
    }
    if let Some(i) = spec.find(['>', '<', '~', '!', '=']) {
        return (spec[..i].to_string(), Some(spec[i..].to_string()));
    }
    let (name, _extras) = spec.split_once('[').unwrap_or((spec, ""));
    (name.to_string(), None)
}

/// Splits an image reference: `ghcr.io/o/img:1.2` → (`ghcr.io/o/img`, `1.2`);
/// `img@sha256:…` → (`img`, `sha256:…`).
fn split_image(image: &str) -> (String, Option<String>) {
    if let Some((n, d)) = image.split_once('@') {
        return (n.to_string(), Some(d.to_string()));
    }
    let last_slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[last_slash..].rfind(':') {
        Some(i) => (
            image[..last_slash + i].to_string(),
            Some(image[last_slash + i + 1..].to_string()),
        ),
        None => (image.to_string(), None),
    }
}

fn program(word: &str) -> String {
    let base = word.rsplit(['/', '\\']).next().unwrap_or(word);
    base.strip_suffix(".exe")
        .or_else(|| base.strip_suffix(".cmd"))
        .unwrap_or(base)
        .to_ascii_lowercase()
}

/// The first operand after `args[start..]`, skipping flags; `with_value` flags consume the next word.
fn first_operand<'a>(args: &'a [String], with_value: &[&str]) -> Option<(usize, &'a str)> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if a == "--" {
            return args.get(i + 1).map(|s| (i + 1, s.as_str()));
        }
        if a.starts_with('-') {
            if with_value.contains(&a) {
                i += 1;
            }
            i += 1;
            continue;
        }
        return Some((i, a));
    }
    None
}

/// The value of `--flag VALUE` or `--flag=VALUE` for any of `flags`.
fn flag_value<'a>(args: &'a [String], flags: &[&str]) -> Option<&'a str> {
    for (i, a) in args.iter().enumerate() {
        if a == "--" {
            break;
        }
        for f in flags {
            if a == f {
                return args.get(i + 1).map(String::as_str);
            }
            if let Some(v) = a.strip_prefix(f).and_then(|r| r.strip_prefix('=')) {
                return Some(v);
            }
        }
    }
    None
}

/// The package a server command line runs, when it runs one through a package launcher.
pub fn package_of(command: &str, args: &[String]) -> Option<PackageRef> {
    let npm = |spec: &str| {
        let (name, version) = split_npm_spec(spec);
        Some(PackageRef {
            ecosystem: Ecosystem::Npm,
            name,
            version,
        })
    };
    let pypi = |spec: &str| {
        let (name, version) = split_pypi_spec(spec);
        Some(PackageRef {
            ecosystem: Ecosystem::Pypi,
            name,
            version,
        })
    };
    match program(command).as_str() {
        "npx" | "bunx" | "pnpx" => {
            if let Some(p) = flag_value(args, &["-p", "--package"]) {
                return npm(p);
            }
            first_operand(args, &["-c", "--call", "--registry", "--cache", "--userconfig"]).and_then(|(_, s)| npm(s))
        }
        "npm" | "pnpm" | "yarn" | "bun" => {
            let (i, sub) = first_operand(args, &["--registry", "--prefix", "-C", "--dir"])?;
            if !matches!(sub, "exec" | "x" | "dlx") {
                return None;
            }
            let rest = &args[i + 1..];
            if let Some(p) = flag_value(rest, &["-p", "--package"]) {
                return npm(p);
            }
            first_operand(rest, &["-c", "--call"]).and_then(|(_, s)| npm(s))
        }
        "uvx" => {
            if let Some(p) = flag_value(args, &["--from"]) {
                return pypi(p);
            }
            first_operand(
                args,
                &[
                    "--with",
                    "--python",
                    "-p",
                    "--index",
                    "--index-url",
                    "--with-requirements",
                ],
            )
            .and_then(|(_, s)| pypi(s))
        }
        "uv" => {
            // uv tool run X / uv run --with X: only `tool run` fetches a package.
            let (i, sub) = first_operand(args, &["--directory", "--project"])?;
            let rest = &args[i + 1..];
            let rest = match sub {
                "tool" if rest.first().is_some_and(|s| s == "run") => &rest[1..],
                _ => return None,
            };
            if let Some(p) = flag_value(rest, &["--from"]) {
                return pypi(p);
            }
            first_operand(rest, &["--with", "--python", "-p"]).and_then(|(_, s)| pypi(s))
        }
        "pipx" => {
            let (i, sub) = first_operand(args, &[])?;
            if sub != "run" {
                return None;
            }
            let rest = &args[i + 1..];
            if let Some(p) = flag_value(rest, &["--spec"]) {
                return pypi(p);
            }
            first_operand(rest, &["--python", "--pip-args"]).and_then(|(_, s)| pypi(s))
        }
        "docker" | "podman" | "nerdctl" => {
            let (i, sub) = first_operand(args, &["--context", "-H", "--host", "--config"])?;
            let rest = match sub {
                "run" => &args[i + 1..],
                "container" if args.get(i + 1).is_some_and(|s| s == "run") => &args[i + 2..],
                _ => return None,
            };
            let with_value = [
                "-e",
                "--env",
                "--env-file",
                "-v",
                "--volume",
                "--mount",
                "--name",
                "--network",
                "--net",
                "-p",
                "--publish",
                "-w",
                "--workdir",
                "-u",
                "--user",
                "--entrypoint",
                "--platform",
                "-l",
                "--label",
                "--add-host",
                "--cpus",
                "-m",
                "--memory",
                "--pull",
                "--restart",
                "--user-ns",
                "--userns",
                "-h",
                "--hostname",
                "--cap-add",
                "--cap-drop",
                "--security-opt",
                "--device",
                "--tmpfs",
                "--ulimit",
                "--log-driver",
                "--log-opt",
                "--dns",
                "--ipc",
                "--pid",
                "--runtime",
                "--gpus",
                "--shm-size",
            ];
            let (_, image) = first_operand(rest, &with_value)?;
            let (name, version) = split_image(image);
            Some(PackageRef {
                ecosystem: Ecosystem::Docker,
                name,
                version,
            })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(cmd: &str) -> Option<PackageRef> {
        let words: Vec<String> = cmd.split_whitespace().map(String::from).collect();
        package_of(&words[0], &words[1..])
    }

    #[test]
    fn finds_packages_and_versions() {
        let p = pkg("npx -y @modelcontextprotocol/server-github@0.6.2").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_deref()),
            ("@modelcontextprotocol/server-github", Some("0.6.2"))
        );
        assert!(p.is_pinned());
        let p = pkg("npx -y @modelcontextprotocol/server-github").unwrap();
        assert_eq!(p.version, None);
        assert!(!p.is_pinned());
        assert!(!pkg("npx -y server-x@latest").unwrap().is_pinned());
        assert!(!pkg("npx server-x@^1.2").unwrap().is_pinned());
        assert_eq!(
            pkg("npx --package=srv@1.0.0 srv-bin").unwrap().version.as_deref(),
            Some("1.0.0")
        );
        assert_eq!(pkg("pnpm dlx srv@2.0.0").unwrap().version.as_deref(), Some("2.0.0"));
        let p = pkg("uvx mcp-server-time==2026.1.1").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_deref()),
            ("mcp-server-time", Some("2026.1.1"))
        );
        assert!(!pkg("uvx mcp-server-time").unwrap().is_pinned());
        assert_eq!(
            pkg("uvx --from mcp-server-git@1.0.0 mcp-server-git")
                .unwrap()
                .version
                .as_deref(),
            Some("1.0.0")
        );
        let p = pkg("docker run -i --rm -e TOKEN ghcr.io/github/github-mcp-server:0.9.0").unwrap();
        assert_eq!(
            (p.name.as_str(), p.version.as_deref()),
            ("ghcr.io/github/github-mcp-server", Some("0.9.0"))
        );
        assert!(
            !pkg("docker run -i ghcr.io/github/github-mcp-server")
                .unwrap()
                .is_pinned()
        );
        assert!(!pkg("docker run -i localhost:5000/img:latest").unwrap().is_pinned());
        assert!(pkg("docker run -i img@sha256:abcd").unwrap().is_pinned());
        assert_eq!(pkg("/usr/local/bin/my-server --stdio"), None);
        assert_eq!(pkg("node build/index.js"), None);
    }

    #[test]
    fn exact_versions() {
        for v in ["1.2.3", "v1.2.3", "2026.8.31", "1.0.0-beta.1"] {
            assert!(is_exact_version(v), "{v}");
        }
        for v in ["", "latest", "next", "^1.2.3", "~1.2", ">=1", "1.x", "*", "1.2.X"] {
            assert!(!is_exact_version(v), "{v}");
        }
    }
}
