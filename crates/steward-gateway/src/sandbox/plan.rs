//! From a declared sandbox and what the kernel offers to what will be enforced: which paths,
//! which facilities, what is skipped, or why the server must not start.

use std::ffi::OsString;
use std::path::PathBuf;

use super::SandboxError;
use super::cgroup::Want;
use super::child::Rlimit;
use super::error::{Missing, Unavailable};
use super::facility::{Facility, Kernel, Skipped};
use super::paths::{self, Places};
use super::profile;
use super::rules::RulesetPlan;
use super::spec::{Network, SandboxSpec};

/// The command being sandboxed.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub places: Places,
}

impl Launch {
    /// Reads a command's program, arguments, working directory, HOME and PATH.
    pub fn of(cmd: &std::process::Command) -> Launch {
        let env = |name: &str| -> Option<OsString> {
            match cmd.get_envs().find(|(k, _)| *k == name) {
                Some((_, v)) => v.map(OsString::from),
                None => std::env::var_os(name),
            }
        };
        let project = cmd
            .get_current_dir()
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        let project = if project.is_absolute() {
            project
        } else {
            std::env::current_dir().unwrap_or_default().join(project)
        };
        Launch {
            program: cmd.get_program().to_os_string(),
            args: cmd.get_args().map(OsString::from).collect(),
            places: Places {
                home: env("HOME").filter(|h| !h.is_empty()).map(PathBuf::from),
                project: paths::normalize(&project),
                path_env: env("PATH"),
            },
        }
    }
}

/// Whether a cgroup could be made, and with which limits.
#[derive(Debug, Clone, Default)]
pub(crate) struct CgroupState {
    pub pids: bool,
    pub memory: bool,
    pub problem: Option<String>,
}

/// What will be enforced.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// `None`: no Landlock (skipped under best effort).
    pub ruleset: Option<RulesetPlan>,
    pub proc_self: bool,
    pub private_tmp: bool,
    /// Directories a profile creates when missing (npm's cache).
    pub create: Vec<PathBuf>,
    /// Socket families `socket(2)` may create; `None`: no seccomp filter.
    pub families: Option<Vec<libc::c_int>>,
    /// A network namespace (`Some(true)`: inside a new user namespace).
    pub netns: Option<bool>,
    pub loopback: bool,
    /// A user namespace without a network namespace (for per-sandbox process accounting).
    pub userns_only: bool,
    pub rlimits: Vec<Rlimit>,
    pub nproc: Option<u64>,
    pub drop_caps: bool,
    pub skipped: Vec<Skipped>,
}

impl Plan {
    pub fn uses_userns(&self) -> bool {
        self.netns == Some(true) || self.userns_only
    }
}

/// What the cgroup would limit for `spec`.
pub(crate) fn cgroup_want(spec: &SandboxSpec) -> Want {
    Want {
        pids: spec.limits.processes,
        memory: spec.limits.memory.map(|m| m.0),
    }
}

struct Needs<'a> {
    kernel: &'a Kernel,
    missing: Vec<Missing>,
    skipped: Vec<Skipped>,
}

impl Needs<'_> {
    /// A facility the sandbox cannot do without.
    fn require(&mut self, f: Facility, needed_for: &'static str, effect: &str, relax: Option<&'static str>) -> bool {
        if self.kernel.has(f) {
            return true;
        }
        self.missing.push(Missing {
            facility: f,
            needed_for,
            why: self.kernel.why_missing(f),
            relax,
        });
        self.skipped.push(Skipped {
            facility: f,
            effect: effect.to_string(),
            required: true,
        });
        false
    }

    /// A facility that hardens what others already enforce.
    fn harden(&mut self, f: Facility, effect: &str) -> bool {
        if self.kernel.has(f) {
            return true;
        }
        self.skipped.push(Skipped {
            facility: f,
            effect: effect.to_string(),
            required: false,
        });
        false
    }
}

