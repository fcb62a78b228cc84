//! Connection discipline of a real `steward serve`: slow headers are closed after
//! `limits.header_read_timeout`, unauthenticated bodies are refused before they are read,
//! authenticated slow bodies are closed after `limits.body_read_timeout`, idle keep-alive
//! connections after `limits.idle_timeout`, and none of it costs the gateway memory.

mod approvals_support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use approvals_support::{Env, Gateway, STEWARD, stderr};

const HEADER: Duration = Duration::from_secs(2);
const BODY: Duration = Duration::from_secs(3);
const IDLE: Duration = Duration::from_secs(4);
/// The whole attack ends within this, whatever happens.
const BOUND: Duration = Duration::from_secs(20);

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn start(env: &Env) -> (Gateway, std::path::PathBuf) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = env.dir.path().join("steward.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nstore: {{ sqlite: ./gw.db }}\nauth: {{ api_keys: true }}\n\
             limits: {{ header_read_timeout: {}s, body_read_timeout: {}s, idle_timeout: {}s }}\n",
            HEADER.as_secs(),
            BODY.as_secs(),
            IDLE.as_secs()
        ),
    )
    .unwrap();
    let child = Command::new(STEWARD)
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the gateway did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (Gateway { child, port }, config)
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Kind {
    SlowHeader,
    UnauthenticatedBody,
    AuthenticatedBody,
}

struct Conn {
    kind: Kind,
    stream: TcpStream,
    opened: Instant,
    /// What is still to be sent, a little at a time.
    pending: Vec<u8>,
    answer: Vec<u8>,
    closed: Option<Duration>,
}

impl Conn {
    fn open(port: u16, kind: Kind, head: String, body_len: usize) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_nonblocking(true).unwrap();
        let mut pending = head.into_bytes();
        pending.extend(std::iter::repeat_n(b'x', body_len));
        Conn {
            kind,
            stream,
            opened: Instant::now(),
            pending,
            answer: Vec::new(),
            closed: None,
        }
    }

    /// Sends the next `n` bytes and reads what came back; notes when the gateway closed.
    fn step(&mut self, n: usize) {
        if self.closed.is_some() {
            return;
        }
        let n = n.min(self.pending.len());
        if n > 0 {
            match self.stream.write(&self.pending[..n]) {
                Ok(sent) => {
                    self.pending.drain(..sent);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => self.closed = Some(self.opened.elapsed()),
            }
        }
        let mut buf = [0u8; 4096];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.closed.get_or_insert(self.opened.elapsed());
                    return;
                }
                Ok(k) => self.answer.extend_from_slice(&buf[..k]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.closed.get_or_insert(self.opened.elapsed());
                    return;
                }
            }
        }
    }

    fn status(&self) -> Option<u16> {
        let text = String::from_utf8_lossy(&self.answer);
        text.split_whitespace().nth(1).and_then(|s| s.parse().ok())
    }
}

fn key(env: &Env, config: &std::path::Path) -> String {
    let out = env.steward(&[
        "keys",
        "create",
        "--config",
        config.to_str().unwrap(),
        "--principal",
        "alice",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn slow_and_unauthenticated_connections_are_closed_in_time_without_memory() {
    let env = Env::new("version: 1\n");
    let (gw, config) = start(&env);
    let port = gw.port;
    let pid = gw.child.id();
    let alice = key(&env, &config);
    // Warm up: the first requests allocate what the gateway keeps (pools, caches).
    for _ in 0..5 {
        let mut c = Conn::open(
            port,
            Kind::AuthenticatedBody,
            "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".to_string(),
            0,
        );
        let until = Instant::now() + Duration::from_secs(5);
        while c.closed.is_none() && Instant::now() < until {
            c.step(1 << 16);
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(c.status(), Some(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    let before = rss_kib(pid);

    let body = 3_500_000;
    let mut conns = Vec::new();
    for _ in 0..100 {
        conns.push(Conn::open(
            port,
            Kind::SlowHeader,
            "POST /mcp/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Slow: ".to_string()
                + &"a".repeat(10_000),
            0,
        ));
    }
    for _ in 0..20 {
        conns.push(Conn::open(
            port,
            Kind::UnauthenticatedBody,
            format!("POST /mcp/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {body}\r\n\r\n"),
            body,
        ));
    }
    for _ in 0..5 {
        conns.push(Conn::open(
            port,
            Kind::AuthenticatedBody,
            format!(
                "POST /mcp/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {alice}\r\nContent-Type: application/json\r\nContent-Length: {body}\r\n\r\n"
            ),
            body,
        ));
    }
    let mut peak = before;
    let start = Instant::now();
    while conns.iter().any(|c| c.closed.is_none()) && start.elapsed() < BOUND {
        for c in conns.iter_mut() {
            // Headers trickle in a byte at a time; bodies at about 80 KB/s each.
            let n = match c.kind {
                Kind::SlowHeader => 1,
                _ => 8 * 1024,
            };
            c.step(n);
        }
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(100));
    }
    let slack = Duration::from_millis(1500);
    for c in &conns {
        let closed = c
            .closed
            .unwrap_or_else(|| panic!("{:?} connection still open after {BOUND:?}", c.kind));
        match c.kind {
            Kind::SlowHeader => assert!(
                closed >= HEADER - Duration::from_millis(200) && closed <= HEADER + slack,
                "slow header closed after {closed:?}"
            ),
            Kind::UnauthenticatedBody => {
                assert_eq!(c.status(), Some(401), "{}", String::from_utf8_lossy(&c.answer));
                assert!(closed <= slack, "unauthenticated body closed after {closed:?}");
            }
            Kind::AuthenticatedBody => {
                assert_eq!(c.status(), Some(408), "{}", String::from_utf8_lossy(&c.answer));
                assert!(
                    closed >= BODY - Duration::from_millis(200) && closed <= BODY + slack,
                    "slow body closed after {closed:?}"
                );
            }
        }
    }
    let grown = peak.saturating_sub(before);
    eprintln!("RSS before {before} KiB, peak {peak} KiB, grown {grown} KiB");
    assert!(grown < 8 * 1024, "the gateway grew by {grown} KiB under the attack");

    // An idle keep-alive connection lives past the header time-out and ends at the idle one.
    let mut idle = Conn::open(
        port,
        Kind::AuthenticatedBody,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".to_string(),
        0,
    );
    let until = Instant::now() + IDLE + Duration::from_secs(5);
    while idle.closed.is_none() && Instant::now() < until {
        idle.step(1 << 16);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(idle.status(), Some(200));
    let closed = idle.closed.expect("the idle connection was never closed");
    assert!(
        closed > HEADER + Duration::from_millis(500) && closed <= IDLE + slack,
        "idle connection closed after {closed:?}"
    );
    drop(gw);
}
