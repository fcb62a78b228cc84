//! A cgroup per sandboxed server, for limits on the server as a whole (all its processes):
//! `pids.max` and the memory limit. Made under Steward's own cgroup, in cgroup v2 when its
//! controllers are delegated there, else in the v1 `pids` and `memory` hierarchies.
//!
//! Written by hand (a mountinfo parse, mkdir and a few writes): the cgroup crates manage far
//! more than this and pull in much more.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Directory names of sandbox cgroups (swept when empty).
const PREFIX: &str = "steward-sbx-";

/// What the cgroup limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Want {
    pub pids: Option<u64>,
    pub memory: Option<u64>,
}

/// The cgroup directories of one sandbox; killed and removed on drop.
#[derive(Debug)]
pub(crate) struct Cgroups {
    dirs: Vec<(PathBuf, Version)>,
    /// Which limits are in force.
    pub pids: bool,
    pub memory: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Cgroups {
    /// `cgroup.procs` of each directory, for the child to join.
    pub fn procs_fds(&self) -> Result<Vec<OwnedFd>, String> {
        self.dirs
            .iter()
            .map(|(d, _)| {
                fs::OpenOptions::new()
                    .write(true)
                    .open(d.join("cgroup.procs"))
                    .map(OwnedFd::from)
                    .map_err(|e| format!("{}: {e}", d.display()))
            })
            .collect()
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        // Kills what is left (a server's orphans) and removes the directories; when the kernel
        // needs a moment to release killed tasks, the retries run off the caller's thread.
        let dirs = std::mem::take(&mut self.dirs);
        for (dir, version) in &dirs {
            kill_all(dir, *version);
        }
        let remaining: Vec<PathBuf> = dirs
            .into_iter()
            .map(|(d, _)| d)
            .filter(|d| fs::remove_dir(d).is_err() && d.exists())
            .collect();
        if remaining.is_empty() {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("sandbox-cgroup".into())
            .spawn(move || {
                for _ in 0..50 {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    if remaining.iter().all(|d| fs::remove_dir(d).is_ok() || !d.exists()) {
                        return;
                    }
                }
            });
    }
}

fn kill_all(dir: &Path, version: Version) {
    if version == Version::V2 && fs::write(dir.join("cgroup.kill"), "1").is_ok() {
        return;
    }
    if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<libc::pid_t>().ok()) {
            // SAFETY: kill with a pid listed in this sandbox's own cgroup.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// Makes the cgroup(s) for `want`; `Err` says why none could be made.
pub(crate) fn create(want: Want) -> Result<Cgroups, String> {
    let mounts = fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("/proc/self/mountinfo: {e}"))?;
    let own = fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let name = format!("{PREFIX}{}", uuid::Uuid::new_v4().simple());
    v2(&mounts, &own, &name, want).or_else(|v2_err| {
        v1(&mounts, &own, &name, want).map_err(|v1_err| format!("cgroup v2: {v2_err}; cgroup v1: {v1_err}"))
    })
}

/// Whether a cgroup could be made now (made and removed at once).
pub(crate) fn probe(want: Want) -> Result<(bool, bool), String> {
    let c = create(want)?;
    Ok((c.pids, c.memory))
}

/// One mount of a cgroup filesystem: where, which hierarchy root, which controllers.
struct Mount {
    point: PathBuf,
    root: String,
    v2: bool,
    controllers: Vec<String>,
}

fn parse_mounts(mountinfo: &str) -> Vec<Mount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let mut rest = right.split(' ');
            let fstype = rest.next()?;
            let _source = rest.next();
            let options = rest.next().unwrap_or("");
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            Some(Mount {
                root: fields.get(3)?.to_string(),
                point: PathBuf::from(unescape(fields.get(4)?)),
                v2,
                controllers: options.split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// mountinfo escapes spaces and the like as `\040`.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v as char);
            i += 4;
            continue;
        }
        out.push(b[i] as char);
        i += 1;
    }
    out
}

/// Our cgroup path in the hierarchy whose `/proc/self/cgroup` line matches.
fn own_path(own: &str, matches: impl Fn(&str, &str) -> bool) -> Option<&str> {
    own.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        matches(id, controllers).then_some(path)
    })
}

fn dir_in(mount: &Mount, path: &str) -> PathBuf {
    let rel = path.strip_prefix(mount.root.as_str()).unwrap_or(path);
    mount.point.join(rel.trim_start_matches('/'))
}

