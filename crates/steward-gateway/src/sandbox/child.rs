//! What runs in the forked child between `fork` and `exec` (`Command::pre_exec`).
//!
//! The parent is multi-threaded, so the child may only make async-signal-safe calls: every
//! buffer, path, ruleset and filter is prepared before the fork, and [`ChildSteps::run`] only
//! issues system calls on them. No allocation, no locks, no formatting happens here.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use seccompiler::BpfProgram;

/// The steps, in the order they run. The number of a failed step is written to the report pipe
/// so that the parent can say which one failed (exec only returns an errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Step {
    Cgroup = 1,
    Rlimits,
    Unshare,
    IdMaps,
    Loopback,
    ProcessLimit,
    Capabilities,
    NoNewPrivs,
    Landlock,
    Seccomp,
}

impl Step {
    const ALL: [Step; 10] = [
        Step::Cgroup,
        Step::Rlimits,
        Step::Unshare,
        Step::IdMaps,
        Step::Loopback,
        Step::ProcessLimit,
        Step::Capabilities,
        Step::NoNewPrivs,
        Step::Landlock,
        Step::Seccomp,
    ];

    pub fn from_byte(b: u8) -> Option<Step> {
        Step::ALL.into_iter().find(|s| *s as u8 == b)
    }

    pub fn describe(self) -> &'static str {
        match self {
            Step::Cgroup => "joining the sandbox cgroup",
            Step::Rlimits => "setting resource limits",
            Step::Unshare => "creating the network namespace",
            Step::IdMaps => "writing the user namespace id maps",
            Step::Loopback => "bringing up the loopback interface",
            Step::ProcessLimit => "setting the process limit",
            Step::Capabilities => "dropping capabilities",
            Step::NoNewPrivs => "setting no_new_privs",
            Step::Landlock => "enforcing the Landlock ruleset",
            Step::Seccomp => "installing the seccomp filter",
        }
    }
}

/// A resource limit, applied with setrlimit (kept as our own enum: the type of the resource
/// argument differs between C libraries).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Rlimit {
    Data(u64),
    Cpu(u64),
    Files(u64),
}

/// The user namespace id maps: our own uid and gid, mapped to themselves.
#[derive(Debug, Clone)]
pub(crate) struct IdMaps {
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
}

impl IdMaps {
    pub fn current() -> IdMaps {
        // SAFETY: getuid/getgid have no preconditions.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        IdMaps {
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
        }
    }

    /// Writes `/proc/self/{setgroups,uid_map,gid_map}`. Async-signal-safe.
    pub fn write(&self) -> Result<(), i32> {
        write_file(c"/proc/self/setgroups", b"deny")?;
        write_file(c"/proc/self/uid_map", &self.uid_map)?;
        write_file(c"/proc/self/gid_map", &self.gid_map)
    }
}

/// `struct landlock_path_beneath_attr` (packed, as in linux/landlock.h).
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// `struct __user_cap_header_struct` and `struct __user_cap_data_struct` (linux/capability.h).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const LANDLOCK_RULE_PATH_BENEATH: libc::c_int = 1;

/// Everything the child does, prepared by the parent.
#[derive(Debug, Default)]
pub(crate) struct ChildSteps {
    /// `cgroup.procs` of the sandbox's cgroups, opened O_WRONLY|O_CLOEXEC.
    pub cgroup_procs: Vec<OwnedFd>,
    pub rlimits: Vec<Rlimit>,
    /// `CLONE_NEWNET`, with `CLONE_NEWUSER` when not root; 0 for none.
    pub unshare: libc::c_int,
    pub id_maps: Option<IdMaps>,
    /// `ifreq` for `SIOCSIFFLAGS` on `lo`, when the server gets a loopback of its own.
    pub loopback: Option<Box<libc::ifreq>>,
    /// `RLIMIT_NPROC`, set after the user namespace exists (so that it counts only the sandbox).
    pub nproc: Option<u64>,
    /// Highest capability number to drop from the bounding set, when capabilities are dropped.
    pub drop_caps: Option<u32>,
    /// The Landlock ruleset (O_CLOEXEC) and the access granted on the child's own `/proc/self`.
    pub landlock: Option<(OwnedFd, u64)>,
    pub seccomp: Option<BpfProgram>,
    /// Write end of the report pipe (O_CLOEXEC): gets the number of a failed step.
    pub report: Option<OwnedFd>,
}

// SAFETY: `ifreq` holds plain data (a name and a union of integers); nothing in it points anywhere.
unsafe impl Send for ChildSteps {}
// SAFETY: as above; the child only reads these fields.
unsafe impl Sync for ChildSteps {}

