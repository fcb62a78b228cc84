//! What each profile grants: what its runtime needs to start, and nothing else.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::paths::{self, Places};
use super::spec::Profile;

/// Read (and execute) everywhere: shared libraries and the files every C library and runtime
/// opens at start (name service, time zones, CA certificates). Missing ones are skipped. Not
/// `/etc/passwd` and `/etc/group`: servers find their home in HOME, and user lists are not theirs.
const SYSTEM_READ: &[&str] = &[
    "/lib",
    "/lib64",
    "/lib32",
    "/usr/lib",
    "/usr/lib64",
    "/usr/lib32",
    "/usr/share/zoneinfo",
    "/usr/share/ca-certificates",
    "/usr/local/share/ca-certificates",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/pki/tls",
    "/etc/pki/ca-trust",
    "/etc/crypto-policies",
    // Global kernel facts runtimes size themselves by (memory, CPUs); nothing per process.
    "/proc/meminfo",
    "/proc/cpuinfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/sys/vm/overcommit_memory",
    "/proc/sys/kernel/osrelease",
    "/sys/devices/system/cpu",
];

/// Device files every process may read and write.
const DEVICES: &[&str] = &["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"];

/// What a profile grants for one command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Grants {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    pub devices: Vec<PathBuf>,
    /// Read access to the server's own `/proc/self` (added in the child).
    pub proc_self: bool,
    /// A private, writable temp dir as TMPDIR.
    pub private_tmp: bool,
    /// Profile directories to create when missing (a cache the runtime would create itself).
    pub create: Vec<PathBuf>,
}

impl Grants {
    fn read(&mut self, p: impl Into<PathBuf>) {
        let p = p.into();
        if !self.read.contains(&p) {
            self.read.push(p);
        }
    }

    fn write(&mut self, p: PathBuf, create: bool) {
        if create {
            self.create.push(p.clone());
        }
        if !self.write.contains(&p) {
            self.write.push(p);
        }
    }

    /// A package cache the launcher writes and then runs programs from (npx, uvx).
    fn cache(&mut self, p: PathBuf) {
        self.write(p.clone(), true);
        self.read(p);
    }
}

/// The grants of `profile` for `program args` (the program as found on PATH, when it was).
pub(crate) fn grants(profile: Profile, program: Option<&Path>, args: &[OsString], places: &Places) -> Grants {
    let mut g = Grants {
        devices: DEVICES.iter().map(PathBuf::from).collect(),
        proc_self: true,
        private_tmp: profile != Profile::Minimal,
        ..Grants::default()
    };
    for p in SYSTEM_READ {
        g.read(*p);
    }
    let mut programs: Vec<PathBuf> = program.into_iter().map(Path::to_path_buf).collect();
    // `node` running npm's package runner is the npx profile: that is what npx needs to start.
    let launcher = program.and_then(|p| p.file_name()).and_then(|n| n.to_str());
    let profile = match (profile, launcher) {
        (Profile::Node, Some("npx" | "npm")) => Profile::Npx,
        (Profile::Python, Some("uvx" | "uv")) => Profile::Uvx,
        (p, _) => p,
    };
    match profile {
        Profile::Minimal => {}
        Profile::Node => node_script(&mut g, args, places),
        Profile::Python => {
            if let Some(script) = paths::script_arg(args, places)
                && let Some(dir) = script.parent()
            {
                g.read(dir);
            }
        }
        Profile::Npx => {
            // npx is a Node script; node and sh (npm exec runs bins through it) come with it.
            programs.extend(
                ["node", "sh"]
                    .iter()
                    .filter_map(|p| paths::find_program(p.as_ref(), places)),
            );
            if let Some(npm) = places.in_home(".npm") {
                g.cache(npm);
            }
            g.read(places.project.join("node_modules"));
        }
        Profile::Uvx => {
            // uv looks along PATH for an interpreter it accepts (a venv's is not): all of them.
            programs.extend(
                ["python3", "python"]
                    .iter()
                    .flat_map(|p| paths::find_all_programs(p, places)),
            );
            if let Some(cache) = places.in_home(".cache/uv") {
                g.cache(cache);
            }
            if let Some(data) = places.in_home(".local/share/uv") {
                g.cache(data);
            }
            if let Some(config) = places.in_home(".config/uv") {
                g.read(config);
            }
        }
    }
    for program in &programs {
        for file in paths::program_files(program, places) {
            match paths::prefix_of(&file, places) {
                Some(prefix) => g.read(prefix),
                None => g.read(file),
            }
        }
    }
    g
}

fn node_script(g: &mut Grants, args: &[OsString], places: &Places) {
    if let Some(script) = paths::script_arg(args, places) {
        for tree in paths::node_package_tree(&script, places) {
            g.read(tree);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_grant_their_runtime_and_nothing_of_home() {
        let home = tempfile::tempdir().unwrap();
        let project = tempfile::tempdir().unwrap();
        let script = project.path().join("node_modules/pkg/dist/index.js");
        std::fs::create_dir_all(script.parent().unwrap()).unwrap();
        std::fs::write(&script, "").unwrap();
        let places = Places {
            home: Some(home.path().to_path_buf()),
            project: project.path().to_path_buf(),
            path_env: None,
        };
        let node = paths::find_program("sh".as_ref(), &places);
        let g = grants(
            Profile::Node,
            node.as_deref(),
            &[script.clone().into_os_string()],
            &places,
        );
        assert!(g.read.contains(&project.path().join("node_modules")), "{:?}", g.read);
        assert!(g.private_tmp && g.proc_self);
        assert!(g.write.is_empty());
        assert!(
            !g.read.iter().chain(&g.write).any(|p| home.path().starts_with(p)),
            "nothing at or above HOME: {g:?}"
        );

        let g = grants(Profile::Npx, None, &[], &places);
        assert_eq!(g.write, [home.path().join(".npm")]);
        assert_eq!(g.create, [home.path().join(".npm")]);
        assert!(g.read.contains(&home.path().join(".npm")), "npx runs what it cached");

        let npx = project.path().join("bin/npx");
        std::fs::create_dir_all(npx.parent().unwrap()).unwrap();
        std::fs::write(&npx, "").unwrap();
        let g = grants(Profile::Node, Some(&npx), &[], &places);
        assert_eq!(
            g.write,
            [home.path().join(".npm")],
            "node running npx is the npx profile"
        );

        let g = grants(Profile::Minimal, None, &[], &places);
        assert!(!g.private_tmp && g.write.is_empty());
        assert!(g.read.contains(&PathBuf::from("/usr/lib")));
    }
}
