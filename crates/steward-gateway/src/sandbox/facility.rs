//! The kernel facilities a sandbox is built from, what this kernel offers, and the
//! `STEWARD_SANDBOX_UNAVAILABLE` switch that pretends some are missing (tests, diagnostics).

use std::collections::BTreeSet;
use std::fmt;
use std::sync::OnceLock;

use serde::Serialize;

/// Read once: a comma-separated list of [`Facility`] names treated as missing.
pub const UNAVAILABLE_ENV: &str = "STEWARD_SANDBOX_UNAVAILABLE";

/// One kernel facility. The names (`as_str`) are the interface of `STEWARD_SANDBOX_UNAVAILABLE`,
/// error messages and audit rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Facility {
    /// Landlock filesystem rules (ABI 1, Linux 5.13).
    Landlock,
    /// Landlock `truncate` control (ABI 3, Linux 6.2).
    LandlockTruncate,
    /// Landlock TCP port rules (ABI 4, Linux 6.7).
    LandlockNet,
    /// Landlock control of device `ioctl`s (ABI 5, Linux 6.10).
    LandlockIoctl,
    /// Landlock scopes: signals and abstract Unix sockets stay inside (ABI 6, Linux 6.12).
    LandlockScope,
    /// Landlock control of `connect` to Unix socket files (ABI 9).
    LandlockUnix,
    /// Landlock UDP port rules (ABI 10).
    LandlockUdp,
    /// A network namespace of the server's own.
    Netns,
    /// A user namespace (what an unprivileged Steward needs for a network namespace).
    Userns,
    /// seccomp-bpf system call filters.
    Seccomp,
    /// A cgroup of the server's own (pids and memory controllers).
    Cgroup,
}

impl Facility {
    pub const ALL: [Facility; 11] = [
        Facility::Landlock,
        Facility::LandlockTruncate,
        Facility::LandlockNet,
        Facility::LandlockIoctl,
        Facility::LandlockScope,
        Facility::LandlockUnix,
        Facility::LandlockUdp,
        Facility::Netns,
        Facility::Userns,
        Facility::Seccomp,
        Facility::Cgroup,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Facility::Landlock => "landlock",
            Facility::LandlockTruncate => "landlock-truncate",
            Facility::LandlockNet => "landlock-net",
            Facility::LandlockIoctl => "landlock-ioctl",
            Facility::LandlockScope => "landlock-scope",
            Facility::LandlockUnix => "landlock-unix",
            Facility::LandlockUdp => "landlock-udp",
            Facility::Netns => "netns",
            Facility::Userns => "userns",
            Facility::Seccomp => "seccomp",
            Facility::Cgroup => "cgroup",
        }
    }

    /// The Landlock ABI that brought this facility (0 for the others).
    pub(crate) fn landlock_abi(self) -> i32 {
        match self {
            Facility::Landlock => 1,
            Facility::LandlockTruncate => 3,
            Facility::LandlockNet => 4,
            Facility::LandlockIoctl => 5,
            Facility::LandlockScope => 6,
            Facility::LandlockUnix => 9,
            Facility::LandlockUdp => 10,
            _ => 0,
        }
    }

    /// What the kernel needs for it, for error messages.
    pub fn requirement(self) -> &'static str {
        match self {
            Facility::Landlock => {
                "Landlock (Linux 5.13+, with `landlock` in the kernel's LSM list: CONFIG_LSM or the `lsm=` boot parameter)"
            }
            Facility::LandlockTruncate => "Landlock ABI 3 (Linux 6.2+)",
            Facility::LandlockNet => "Landlock ABI 4 network rules (Linux 6.7+)",
            Facility::LandlockIoctl => "Landlock ABI 5 (Linux 6.10+)",
            Facility::LandlockScope => "Landlock ABI 6 scopes (Linux 6.12+)",
            Facility::LandlockUnix => "Landlock ABI 9 (control of connect to Unix socket files)",
            Facility::LandlockUdp => "Landlock ABI 10 UDP rules",
            Facility::Netns => "network namespaces (CONFIG_NET_NS; root, or unprivileged user namespaces)",
            Facility::Userns => "unprivileged user namespaces (CONFIG_USER_NS, not disabled by sysctl or AppArmor)",
            Facility::Seccomp => "seccomp filters (CONFIG_SECCOMP_FILTER)",
            Facility::Cgroup => {
                "a writable cgroup with the pids (and memory) controller: cgroup v1 hierarchies writable by Steward, or a cgroup v2 subtree delegated to it"
            }
        }
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Facility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Facility::ALL
            .into_iter()
            .find(|f| f.as_str() == s.trim())
            .ok_or_else(|| format!("unknown sandbox facility '{s}'"))
    }
}