fn v2(mounts: &str, own: &str, name: &str, want: Want) -> Result<Cgroups, String> {
    let mount = parse_mounts(mounts)
        .into_iter()
        .find(|m| m.v2)
        .ok_or("no cgroup2 mount")?;
    let path = own_path(own, |id, c| id == "0" && c.is_empty()).ok_or("not in a cgroup v2 hierarchy")?;
    let parent = dir_in(&mount, path);
    let available = fs::read_to_string(parent.join("cgroup.controllers")).map_err(|e| e.to_string())?;
    let needed: Vec<&str> = [want.pids.map(|_| "pids"), want.memory.map(|_| "memory")]
        .into_iter()
        .flatten()
        .collect();
    for c in &needed {
        if !available.split_whitespace().any(|a| a == *c) {
            return Err(format!("the {c} controller is not available in {}", parent.display()));
        }
    }
    sweep(&parent);
    let enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    for c in &needed {
        if !enabled.split_whitespace().any(|a| a == *c) {
            // Fails (EBUSY) when our own cgroup has processes and is not the root: cgroup v2
            // allows controllers only on leaves, so the subtree must be delegated to us.
            fs::write(parent.join("cgroup.subtree_control"), format!("+{c}"))
                .map_err(|e| format!("cannot enable {c} in {}: {e}", parent.display()))?;
        }
    }
    let dir = parent.join(name);
    fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut made = Cgroups {
        dirs: vec![(dir.clone(), Version::V2)],
        pids: false,
        memory: false,
    };
    if let Some(n) = want.pids {
        fs::write(dir.join("pids.max"), n.to_string()).map_err(|e| format!("pids.max: {e}"))?;
        made.pids = true;
    }
    if let Some(bytes) = want.memory {
        fs::write(dir.join("memory.max"), bytes.to_string()).map_err(|e| format!("memory.max: {e}"))?;
        let _ = fs::write(dir.join("memory.swap.max"), "0");
        made.memory = true;
    }
    Ok(made)
}

fn v1(mounts: &str, own: &str, name: &str, want: Want) -> Result<Cgroups, String> {
    let mounts = parse_mounts(mounts);
    let mut made = Cgroups {
        dirs: Vec::new(),
        pids: false,
        memory: false,
    };
    let mut problems = Vec::new();
    for (controller, limit) in [("pids", want.pids), ("memory", want.memory)] {
        let Some(limit) = limit else { continue };
        let result = (|| -> Result<(), String> {
            let mount = mounts
                .iter()
                .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))
                .ok_or_else(|| format!("no {controller} hierarchy"))?;
            let path = own_path(own, |_, c| c.split(',').any(|x| x == controller))
                .ok_or_else(|| format!("not in a {controller} cgroup"))?;
            let parent = dir_in(mount, path);
            sweep(&parent);
            let dir = parent.join(name);
            fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            made.dirs.push((dir.clone(), Version::V1));
            let (file, value) = match controller {
                "pids" => ("pids.max", limit.to_string()),
                _ => ("memory.limit_in_bytes", limit.to_string()),
            };
            fs::write(dir.join(file), &value).map_err(|e| format!("{file}: {e}"))?;
            if controller == "memory" {
                // Swap counts too, where the kernel accounts it.
                let _ = fs::write(dir.join("memory.memsw.limit_in_bytes"), &value);
            }
            Ok(())
        })();
        match result {
            Ok(()) if controller == "pids" => made.pids = true,
            Ok(()) => made.memory = true,
            Err(e) => problems.push(e),
        }
    }
    if made.dirs.is_empty() || (!made.pids && !made.memory) {
        return Err(problems.join("; "));
    }
    if !problems.is_empty() {
        tracing::debug!(problems = %problems.join("; "), "sandbox cgroup made without every controller");
    }
    Ok(made)
}

/// Removes the empty cgroups earlier sandboxes left (a busy one refuses to go: that is fine).
fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(PREFIX) {
            let _ = fs::remove_dir(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mountinfo_and_own_cgroup() {
        let mountinfo = "\
30 25 0:26 / /sys/fs/cgroup/pids rw,relatime shared:9 - cgroup cgroup rw,pids
31 25 0:27 / /sys/fs/cgroup/memory rw,relatime shared:10 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/unified rw,relatime shared:11 - cgroup2 cgroup2 rw
33 25 0:29 /sub /mnt/with\\040space rw - cgroup cgroup rw,cpu,cpuacct
";
        let m = parse_mounts(mountinfo);
        assert_eq!(m.len(), 4);
        assert!(m[2].v2 && !m[0].v2);
        assert_eq!(m[3].point, PathBuf::from("/mnt/with space"));
        assert!(m[3].controllers.iter().any(|c| c == "cpuacct"));
        let own = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n2:cpu,cpuacct:/sub/x\n0::/\n";
        assert_eq!(
            own_path(own, |_, c| c.split(',').any(|x| x == "memory")),
            Some("/process_api/abc")
        );
        assert_eq!(own_path(own, |id, c| id == "0" && c.is_empty()), Some("/"));
        assert_eq!(
            dir_in(&m[1], "/process_api/abc"),
            PathBuf::from("/sys/fs/cgroup/memory/process_api/abc")
        );
        assert_eq!(dir_in(&m[3], "/sub/x"), PathBuf::from("/mnt/with space/x"));
    }
}