pub(crate) fn make(
    spec: &SandboxSpec,
    launch: &Launch,
    kernel: &Kernel,
    cgroup: &CgroupState,
) -> Result<Plan, SandboxError> {
    let places = &launch.places;
    let program = paths::find_program(&launch.program, places);
    let grants = profile::grants(spec.profile(), program.as_deref(), &launch.args, places);
    let mut read = grants.read.clone();
    let mut write = grants.write.clone();
    for (declared, into) in [(&spec.read, &mut read), (&spec.write, &mut write)] {
        for raw in declared.iter() {
            let p = paths::expand(raw, places)?;
            if !p.exists() {
                return Err(SandboxError::Path {
                    path: raw.clone(),
                    message: format!(
                        "{} does not exist; create it or leave it out of the sandbox",
                        p.display()
                    ),
                });
            }
            if !into.contains(&p) {
                into.push(p);
            }
        }
    }
    // Profile paths this machine lacks are simply not granted (the ones a profile creates are
    // made before the ruleset is built).
    read.retain(|p| p.exists() || grants.create.contains(p));
    write.retain(|p| p.exists() || grants.create.contains(p));
    let mut needs = Needs {
        kernel,
        missing: Vec::new(),
        skipped: Vec::new(),
    };
    let mut plan = Plan {
        proc_self: grants.proc_self,
        private_tmp: grants.private_tmp,
        create: grants.create.clone(),
        ..Plan::default()
    };

    // Filesystem.
    let landlock = needs.require(
        Facility::Landlock,
        "the filesystem rules",
        "the server can read and write every file its user can",
        None,
    );
    let mut ruleset = RulesetPlan {
        read,
        write,
        devices: grants.devices.clone(),
        ..RulesetPlan::default()
    };
    if landlock {
        needs.harden(
            Facility::LandlockTruncate,
            "truncate(2) on a path is not restricted by the sandbox",
        );
        needs.harden(
            Facility::LandlockIoctl,
            "ioctl(2) on device files the server opens is not restricted",
        );
        ruleset.scope = needs.harden(
            Facility::LandlockScope,
            "the server can signal, and reach abstract Unix sockets of, processes of its user outside the sandbox",
        );
    }
    // Unix socket files: Landlock governs connect() from ABI 9; before that no AF_UNIX socket.
    let unix: &[libc::c_int] = if landlock && kernel.has(Facility::LandlockUnix) {
        &[libc::AF_UNIX]
    } else {
        &[]
    };

    // Network.
    let seccomp = needs.require(
        Facility::Seccomp,
        "the network rules (socket families)",
        "the server can create any socket its user can (Unix socket files, vsock, and IP unless in a network namespace)",
        None,
    );
    let ip: [libc::c_int; 2] = [libc::AF_INET, libc::AF_INET6];
    let families: Vec<libc::c_int> = match &spec.network {
        Network::None => {
            if kernel.has(Facility::Netns) {
                plan.netns = Some(kernel.netns_needs_userns());
            }
            unix.to_vec()
        }
        Network::Loopback => {
            if needs.harden(
                Facility::Netns,
                "no network namespace: loopback traffic is refused too (the server has no network at all)",
            ) {
                plan.netns = Some(kernel.netns_needs_userns());
                plan.loopback = true;
                ip.iter().chain(unix).copied().collect()
            } else {
                unix.to_vec()
            }
        }
        Network::Allow(rules) => {
            let ports: Vec<u16> = {
                let mut p: Vec<u16> = rules.iter().map(|r| r.port).collect();
                p.sort_unstable();
                p.dedup();
                p
            };
            if needs.require(
                Facility::LandlockNet,
                "`network: [host:port]` (TCP port rules)",
                "TCP connections can go to any address and port",
                Some("`network: none` or `network: loopback` need no Landlock network rules"),
            ) {
                ruleset.tcp_connect = Some(ports.clone());
                if needs.harden(Facility::LandlockUdp, "UDP datagrams can go to any address and port") {
                    ruleset.udp_send = Some(ports);
                }
            }
            ip.iter().chain(unix).copied().collect()
        }
    };
    if seccomp {
        plan.families = Some(families);
    } else if plan.netns.is_none() {
        // Neither a filter nor a namespace: nothing stands between the server and the network.
        needs.harden(Facility::Netns, "no network namespace either: the network is open");
    }

    // Limits.
    let want = cgroup_want(spec);
    if let Some(n) = want.pids {
        if cgroup.pids {
            // In force through the cgroup.
        } else if !kernel.root && kernel.has(Facility::Userns) {
            // RLIMIT_NPROC counts per user namespace: in a fresh one, only the sandbox's tasks.
            plan.nproc = Some(n);
            if plan.netns.is_none() {
                plan.userns_only = true;
            } else {
                plan.netns = Some(true);
            }
        } else {
            let why = if kernel.root {
                "root is not bound by RLIMIT_NPROC"
            } else {
                "without a user namespace RLIMIT_NPROC would count every process of the user"
            };
            needs.missing.push(Missing {
                facility: Facility::Cgroup,
                needed_for: "`limits.processes`",
                why: format!(
                    "{}; {why}",
                    cgroup
                        .problem
                        .clone()
                        .unwrap_or_else(|| kernel.why_missing(Facility::Cgroup))
                ),
                relax: Some("leave out `limits.processes`"),
            });
            needs.skipped.push(Skipped {
                facility: Facility::Cgroup,
                effect: "the number of processes is not limited".into(),
                required: true,
            });
        }
    }
    if let Some(bytes) = want.memory {
        plan.rlimits.push(Rlimit::Data(bytes));
        if !cgroup.memory {
            needs.skipped.push(Skipped {
                facility: Facility::Cgroup,
                effect: "memory is limited per process (RLIMIT_DATA), not for the server as a whole".into(),
                required: false,
            });
        }
    }
    if let Some(s) = spec.limits.cpu_seconds {
        plan.rlimits.push(Rlimit::Cpu(s));
    }
    if let Some(n) = spec.limits.open_files {
        plan.rlimits.push(Rlimit::Files(n));
    }
    plan.drop_caps = kernel.root || plan.uses_userns();
    if landlock {
        plan.ruleset = Some(ruleset);
    }

    if !needs.missing.is_empty() && !spec.best_effort {
        return Err(SandboxError::Unavailable(Unavailable { missing: needs.missing }));
    }
    plan.skipped = needs.skipped;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::sandbox::spec::{Limits, NetRule, Profile};

    fn kernel(abi: i32, off: &[Facility]) -> Kernel {
        Kernel {
            landlock_abi: abi,
            netns_direct: true,
            userns: true,
            seccomp: true,
            root: true,
            forced_off: off.iter().copied().collect::<BTreeSet<_>>(),
        }
    }

    fn launch() -> Launch {
        Launch {
            program: "sh".into(),
            args: vec![],
            places: Places {
                home: Some(PathBuf::from("/nonexistent-home")),
                project: PathBuf::from("/"),
                path_env: None,
            },
        }
    }

    fn spec(network: Network) -> SandboxSpec {
        SandboxSpec {
            profile: Some(Profile::Minimal),
            network,
            ..SandboxSpec::default()
        }
    }

    #[test]
    fn a_full_kernel_enforces_everything() {
        let p = make(
            &spec(Network::None),
            &launch(),
            &kernel(7, &[]),
            &CgroupState::default(),
        )
        .unwrap();
        assert!(p.ruleset.as_ref().is_some_and(|r| r.scope));
        assert_eq!(p.families, Some(vec![]), "none: no socket family at all");
        assert_eq!(p.netns, Some(false));
        assert!(p.drop_caps);
        assert!(p.skipped.iter().all(|s| !s.required), "{:?}", p.skipped);
    }

    #[test]
    fn missing_landlock_refuses_unless_best_effort() {
        let k = kernel(7, &[Facility::Landlock]);
        let e = make(&spec(Network::None), &launch(), &k, &CgroupState::default()).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("landlock is missing"), "{text}");
        assert!(text.contains("STEWARD_SANDBOX_UNAVAILABLE"), "{text}");
        assert!(text.contains("best_effort: true"), "{text}");
        let mut s = spec(Network::None);
        s.best_effort = true;
        let p = make(&s, &launch(), &k, &CgroupState::default()).unwrap();
        assert!(p.ruleset.is_none());
        assert!(p.skipped.iter().any(|s| s.facility == Facility::Landlock && s.required));
        assert!(p.families.is_some(), "the network is still closed");
    }

    #[test]
    fn port_lists_need_landlock_net() {
        let net = Network::Allow(vec![NetRule {
            host: "api.example".into(),
            port: 443,
        }]);
        let e = make(&spec(net.clone()), &launch(), &kernel(3, &[]), &CgroupState::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("landlock-net is missing") && e.contains("network: none"),
            "{e}"
        );
        let p = make(&spec(net), &launch(), &kernel(7, &[]), &CgroupState::default()).unwrap();
        let r = p.ruleset.unwrap();
        assert_eq!(r.tcp_connect, Some(vec![443]));
        assert_eq!(r.udp_send, None);
        assert!(
            p.skipped
                .iter()
                .any(|s| s.facility == Facility::LandlockUdp && !s.required)
        );
        assert_eq!(p.netns, None, "a port list uses the host's network");
        assert_eq!(p.families, Some(vec![libc::AF_INET, libc::AF_INET6]));
    }

    #[test]
    fn loopback_without_netns_is_stricter_not_open() {
        let p = make(
            &spec(Network::Loopback),
            &launch(),
            &kernel(7, &[Facility::Netns]),
            &CgroupState::default(),
        )
        .unwrap();
        assert_eq!(p.families, Some(vec![]));
        assert!(!p.loopback);
        let p = make(
            &spec(Network::Loopback),
            &launch(),
            &kernel(7, &[]),
            &CgroupState::default(),
        )
        .unwrap();
        assert!(p.loopback && p.netns.is_some());
    }

    #[test]
    fn process_limits_need_a_cgroup_as_root() {
        let mut s = spec(Network::None);
        s.limits = Limits {
            processes: Some(16),
            ..Limits::default()
        };
        let no_cgroup = CgroupState {
            problem: Some("no writable pids hierarchy".into()),
            ..CgroupState::default()
        };
        let e = make(&s, &launch(), &kernel(7, &[]), &no_cgroup)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cgroup is missing") && e.contains("RLIMIT_NPROC"), "{e}");
        let with = CgroupState {
            pids: true,
            ..CgroupState::default()
        };
        let p = make(&s, &launch(), &kernel(7, &[]), &with).unwrap();
        assert_eq!(p.nproc, None);
        // Unprivileged: a user namespace of its own makes RLIMIT_NPROC count only the sandbox.
        let mut user = kernel(7, &[]);
        user.root = false;
        user.netns_direct = false;
        let p = make(&s, &launch(), &user, &no_cgroup).unwrap();
        assert_eq!(p.nproc, Some(16));
        assert_eq!(p.netns, Some(true));
        assert!(p.drop_caps);
    }

    #[test]
    fn declared_paths_must_exist_and_expand() {
        let mut s = spec(Network::None);
        s.read = vec!["/surely/not/here".into()];
        let e = make(&s, &launch(), &kernel(7, &[]), &CgroupState::default()).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        s.read = vec!["${NOPE}/x".into()];
        assert!(make(&s, &launch(), &kernel(7, &[]), &CgroupState::default()).is_err());
    }
}