/// A part of the sandbox that is not in force, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub facility: Facility,
    /// What the server can do because of it.
    pub effect: String,
    /// Whether the sandbox needed it (skipped only because of `best_effort`) or it only hardens
    /// what other facilities already enforce.
    pub required: bool,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.facility, self.effect)
    }
}

/// What this kernel offers, probed once per process.
#[derive(Debug, Clone)]
pub(crate) struct Kernel {
    /// The Landlock ABI version (0: none).
    pub landlock_abi: i32,
    /// `unshare(CLONE_NEWNET)` works as we are (root).
    pub netns_direct: bool,
    /// `unshare(CLONE_NEWUSER | CLONE_NEWNET)` and writing our id maps work.
    pub userns: bool,
    pub seccomp: bool,
    /// Effective uid 0: rlimits on processes do not bind, capabilities must be dropped.
    pub root: bool,
    /// Forced off by [`UNAVAILABLE_ENV`].
    pub forced_off: BTreeSet<Facility>,
}

impl Kernel {
    /// Whether a facility can be used.
    pub fn has(&self, f: Facility) -> bool {
        if self.forced_off.contains(&f) {
            return false;
        }
        match f {
            Facility::Landlock => self.landlock_abi >= 1,
            Facility::Netns => self.netns_direct || self.has(Facility::Userns),
            Facility::Userns => self.userns,
            Facility::Seccomp => self.seccomp,
            // Known only when one is made; see cgroup.rs.
            Facility::Cgroup => true,
            landlock => self.has(Facility::Landlock) && self.landlock_abi >= landlock.landlock_abi(),
        }
    }

    /// A network namespace needs a user namespace too (we are not root).
    pub fn netns_needs_userns(&self) -> bool {
        !self.netns_direct || self.forced_off.contains(&Facility::Netns)
    }

    /// Why `f` is missing, for messages.
    pub fn why_missing(&self, f: Facility) -> String {
        if self.forced_off.contains(&f) || (f == Facility::Netns && self.forced_off.contains(&Facility::Userns)) {
            return format!("forced off by {UNAVAILABLE_ENV}");
        }
        if f.landlock_abi() > 1 && self.forced_off.contains(&Facility::Landlock) {
            return format!("Landlock forced off by {UNAVAILABLE_ENV}");
        }
        match f {
            f if f.landlock_abi() > 0 => {
                if self.landlock_abi == 0 {
                    format!("this kernel has no Landlock; needs {}", f.requirement())
                } else {
                    format!(
                        "this kernel has Landlock ABI {}; needs {}",
                        self.landlock_abi,
                        f.requirement()
                    )
                }
            }
            f => format!("not available here; needs {}", f.requirement()),
        }
    }
}

/// This kernel, probed on first use.
pub(crate) fn kernel() -> &'static Kernel {
    static KERNEL: OnceLock<Kernel> = OnceLock::new();
    KERNEL.get_or_init(probe)
}

