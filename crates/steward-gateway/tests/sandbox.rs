//! The sandbox on this kernel, with real processes: what a sandboxed child can and cannot do.
//! Each case states what the kernel must offer and fails (never skips) on a kernel that lacks it:
//! CI runs on the same kind of machine as development.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use steward_gateway::sandbox::{self, Limits, Network, Profile, SandboxSpec};

const BASH: &str = "/usr/bin/bash";
const PYTHON: &str = "/usr/bin/python3";

fn spec() -> SandboxSpec {
    SandboxSpec::with_profile(Profile::Minimal)
}

/// Runs `bash -c script` in the sandbox, bounded in time.
fn run(spec: &SandboxSpec, script: &str, cwd: &Path) -> Output {
    run_argv(spec, &[BASH, "-c", script], cwd)
}

fn run_argv(spec: &SandboxSpec, argv: &[&str], cwd: &Path) -> Output {
    let mut cmd = Command::new(argv[0]);
    cmd.args(&argv[1..])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let sandboxed = sandbox::apply_std(&mut cmd, spec).expect("sandbox applies on this kernel");
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{}", sandboxed.spawn_error(&e)));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sandboxed {argv:?} did not finish within 30s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    drop(sandboxed);
    out
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn files_outside_the_grants_are_refused_by_the_kernel() {
    let root = tempfile::tempdir().unwrap();
    let allowed = root.path().join("allowed");
    let secret = root.path().join("secret");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(allowed.join("ok.txt"), "inside").unwrap();
    std::fs::write(secret.join("id_rsa"), "PRIVATE").unwrap();
    std::os::unix::fs::symlink(secret.join("id_rsa"), allowed.join("link")).unwrap();
    let mut s = spec();
    s.read = vec![allowed.display().to_string()];
    s.write = vec![];
    let script = format!(
        "cat {a}/ok.txt; echo; cat {s}/id_rsa; echo rc=$?; cat {a}/link; echo rc=$?; cat {a}/../secret/id_rsa; echo rc=$?; echo x > {a}/new; echo rc=$?",
        a = allowed.display(),
        s = secret.display()
    );
    let out = run(&s, &script, root.path());
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert!(stdout.starts_with("inside"), "{stdout}\n{stderr}");
    assert!(!stdout.contains("PRIVATE"), "{stdout}");
    assert_eq!(stdout.matches("rc=1").count(), 4, "{stdout}\n{stderr}");
    assert_eq!(stderr.matches("Permission denied").count(), 4, "{stderr}");
}

#[test]
fn write_grants_allow_writing_but_not_executing() {
    let root = tempfile::tempdir().unwrap();
    let scratch = root.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let mut s = spec();
    s.write = vec!["./scratch".into()];
    let script = "printf '#!/usr/bin/bash\\necho ran\\n' > scratch/x.sh && chmod +x scratch/x.sh && echo wrote; ./scratch/x.sh; echo rc=$?";
    let out = run(&s, script, root.path());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("wrote"), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("ran"), "written files do not execute: {stdout}");
    assert!(stdout.contains("rc=126"), "{stdout}");
}

#[test]
fn network_none_cannot_reach_a_local_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
    let root = tempfile::tempdir().unwrap();
    // Control: the same command outside the sandbox connects.
    let control = Command::new(BASH).arg("-c").arg(&script).output().unwrap();
    assert!(text(&control.stdout).contains("connected"), "{}", text(&control.stderr));
    let out = run(&spec(), &script, root.path());
    assert!(!text(&out.stdout).contains("connected"), "{}", text(&out.stdout));
    assert!(!out.status.success());
}

