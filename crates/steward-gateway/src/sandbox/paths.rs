//! Paths in a sandbox: `${HOME}`, `${PROJECT}`, `~` and relative paths, and what a program is
//! made of on disk (the file `PATH` finds, its interpreter when it is a script, their prefixes).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use super::SandboxError;

/// What paths are relative to.
#[derive(Debug, Clone)]
pub(crate) struct Places {
    /// `${HOME}`: the server's HOME (its declared environment, else Steward's).
    pub home: Option<PathBuf>,
    /// `${PROJECT}`: the server's working directory; relative paths start here.
    pub project: PathBuf,
    /// The server's PATH, to find its program.
    pub path_env: Option<OsString>,
}

impl Places {
    /// `${HOME}/.npm` and friends; `None` without a home.
    pub fn in_home(&self, rel: &str) -> Option<PathBuf> {
        self.home.as_ref().map(|h| h.join(rel))
    }
}

/// Expands one declared path. Only `${HOME}` and `${PROJECT}` are known: any other `${...}` is
/// an error, not an empty string (a sandbox must not silently grant `/`).
pub(crate) fn expand(raw: &str, places: &Places) -> Result<PathBuf, SandboxError> {
    let bad = |message: String| SandboxError::Path {
        path: raw.to_string(),
        message,
    };
    let text = raw.trim();
    if text.is_empty() {
        return Err(bad("an empty path".into()));
    }
    let home = || {
        places
            .home
            .as_ref()
            .map(|h| h.to_string_lossy().into_owned())
            .ok_or_else(|| bad("HOME is not set".into()))
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    if rest == "~" || rest.starts_with("~/") {
        out.push_str(&home()?);
        rest = &rest[1..];
    }
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}').ok_or_else(|| bad("unterminated ${...}".into()))?;
        match &after[..end] {
            "HOME" => out.push_str(&home()?),
            "PROJECT" => out.push_str(&places.project.to_string_lossy()),
            other => {
                return Err(bad(format!(
                    "unknown variable ${{{other}}} (a sandbox path may use ${{HOME}} and ${{PROJECT}})"
                )));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    let p = PathBuf::from(out);
    let p = if p.is_absolute() { p } else { places.project.join(p) };
    Ok(normalize(&p))
}

/// Removes `.` and resolves `..` lexically (the kernel resolves symlinks when the rule is made).
pub(crate) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The executable `PATH` resolves `program` to, as `execvp` would.
pub(crate) fn find_program(program: &OsStr, places: &Places) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 || program.to_string_lossy().contains('/') {
        let full = if p.is_absolute() {
            p.to_path_buf()
        } else {
            places.project.join(p)
        };
        return is_executable(&full).then_some(full);
    }
    let path = places
        .path_env
        .clone()
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                places.project.join(dir)
            }
        })
        .map(|dir| dir.join(p))
        .find(|c| is_executable(c))
}

/// Every executable named `name` on PATH, in order (what a launcher that searches further than
/// the first hit, like uv looking for a system Python, may run).
pub(crate) fn find_all_programs(name: &str, places: &Places) -> Vec<PathBuf> {
    let path = places
        .path_env
        .clone()
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .filter(|c| is_executable(c))
        .collect()
}

fn is_executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The files a program runs as: the program, its canonical path, and (for a `#!` script) its
/// interpreter's, recursively (`#!/usr/bin/env node` resolves `node` on PATH). Bounded depth.
pub(crate) fn program_files(program: &Path, places: &Places) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut next = Some(program.to_path_buf());
    for _ in 0..4 {
        let Some(p) = next.take() else { break };
        push_unique(&mut out, p.clone());
        if let Ok(c) = std::fs::canonicalize(&p) {
            push_unique(&mut out, c);
        }
        next = interpreter(&p, places);
    }
    out
}

fn push_unique(v: &mut Vec<PathBuf>, p: PathBuf) {
    if !v.contains(&p) {
        v.push(p);
    }
}

/// The interpreter named by a `#!` line, resolved (through `env`).
fn interpreter(script: &Path, places: &Places) -> Option<PathBuf> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = line.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split_whitespace();
    let interp = PathBuf::from(words.next()?);
    if interp.file_name().is_some_and(|n| n == "env") {
        // `#!/usr/bin/env [-S] node --flags`: the first word that is not an option.
        let name = words.find(|w| !w.starts_with('-'))?;
        return find_program(OsStr::new(name), places);
    }
    Some(interp)
}

/// The install prefix a program file lives in: `/usr` for `/usr/bin/node`, `~/.venv` for
/// `~/.venv/bin/python`; the file's own directory when it is not in a `bin`. Never `/`, and
/// never a directory that holds the home directory (a program in `~/bin` does not open `~`).
pub(crate) fn prefix_of(file: &Path, places: &Places) -> Option<PathBuf> {
    let dir = file.parent()?;
    let in_bin = dir.file_name().is_some_and(|n| n == "bin" || n == "sbin");
    let candidate = if in_bin { dir.parent() } else { Some(dir) };
    let too_wide = |p: &Path| p.parent().is_none() || places.home.as_deref().is_some_and(|h| h.starts_with(p));
    match candidate {
        Some(p) if !too_wide(p) => Some(p.to_path_buf()),
        _ if !too_wide(dir) => Some(dir.to_path_buf()),
        _ => None,
    }
}

