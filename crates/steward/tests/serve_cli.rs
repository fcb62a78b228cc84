//! `steward serve` on a busy port: it binds before it says anything, and says the OS error once.

use std::process::{Command, Stdio};

const STEWARD: &str = env!("CARGO_BIN_EXE_steward");

#[test]
fn a_busy_port_fails_before_the_banner_with_the_error_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(STEWARD)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("listening"),
        "the banner came before the bind: {stderr}"
    );
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("os error").count(),
        1,
        "the OS error is said once: {stderr}"
    );
    assert!(stderr.contains("--listen"), "it says the way out: {stderr}");
}
