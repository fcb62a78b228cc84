//! Sandboxed stdio servers, built from kernel facilities (no container runtime): Landlock for
//! the filesystem (and TCP ports), a network namespace and a seccomp filter for the network,
//! no_new_privs and dropped capabilities, rlimits and a cgroup for resources.
//!
//! [`apply`] prepares everything in the parent (paths, the Landlock ruleset, the seccomp
//! program, cgroups, a private temp dir) and installs a `pre_exec` hook that only enforces it
//! in the child. When the kernel lacks a facility the sandbox needs, [`apply`] fails with a
//! message that says what is missing and how to relax the sandbox; with `best_effort: true` it
//! goes on and [`Sandboxed::skipped`] lists what is not in force (log it, audit it). See
//! `docs/sandbox.md`.

mod cgroup;
mod child;
mod error;
mod facility;
mod paths;
mod plan;
mod profile;
mod rules;
mod seccomp;
mod spec;
mod startup;

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

pub use error::{Missing, SandboxError, Unavailable};
pub use facility::{Facility, Skipped, UNAVAILABLE_ENV};
pub use spec::{Limits, NetRule, Network, Profile, SandboxSpec, Size};
pub use startup::startup_check;

use child::{ChildSteps, IdMaps, Step};
use plan::{CgroupState, Launch, Plan};
use steward_store::{AuditEvent, EventKind};

/// A command prepared to start inside its sandbox. Keep it for as long as the server runs:
/// dropping it kills what is left in the sandbox's cgroup and removes its private temp dir.
#[derive(Debug, Default)]
pub struct Sandboxed {
    profile: Option<Profile>,
    skipped: Vec<Skipped>,
    tmp: Option<tempfile::TempDir>,
    _cgroups: Option<cgroup::Cgroups>,
    /// Read end of the pipe the child reports a failed step on.
    report: Option<OwnedFd>,
}

impl Sandboxed {
    /// No sandbox (the server was declared without one).
    pub fn unconfined() -> Sandboxed {
        Sandboxed::default()
    }

    pub fn is_confined(&self) -> bool {
        self.profile.is_some()
    }

    /// What is not in force: facilities skipped under `best_effort` (`required`) and hardening
    /// this kernel lacks.
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The server's private temp dir (its TMPDIR), when its profile has one.
    pub fn temp_dir(&self) -> Option<&std::path::Path> {
        self.tmp.as_ref().map(|t| t.path())
    }

    /// Says which sandbox step failed when spawning the command failed.
    pub fn spawn_error(&self, e: &io::Error) -> String {
        let Some(fd) = &self.report else {
            return e.to_string();
        };
        let mut b = [0u8; 1];
        // SAFETY: dup of an fd we own; the File closes the duplicate.
        let dup = unsafe { libc::dup(fd.as_raw_fd()) };
        if dup < 0 {
            return e.to_string();
        }
        // SAFETY: dup is a fresh fd we own.
        let mut f = unsafe { std::fs::File::from_raw_fd(dup) };
        match f.read(&mut b) {
            Ok(1) => match Step::from_byte(b[0]) {
                Some(step) => format!("sandbox: {} failed in the child: {e}", step.describe()),
                None => e.to_string(),
            },
            _ => e.to_string(),
        }
    }

    /// Logs what is skipped (a warning for what `best_effort` skipped).
    pub fn log(&self, server: &str) {
        for s in &self.skipped {
            if s.required {
                tracing::warn!(server, facility = %s.facility, "sandbox started without {} (best_effort): {}", s.facility, s.effect);
            } else {
                tracing::info!(server, facility = %s.facility, "sandbox hardening not available: {}", s.effect);
            }
        }
    }

    /// A `system` audit event saying what is skipped; `None` when nothing is.
    pub fn audit_event(&self, server: &str, door: &str) -> Option<AuditEvent> {
        skipped_event(server, door, self.profile, &self.skipped)
    }
}