/// The first argument that names an existing file (the script of `node x.js`, `python x.py`).
pub(crate) fn script_arg(args: &[OsString], places: &Places) -> Option<PathBuf> {
    let first = args.iter().find(|a| !a.to_string_lossy().starts_with('-'))?;
    let p = Path::new(first);
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        places.project.join(p)
    };
    p.is_file().then(|| normalize(&p))
}

/// What a Node script needs to load: the outermost enclosing `node_modules` (its dependencies
/// are hoisted there), else the nearest directory with a `package.json`, else its directory.
pub(crate) fn node_package_tree(script: &Path, places: &Places) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in [script.to_path_buf(), std::fs::canonicalize(script).unwrap_or_default()] {
        if p.as_os_str().is_empty() {
            continue;
        }
        let dirs: Vec<&Path> = p.ancestors().skip(1).collect();
        let tree = dirs
            .iter()
            .rev()
            .find(|d| d.file_name().is_some_and(|n| n == "node_modules"))
            .or_else(|| dirs.iter().take(8).find(|d| d.join("package.json").is_file()))
            .or(dirs.first())
            .map(|d| d.to_path_buf());
        if let Some(t) = tree
            && t.parent().is_some()
            && !places.home.as_deref().is_some_and(|h| h.starts_with(&t))
        {
            push_unique(&mut out, t);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        Places {
            home: Some(PathBuf::from("/home/ann")),
            project: PathBuf::from("/work/proj"),
            path_env: None,
        }
    }

    #[test]
    fn expands_home_project_tilde_and_relative_paths() {
        let p = places();
        assert_eq!(expand("${HOME}/.npm", &p).unwrap(), PathBuf::from("/home/ann/.npm"));
        assert_eq!(expand("~/.cache/uv", &p).unwrap(), PathBuf::from("/home/ann/.cache/uv"));
        assert_eq!(expand("~", &p).unwrap(), PathBuf::from("/home/ann"));
        assert_eq!(
            expand("${PROJECT}/scratch", &p).unwrap(),
            PathBuf::from("/work/proj/scratch")
        );
        assert_eq!(expand("./scratch", &p).unwrap(), PathBuf::from("/work/proj/scratch"));
        assert_eq!(expand("data/../out", &p).unwrap(), PathBuf::from("/work/proj/out"));
        assert_eq!(expand("/usr", &p).unwrap(), PathBuf::from("/usr"));
    }

    #[test]
    fn unknown_variables_and_missing_home_are_errors() {
        let p = places();
        let e = expand("${SECRET_DIR}/x", &p).unwrap_err().to_string();
        assert!(e.contains("unknown variable ${SECRET_DIR}"), "{e}");
        assert!(expand("${HOME", &p).unwrap_err().to_string().contains("unterminated"));
        assert!(expand("  ", &p).is_err());
        let no_home = Places { home: None, ..places() };
        assert!(
            expand("~/.npm", &no_home)
                .unwrap_err()
                .to_string()
                .contains("HOME is not set")
        );
    }

    #[test]
    fn prefixes_are_never_root_or_above_home() {
        let p = places();
        assert_eq!(prefix_of(Path::new("/usr/bin/node"), &p), Some(PathBuf::from("/usr")));
        assert_eq!(
            prefix_of(Path::new("/home/ann/.venv/bin/python"), &p),
            Some(PathBuf::from("/home/ann/.venv"))
        );
        assert_eq!(prefix_of(Path::new("/bin/sh"), &p), Some(PathBuf::from("/bin")));
        assert_eq!(
            prefix_of(Path::new("/home/ann/bin/tool"), &p),
            Some(PathBuf::from("/home/ann/bin"))
        );
        assert_eq!(prefix_of(Path::new("/home/ann/tool"), &p), None);
        assert_eq!(
            prefix_of(Path::new("/opt/srv/server"), &p),
            Some(PathBuf::from("/opt/srv"))
        );
    }

    #[test]
    fn finds_programs_and_their_interpreters() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let tool = bin.join("tool");
        std::fs::write(&tool, "#!/usr/bin/env -S sh -e\necho hi\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = Places {
            path_env: Some(OsString::from(format!("/nonexistent:{}:/usr/bin:/bin", bin.display()))),
            ..places()
        };
        let found = find_program(OsStr::new("tool"), &p).unwrap();
        assert_eq!(found, tool);
        let files = program_files(&found, &p);
        assert_eq!(files[0], tool);
        assert!(
            files.iter().any(|f| f.file_name().is_some_and(|n| n == "sh")),
            "the interpreter is part of the program: {files:?}"
        );
        assert!(find_program(OsStr::new("surely-not-a-program"), &p).is_none());
    }

    #[test]
    fn node_scripts_bring_their_node_modules() {
        let dir = tempfile::tempdir().unwrap();
        let nm = dir.path().join("e2e/node_modules");
        let script = nm.join("@scope/pkg/dist/index.js");
        std::fs::create_dir_all(script.parent().unwrap()).unwrap();
        std::fs::write(&script, "").unwrap();
        let p = places();
        let tree = node_package_tree(&script, &p);
        assert_eq!(tree[0], nm);
        let lone = dir.path().join("app/server.js");
        std::fs::create_dir_all(lone.parent().unwrap()).unwrap();
        std::fs::write(&lone, "").unwrap();
        assert_eq!(node_package_tree(&lone, &p)[0], dir.path().join("app"));
        let args = [OsString::from("--no-warnings"), lone.clone().into_os_string()];
        assert_eq!(script_arg(&args, &p), Some(lone));
    }
}