/// The facilities [`UNAVAILABLE_ENV`] names (unknown names are reported once and ignored).
pub(crate) fn forced_off() -> BTreeSet<Facility> {
    let Some(value) = std::env::var_os(UNAVAILABLE_ENV) else {
        return BTreeSet::new();
    };
    let value = value.to_string_lossy();
    let mut out = BTreeSet::new();
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.parse::<Facility>() {
            Ok(f) => {
                out.insert(f);
            }
            Err(e) => tracing::warn!(
                "{UNAVAILABLE_ENV}: {e}; known: {}",
                Facility::ALL.map(Facility::as_str).join(", ")
            ),
        }
    }
    if !out.is_empty() {
        tracing::warn!(
            facilities = %out.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(","),
            "{UNAVAILABLE_ENV} is set: sandboxes treat these kernel facilities as missing (a test and diagnostic switch)"
        );
    }
    out
}

fn probe() -> Kernel {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    Kernel {
        landlock_abi: landlock_abi(),
        netns_direct: root && try_in_child(false),
        userns: try_in_child(true),
        seccomp: seccomp_filters(),
        root,
        forced_off: forced_off(),
    }
}

/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`: the documented way to
/// ask for the ABI version.
fn landlock_abi() -> i32 {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: with a NULL attribute and size 0 the kernel reads nothing from us.
    let v = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    i32::try_from(v).unwrap_or(0).max(0)
}

/// seccomp(2) filter mode exists when `prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, NULL)` fails
/// with EFAULT (the kernel tried to read the NULL program) rather than EINVAL.
fn seccomp_filters() -> bool {
    // SAFETY: a NULL program is never installed; the call only reports how it failed.
    let r = unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, 0usize, 0usize, 0usize) };
    r == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// Forks a child that tries `unshare` (with a user namespace and our id maps when `userns`) and
/// exits with the result. The child runs async-signal-safe system calls only.
fn try_in_child(userns: bool) -> bool {
    let maps = super::child::IdMaps::current();
    let flags = if userns {
        libc::CLONE_NEWUSER | libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWNET
    };
    // SAFETY: the child only calls unshare/open/write/close/_exit before exiting.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let mut ok = libc::unshare(flags) == 0;
            if ok && userns {
                ok = maps.write().is_ok();
            }
            libc::_exit(if ok { 0 } else { 1 });
        }
        if pid < 0 {
            return false;
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return false;
            }
        }
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Facility::ALL {
            assert_eq!(f.as_str().parse::<Facility>().unwrap(), f);
            assert_eq!(serde_json::to_value(f).unwrap(), serde_json::json!(f.as_str()));
        }
        assert!("apparmor".parse::<Facility>().is_err());
    }

    #[test]
    fn forced_off_facilities_are_missing_and_say_so() {
        let mut k = Kernel {
            landlock_abi: 7,
            netns_direct: true,
            userns: true,
            seccomp: true,
            root: true,
            forced_off: BTreeSet::new(),
        };
        assert!(k.has(Facility::Landlock) && k.has(Facility::LandlockScope) && !k.has(Facility::LandlockUnix));
        k.forced_off.insert(Facility::Landlock);
        assert!(!k.has(Facility::Landlock));
        assert!(!k.has(Facility::LandlockNet), "ABI features go with Landlock");
        assert!(k.why_missing(Facility::Landlock).contains(UNAVAILABLE_ENV));
        let k = Kernel {
            landlock_abi: 3,
            forced_off: BTreeSet::new(),
            ..k
        };
        assert!(!k.has(Facility::LandlockNet));
        assert!(
            k.why_missing(Facility::LandlockNet).contains("ABI 3"),
            "{}",
            k.why_missing(Facility::LandlockNet)
        );
    }

    #[test]
    fn this_kernel_is_probed() {
        let k = kernel();
        // Whatever the machine: the probe never panics, and ABI features imply Landlock.
        if k.landlock_abi == 0 {
            assert!(!k.has(Facility::LandlockNet));
        }
    }
}