/// The `system` audit event for a sandbox started without some facilities.
pub fn skipped_event(server: &str, door: &str, profile: Option<Profile>, skipped: &[Skipped]) -> Option<AuditEvent> {
    if skipped.is_empty() {
        return None;
    }
    let required: Vec<&str> = skipped
        .iter()
        .filter(|s| s.required)
        .map(|s| s.facility.as_str())
        .collect();
    let mut e = AuditEvent::new(EventKind::System);
    e.server = Some(server.to_string());
    e.door = Some(door.to_string());
    e.reason = Some(if required.is_empty() {
        "sandbox started; hardening this kernel lacks is not in force".to_string()
    } else {
        format!("sandbox started without {} (best_effort)", required.join(", "))
    });
    e.detail = Some(serde_json::json!({
        "sandbox": {
            "profile": profile.map(Profile::as_str),
            "skipped": skipped,
        }
    }));
    Some(e)
}

/// Puts `cmd` in the sandbox `spec` declares (nothing when `None`). Call right before spawn and
/// keep the result while the child runs; on a spawn error, [`Sandboxed::spawn_error`] says which
/// sandbox step failed.
pub fn apply(cmd: &mut tokio::process::Command, spec: Option<&SandboxSpec>) -> Result<Sandboxed, SandboxError> {
    match spec {
        None => Ok(Sandboxed::unconfined()),
        Some(spec) => apply_std(cmd.as_std_mut(), spec),
    }
}

/// [`apply`] for a `std::process::Command`.
pub fn apply_std(cmd: &mut std::process::Command, spec: &SandboxSpec) -> Result<Sandboxed, SandboxError> {
    let kernel = facility::kernel();
    let launch = Launch::of(cmd);
    let want = plan::cgroup_want(spec);
    let (cgroups, state) = make_cgroups(want, kernel);
    let plan = plan::make(spec, &launch, kernel, &state)?;
    for dir in &plan.create {
        std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io {
            what: format!("creating {}", dir.display()),
            source,
        })?;
    }
    let tmp = if plan.private_tmp {
        sweep_temp_dirs();
        Some(
            tempfile::Builder::new()
                .prefix(&format!("{TMP_PREFIX}{}-", std::process::id()))
                .tempdir()
                .map_err(|source| SandboxError::Io {
                    what: "creating the private temp dir".into(),
                    source,
                })?,
        )
    } else {
        None
    };
    if let Some(r) = &plan.ruleset {
        tracing::debug!(
            program = %launch.program.to_string_lossy(),
            profile = %spec.profile(),
            read = ?r.read,
            write = ?r.write,
            "sandbox filesystem grants"
        );
    }
    let steps = child_steps(&plan, kernel, tmp.as_ref(), cgroups.as_ref())?;
    let (report_rx, report_tx) = pipe()?;
    let mut steps = steps;
    steps.report = Some(report_tx);
    if let Some(t) = &tmp {
        cmd.env("TMPDIR", t.path());
    }
    // SAFETY: ChildSteps::run only makes async-signal-safe system calls on data prepared here.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(cmd, move || steps.run());
    }
    Ok(Sandboxed {
        profile: Some(spec.profile()),
        skipped: plan.skipped,
        tmp,
        _cgroups: cgroups,
        report: Some(report_rx),
    })
}

/// What starting `cmd` in `spec` would skip, or why it would not start — without starting it
/// (for start-up checks, `steward scan` and `doctor`).
pub fn preflight(cmd: &std::process::Command, spec: &SandboxSpec) -> Result<Vec<Skipped>, SandboxError> {
    let kernel = facility::kernel();
    let want = plan::cgroup_want(spec);
    let state = if want.pids.is_none() && want.memory.is_none() {
        CgroupState::default()
    } else if kernel.forced_off.contains(&Facility::Cgroup) {
        CgroupState {
            problem: Some(kernel.why_missing(Facility::Cgroup)),
            ..CgroupState::default()
        }
    } else {
        match cgroup::probe(want) {
            Ok((pids, memory)) => CgroupState {
                pids,
                memory,
                problem: None,
            },
            Err(problem) => CgroupState {
                problem: Some(problem),
                ..CgroupState::default()
            },
        }
    };
    plan::make(spec, &Launch::of(cmd), kernel, &state).map(|p| p.skipped)
}