impl ChildSteps {
    /// Runs in the child after fork. Async-signal-safe: system calls on prepared data only.
    pub fn run(&self) -> io::Result<()> {
        self.step(Step::Cgroup, || {
            for fd in &self.cgroup_procs {
                // "0" moves the writing process (cgroup v1 and v2 alike).
                // SAFETY: fd is open; the buffer is one valid byte.
                if unsafe { libc::write(fd.as_raw_fd(), b"0".as_ptr().cast(), 1) } != 1 {
                    return Err(errno());
                }
            }
            Ok(())
        })?;
        self.step(Step::Rlimits, || {
            for r in &self.rlimits {
                match *r {
                    Rlimit::Data(v) => set_rlimit(libc::RLIMIT_DATA, v, v)?,
                    // SIGXCPU at the soft limit, SIGKILL a second later for one that ignores it.
                    Rlimit::Cpu(v) => set_rlimit(libc::RLIMIT_CPU, v, v.saturating_add(1))?,
                    Rlimit::Files(v) => set_rlimit(libc::RLIMIT_NOFILE, v, v)?,
                }
            }
            Ok(())
        })?;
        if self.unshare != 0 {
            // SAFETY: unshare has no memory arguments.
            self.step(Step::Unshare, || check(unsafe { libc::unshare(self.unshare) }))?;
        }
        if let Some(maps) = &self.id_maps {
            self.step(Step::IdMaps, || maps.write())?;
        }
        if let Some(ifr) = &self.loopback {
            self.step(Step::Loopback, || loopback_up(ifr))?;
        }
        if let Some(n) = self.nproc {
            self.step(Step::ProcessLimit, || set_rlimit(libc::RLIMIT_NPROC, n, n))?;
        }
        if let Some(last) = self.drop_caps {
            self.step(Step::Capabilities, || drop_capabilities(last))?;
        }
        // SAFETY: prctl with integer arguments.
        self.step(Step::NoNewPrivs, || {
            check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1usize, 0usize, 0usize, 0usize) })
        })?;
        if let Some((ruleset, proc_access)) = &self.landlock {
            self.step(Step::Landlock, || landlock(ruleset, *proc_access))?;
        }
        if let Some(filter) = &self.seccomp {
            // seccompiler::apply_filter is prctl(PR_SET_NO_NEW_PRIVS) + seccomp(2) on the
            // prepared program: no allocation on any path.
            self.step(Step::Seccomp, || {
                seccompiler::apply_filter(filter).map_err(|_| errno_or(libc::EINVAL))
            })?;
        }
        Ok(())
    }

    fn step(&self, step: Step, f: impl FnOnce() -> Result<(), i32>) -> io::Result<()> {
        match f() {
            Ok(()) => Ok(()),
            Err(code) => {
                if let Some(fd) = &self.report {
                    let b = [step as u8];
                    // SAFETY: fd is the open write end of our pipe; one byte from a live buffer.
                    unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), 1) };
                }
                Err(io::Error::from_raw_os_error(code))
            }
        }
    }
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(libc::EINVAL)
}

fn errno_or(default: i32) -> i32 {
    match io::Error::last_os_error().raw_os_error() {
        Some(0) | None => default,
        Some(e) => e,
    }
}

fn check(r: libc::c_int) -> Result<(), i32> {
    if r == 0 { Ok(()) } else { Err(errno()) }
}

fn set_rlimit(resource: impl Into<RlimitResource>, soft: u64, hard: u64) -> Result<(), i32> {
    let rl = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: rl is a valid rlimit.
    check(unsafe { libc::setrlimit(resource.into().0, &rl) })
}

/// The resource argument of setrlimit, whatever its C type on this target.
struct RlimitResource(RlimitType);
#[cfg(all(target_os = "linux", target_env = "gnu"))]
type RlimitType = libc::__rlimit_resource_t;
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
type RlimitType = libc::c_int;
impl From<RlimitType> for RlimitResource {
    fn from(v: RlimitType) -> Self {
        RlimitResource(v)
    }
}

fn write_file(path: &CStr, data: &[u8]) -> Result<(), i32> {
    // SAFETY: path is NUL-terminated; data is a live buffer of data.len() bytes.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(errno());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        let e = errno();
        libc::close(fd);
        if n != data.len() as isize {
            return Err(e);
        }
    }
    Ok(())
}

fn loopback_up(ifr: &libc::ifreq) -> Result<(), i32> {
    // SAFETY: socket/ioctl/close on a fresh fd with a prepared ifreq.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(errno());
        }
        let r = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, ifr as *const libc::ifreq);
        let e = errno();
        libc::close(fd);
        if r != 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// Empties the bounding set (so that exec cannot give capabilities back, not even to root), the
/// ambient set, and the effective, permitted and inheritable sets.
fn drop_capabilities(last: u32) -> Result<(), i32> {
    // SAFETY: prctl/capset with integer arguments and live, correctly laid out structs.
    unsafe {
        for cap in 0..=last {
            if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0usize, 0usize, 0usize) != 0 {
                let e = errno();
                if e != libc::EINVAL {
                    return Err(e);
                }
            }
        }
        check(libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0usize,
            0usize,
            0usize,
        ))?;
        let header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) != 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// Adds the child's own `/proc/self` (a directory only the child can name) and enforces the ruleset.
fn landlock(ruleset: &OwnedFd, proc_access: u64) -> Result<(), i32> {
    // SAFETY: open/syscall/close on live, NUL-terminated and correctly laid out data.
    unsafe {
        if proc_access != 0 {
            let fd = libc::open(c"/proc/self".as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(errno());
            }
            let attr = PathBeneathAttr {
                allowed_access: proc_access,
                parent_fd: fd,
            };
            let r = libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset.as_raw_fd(),
                LANDLOCK_RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0u32,
            );
            let e = errno();
            libc::close(fd);
            if r != 0 {
                return Err(e);
            }
        }
        if libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0u32) != 0 {
            return Err(errno());
        }
    }
    Ok(())
}

/// An `ifreq` that sets `lo` up.
pub(crate) fn loopback_ifreq() -> Box<libc::ifreq> {
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut ifr: Box<libc::ifreq> = Box::new(unsafe { std::mem::zeroed() });
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_LOOPBACK | libc::IFF_RUNNING) as libc::c_short;
    ifr
}

/// The highest capability number this kernel knows.
pub(crate) fn cap_last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(63)
}