#[test]
fn loopback_is_the_servers_own() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut s = spec();
    s.network = Network::Loopback;
    // The host's listener is out of reach, and lo is up (a refused connection, not unreachable).
    let script = format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected");
    let root = tempfile::tempdir().unwrap();
    let out = run(&s, &script, root.path());
    assert!(!text(&out.stdout).contains("connected"));
    assert!(
        text(&out.stderr).contains("Connection refused"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_port_list_allows_only_its_ports() {
    let open = TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let (p_open, p_closed) = (open.local_addr().unwrap().port(), closed.local_addr().unwrap().port());
    let mut s = spec();
    s.network = Network::Allow(vec![format!("127.0.0.1:{p_open}").parse().unwrap()]);
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{p_open} && echo open-ok; exec 4<>/dev/tcp/127.0.0.1/{p_closed} && echo closed-ok"
    );
    let root = tempfile::tempdir().unwrap();
    let out = run(&s, &script, root.path());
    let stdout = text(&out.stdout);
    assert!(stdout.contains("open-ok"), "{stdout}{}", text(&out.stderr));
    assert!(!stdout.contains("closed-ok"), "{stdout}");
}

#[test]
fn a_fork_bomb_stops_at_the_process_limit() {
    let mut s = spec();
    s.limits = Limits {
        processes: Some(8),
        ..Limits::default()
    };
    // Bounded: 40 forks at most, each child sleeps 3 s; the limit refuses most of them.
    let bomb = r#"
import os, time
pids, refused = [], 0
for _ in range(40):
    try:
        pid = os.fork()
    except OSError:
        refused += 1
        continue
    if pid == 0:
        time.sleep(3)
        os._exit(0)
    pids.append(pid)
print(len(pids), refused)
for p in pids:
    os.kill(p, 9)
"#;
    let root = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = run_argv(&s, &[PYTHON, "-c", bomb], root.path());
    let stdout = text(&out.stdout);
    let counts: Vec<usize> = stdout.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(counts.len(), 2, "{stdout}{}", text(&out.stderr));
    assert!(counts[0] < 8, "at most 8 tasks, python included: {stdout}");
    assert_eq!(counts[0] + counts[1], 40);
    assert!(started.elapsed() < Duration::from_secs(30));
    // Control: unsandboxed, the same 40 forks all succeed.
    let control = Command::new(PYTHON).args(["-c", bomb]).output().unwrap();
    assert_eq!(text(&control.stdout).trim(), "40 0", "{}", text(&control.stderr));
}

#[test]
fn capabilities_are_dropped_and_no_new_privs_is_set() {
    let root = tempfile::tempdir().unwrap();
    let out = run(
        &spec(),
        "grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status",
        root.path(),
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("CapEff:\t0000000000000000"),
        "{stdout}{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("CapBnd:\t0000000000000000"), "{stdout}");
    assert!(stdout.contains("NoNewPrivs:\t1"), "{stdout}");
}

#[test]
fn limits_reach_the_child() {
    let mut s = spec();
    s.limits = Limits {
        open_files: Some(64),
        cpu_seconds: Some(30),
        memory: Some("256MiB".parse().unwrap()),
        ..Limits::default()
    };
    let root = tempfile::tempdir().unwrap();
    let out = run(&s, "ulimit -n; ulimit -t; ulimit -d", root.path());
    assert_eq!(text(&out.stdout), "64\n30\n262144\n", "{}", text(&out.stderr));
}

#[test]
fn profiles_give_a_private_temp_dir() {
    let root = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BASH);
    cmd.arg("-c")
        .arg("echo hi > $TMPDIR/f && cat $TMPDIR/f && ls /tmp; echo rc=$?")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .current_dir(root.path());
    let mut s = SandboxSpec::with_profile(Profile::Node);
    s.network = Network::None;
    let sandboxed = sandbox::apply_std(&mut cmd, &s).unwrap();
    let tmp = sandboxed.temp_dir().unwrap().to_path_buf();
    let out = cmd.output().unwrap();
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("hi\n"), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("rc=2"), "the shared /tmp stays closed: {stdout}");
    assert!(tmp.exists());
    drop(sandboxed);
    assert!(!tmp.exists(), "the private temp dir goes with the sandbox");
}

#[test]
fn preflight_reports_without_starting() {
    let cmd = Command::new(BASH);
    let skipped = sandbox::preflight(&cmd, &spec()).expect("this kernel enforces a minimal sandbox");
    assert!(skipped.iter().all(|s| !s.required), "{skipped:?}");
    let facilities = sandbox::facilities();
    assert!(
        facilities
            .iter()
            .any(|(f, has, _)| *f == sandbox::Facility::Landlock && *has),
        "{facilities:?}"
    );
}