/// Every facility and whether this machine offers it (for `doctor`-style reports).
pub fn facilities() -> Vec<(Facility, bool, String)> {
    let k = facility::kernel();
    Facility::ALL
        .into_iter()
        .filter(|f| *f != Facility::Cgroup)
        .map(|f| {
            let has = k.has(f);
            let note = if has { String::new() } else { k.why_missing(f) };
            (f, has, note)
        })
        .collect()
}

fn make_cgroups(want: cgroup::Want, kernel: &facility::Kernel) -> (Option<cgroup::Cgroups>, CgroupState) {
    if want.pids.is_none() && want.memory.is_none() {
        return (None, CgroupState::default());
    }
    if kernel.forced_off.contains(&Facility::Cgroup) {
        let state = CgroupState {
            problem: Some(kernel.why_missing(Facility::Cgroup)),
            ..CgroupState::default()
        };
        return (None, state);
    }
    match cgroup::create(want) {
        Ok(c) => {
            let state = CgroupState {
                pids: c.pids,
                memory: c.memory,
                problem: None,
            };
            (Some(c), state)
        }
        Err(problem) => (
            None,
            CgroupState {
                problem: Some(problem),
                ..CgroupState::default()
            },
        ),
    }
}

fn child_steps(
    plan: &Plan,
    kernel: &facility::Kernel,
    tmp: Option<&tempfile::TempDir>,
    cgroups: Option<&cgroup::Cgroups>,
) -> Result<ChildSteps, SandboxError> {
    let mut steps = ChildSteps {
        rlimits: plan.rlimits.clone(),
        nproc: plan.nproc,
        ..ChildSteps::default()
    };
    if let Some(c) = cgroups {
        steps.cgroup_procs = c.procs_fds().map_err(|e| SandboxError::Io {
            what: "opening the sandbox cgroup".into(),
            source: io::Error::other(e),
        })?;
    }
    if let Some(with_userns) = plan.netns {
        steps.unshare = libc::CLONE_NEWNET | if with_userns { libc::CLONE_NEWUSER } else { 0 };
    } else if plan.userns_only {
        steps.unshare = libc::CLONE_NEWUSER;
    }
    if plan.uses_userns() {
        steps.id_maps = Some(IdMaps::current());
    }
    if plan.loopback {
        steps.loopback = Some(child::loopback_ifreq());
    }
    if plan.drop_caps {
        steps.drop_caps = Some(child::cap_last_cap());
    }
    if let Some(r) = &plan.ruleset {
        let mut r = r.clone();
        if let Some(t) = tmp {
            r.write.push(t.path().to_path_buf());
        }
        let handled = rules::handled_fs(kernel);
        let proc_access = if plan.proc_self {
            rules::read_access(handled).bits()
        } else {
            0
        };
        steps.landlock = Some((rules::build(&r, kernel)?, proc_access));
    }
    if let Some(families) = &plan.families {
        steps.seccomp = Some(seccomp::filter(families)?);
    }
    Ok(steps)
}

/// Private temp dirs are `steward-sandbox-<steward pid>-XXXXXX` in Steward's temp dir.
const TMP_PREFIX: &str = "steward-sandbox-";

/// Removes the private temp dirs of Steward processes that are gone (a gateway stopped by a
/// signal does not run destructors). Only directories of our own user are touched.
fn sweep_temp_dirs() {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(TMP_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        let Ok(meta) = e.path().symlink_metadata() else {
            continue;
        };
        if !meta.is_dir() || meta.uid() != uid {
            continue;
        }
        // SAFETY: signal 0 only checks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// A pipe, both ends O_CLOEXEC, the read end non-blocking: (read, write).
fn pipe() -> Result<(OwnedFd, OwnedFd), SandboxError> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(SandboxError::Io {
            what: "creating the report pipe".into(),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: pipe2 returned two fresh fds that we now own.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // The child's end blocks as usual (one byte never fills a pipe anyway).
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(w.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(w.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    Ok((r, w))
}
