//! A throwaway PostgreSQL cluster for tests: `initdb` and `pg_ctl` in a temporary directory, on
//! a free loopback port, run as `nobody` when the tests run as root (initdb refuses root). The
//! binaries come from Debian's `postgresql` package (`/usr/lib/postgresql/*/bin`, or `PG_BIN`);
//! `scripts/test-all` installs it.
//!
//! One cluster per test binary ([`shared`]); each test takes a database of its own
//! ([`Cluster::database`]). A watchdog process stops the cluster and removes its directory when
//! the test binary exits, however it exits.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct Cluster {
    pub dir: PathBuf,
    pub port: u16,
    bin: PathBuf,
    /// `Some("nobody")` when commands must run as another user.
    user: Option<&'static str>,
}

static SHARED: OnceLock<Cluster> = OnceLock::new();
static NEXT_DB: AtomicU32 = AtomicU32::new(0);

/// The test binary's cluster, started on first use.
pub fn shared() -> &'static Cluster {
    SHARED.get_or_init(Cluster::start)
}

/// Whether PostgreSQL's binaries are installed. When they are not, says on stderr that `test`
/// is skipped (scripts/test-all installs them, so CI runs every such test).
pub fn installed(test: &str) -> bool {
    let found = find_bin_dir().is_some();
    if !found {
        eprintln!(
            "SKIPPED {test}: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb, no PG_BIN); \
             scripts/test-all installs Debian's postgresql package"
        );
    }
    found
}

fn find_bin_dir() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PG_BIN") {
        let bin = PathBuf::from(p);
        return bin.join("initdb").exists().then_some(bin);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

fn bin_dir() -> PathBuf {
    find_bin_dir().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): run scripts/test-all, \
             or `apt-get install postgresql`, or set PG_BIN"
        )
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("address")
        .port()
}

impl Cluster {
    /// A new cluster of its own (for tests that stop and start it).
    pub fn start() -> Cluster {
        let bin = bin_dir();
        let user = is_root().then_some("nobody");
        let dir = std::env::temp_dir().join(format!(
            "steward-pg-{}-{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        if let Some(u) = user {
            let ok = Command::new("chown")
                .arg(u)
                .arg(&dir)
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "cannot chown {} to {u}", dir.display());
        }
        let mut c = Cluster {
            dir,
            port: 0,
            bin,
            user,
        };
        let out = c
            .command("initdb")
            .args(["-A", "trust", "-U", "steward", "--no-sync", "-E", "UTF8", "-D"])
            .arg(c.data())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c.watchdog();
        // The free port can be taken between finding and binding it: try a few.
        for _ in 0..5 {
            c.port = free_port();
            if c.try_start() {
                c.command("createdb").args(c.conn_args()).arg("steward").status().ok();
                return c;
            }
        }
        panic!("the test PostgreSQL cluster did not start; see {}", c.log().display());
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    fn command(&self, program: &str) -> Command {
        let exe = self.bin.join(program);
        match self.user {
            Some(u) => {
                let mut c = Command::new("runuser");
                c.args(["-u", u, "--"]).arg(exe);
                c
            }
            None => Command::new(exe),
        }
    }

    fn conn_args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port.to_string(),
            "-U".into(),
            "steward".into(),
        ]
    }

    fn try_start(&self) -> bool {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off -c synchronous_commit=on -c max_connections=200",
            self.port,
            self.dir.display()
        );
        self.command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &options, "-l"])
            .arg(self.log())
            .args(["-w", "-t", "30", "start"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Stops the server (clients see their connections closed), `immediate`: as a crash.
    pub fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Starts it again on the same port.
    pub fn restart(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.try_start() {
            assert!(
                Instant::now() < deadline,
                "the test PostgreSQL cluster did not start again"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A fresh, empty database; its URL.
    pub fn database(&self) -> String {
        let name = format!("t{}_{}", std::process::id(), NEXT_DB.fetch_add(1, Ordering::Relaxed));
        let out = self
            .command("createdb")
            .args(self.conn_args())
            .arg(&name)
            .output()
            .expect("run createdb");
        assert!(
            out.status.success(),
            "createdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(&name)
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://steward@127.0.0.1:{}/{db}", self.port)
    }

    /// Runs SQL with psql against `url`'s database; its output.
    pub fn psql(&self, url: &str, sql: &str) -> String {
        let out = self
            .command("psql")
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stops the cluster and removes its directory once this process has gone.
    fn watchdog(&self) {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = match self.user {
            Some(u) => format!(
                "runuser -u {u} -- {} -D {} -m immediate stop",
                pg_ctl.display(),
                self.data().display()
            ),
            None => format!("{} -D {} -m immediate stop", pg_ctl.display(), self.data().display()),
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        let _ = Command::new("setsid")
            .args(["sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
