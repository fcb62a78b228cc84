//! `steward-bench`: the harness behind docs/performance.md. `steward-bench all` measures, in one
//! run on one machine, the stdio proxy, the HTTP gateway, the audit log and the gateway's memory,
//! prints a table and writes JSON. `steward-bench fixture` is the fast MCP server it measures
//! against. `bench/run.sh` builds everything in release mode and runs it all.

mod audit_bench;
mod criterion_import;
mod fixture;
mod http_bench;
mod loadgen;
mod procs;
mod report;
mod stats;
mod stdio_bench;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use report::{Machine, Report};

#[derive(Parser)]
#[command(
    name = "steward-bench",
    about = "Steward's benchmark harness (see docs/performance.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every measurement: stdio, HTTP, audit, memory (plus criterion results found on disk).
    All(RunArgs),
    /// stdio proxy round trips only.
    Stdio(RunArgs),
    /// HTTP gateway throughput and latency only.
    Http(RunArgs),
    /// Audit append and verify only.
    Audit(RunArgs),
    /// Gateway memory only.
    Memory(RunArgs),
    /// The fixture MCP server.
    Fixture(FixtureArgs),
    /// Load one MCP endpoint (for profiling a gateway you started yourself).
    Load(LoadArgs),
}

#[derive(Args)]
struct LoadArgs {
    /// The endpoint, e.g. http://127.0.0.1:8787/mcp/bench.
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long, default_value_t = 1_000_000)]
    requests: usize,
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// A plain route (POST, any 2xx) instead of MCP tools/call.
    #[arg(long)]
    plain: bool,
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// The steward binary to measure (default: `steward` beside this binary, i.e. target/release).
    #[arg(long, value_name = "PATH")]
    steward: Option<PathBuf>,
    /// The policy calls are decided against (default: bench/policy.yaml, built in).
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Where the JSON results go.
    #[arg(long, value_name = "PATH", default_value = "bench/results/latest.json")]
    out: PathBuf,
    /// stdio: timed round trips per path.
    #[arg(long, default_value_t = 5000)]
    calls: usize,
    /// stdio: untimed round trips first.
    #[arg(long, default_value_t = 500)]
    warmup: usize,
    /// HTTP: concurrencies to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// HTTP: most requests per case.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// HTTP: most seconds per case.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// HTTP: untimed calls per worker before each case.
    #[arg(long, default_value_t = 20)]
    http_warmup: usize,
    /// Audit: events appended in the sustained run.
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Audit: concurrent appending tasks.
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    /// Memory: open legacy sessions.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Load-generator threads (the harness's async runtime).
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Args)]
struct FixtureArgs {
    /// Serve newline-delimited JSON-RPC on stdin/stdout.
    #[arg(long, conflicts_with = "http")]
    stdio: bool,
    /// Serve streamable HTTP on this address (port 0 picks one; the address is printed).
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
}

/// Where things are for one run.
pub struct Env {
    pub bench_exe: PathBuf,
    pub steward: PathBuf,
    pub policy: PathBuf,
    /// Scratch space: audit databases, configs, logs. Removed at the end.
    pub dir: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Fixture(a) => fixture(a),
        Cmd::Load(a) => load(a),
        Cmd::All(a) => measure(a, Parts::ALL),
        Cmd::Stdio(a) => measure(
            a,
            Parts {
                stdio: true,
                ..Parts::NONE
            },
        ),
        Cmd::Http(a) => measure(
            a,
            Parts {
                http: true,
                ..Parts::NONE
            },
        ),
        Cmd::Audit(a) => measure(
            a,
            Parts {
                audit: true,
                ..Parts::NONE
            },
        ),
        Cmd::Memory(a) => measure(
            a,
            Parts {
                memory: true,
                ..Parts::NONE
            },
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("steward-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn fixture(a: FixtureArgs) -> anyhow::Result<()> {
    match (a.stdio, a.http) {
        (true, _) => fixture::serve_stdio(),
        (false, Some(addr)) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(fixture::serve_http(addr)),
        (false, None) => bail!("say --stdio or --http ADDR"),
    }
}

fn load(a: LoadArgs) -> anyhow::Result<()> {
    let case = loadgen::Case {
        label: a.url.clone(),
        url: a.url,
        mcp: !a.plain,
        concurrency: a.concurrency.max(1),
        max_requests: a.requests,
        max_duration: Duration::from_secs_f64(a.seconds),
        warmup_per_worker: 20,
        server_pids: Vec::new(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()?;
    let r = rt.block_on(loadgen::run(&case))?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}

#[derive(Clone, Copy)]
struct Parts {
    stdio: bool,
    http: bool,
    audit: bool,
    memory: bool,
}

impl Parts {
    const ALL: Parts = Parts {
        stdio: true,
        http: true,
        audit: true,
        memory: true,
    };
    const NONE: Parts = Parts {
        stdio: false,
        http: false,
        audit: false,
        memory: false,
    };
}

fn measure(a: RunArgs, parts: Parts) -> anyhow::Result<()> {
    let bench_exe = std::env::current_exe().context("cannot find this binary")?;
    let steward = match &a.steward {
        Some(p) => p.clone(),
        None => bench_exe.with_file_name("steward"),
    };
    if !steward.exists() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p steward` (bench/run.sh does), or pass --steward PATH",
            steward.display()
        );
    }
    let scratch = tempfile::Builder::new()
        .prefix("steward-bench-")
        .tempdir()
        .context("cannot create a scratch directory")?;
    let policy = match &a.policy {
        Some(p) => std::path::absolute(p).with_context(|| format!("policy {}", p.display()))?,
        None => {
            // A directory of its own: the proxy watches the policy's directory for edits, and the
            // audit databases' writes beside it would wake that watcher on every commit.
            let dir = scratch.path().join("policy");
            std::fs::create_dir_all(&dir)?;
            let p = dir.join("policy.yaml");
            std::fs::write(&p, include_str!("../policy.yaml"))?;
            p
        }
    };
    let env = Env {
        bench_exe: bench_exe.clone(),
        steward: steward.clone(),
        policy,
        dir: scratch.path().to_path_buf(),
    };

    let mut report = Report {
        machine: Machine::probe(&steward),
        ..Report::default()
    };
    report.commands.push(std::env::args().collect::<Vec<_>>().join(" "));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(a.threads.max(1))
        .enable_all()
        .build()?;

    if parts.stdio {
        eprintln!("stdio: {} round trips per path after {} warm-up ...", a.calls, a.warmup);
        report.stdio = Some(stdio_bench::run(&env, a.calls, a.warmup)?);
    }
    if parts.http {
        eprintln!(
            "http: concurrency {:?}, up to {} requests or {} s per case ...",
            a.concurrency, a.requests, a.seconds
        );
        let opts = http_bench::HttpOptions {
            concurrency: a.concurrency.clone(),
            max_requests: a.requests,
            max_duration: Duration::from_secs_f64(a.seconds),
            warmup_per_worker: a.http_warmup,
        };
        report.http = Some(rt.block_on(http_bench::run(&env, &opts))?);
    }
    if parts.audit {
        eprintln!("audit: {} events from {} tasks, then verify ...", a.events, a.tasks);
        report.audit = Some(rt.block_on(audit_bench::run(&env, a.events, a.tasks))?);
    }
    if parts.memory {
        eprintln!("memory: gateway idle, then {} sessions ...", a.sessions);
        report.memory = Some(rt.block_on(http_bench::memory(&env, a.sessions))?);
    }
    if let Some(target) = target_dir(&bench_exe) {
        report.criterion = criterion_import::load(
            &target.join("criterion"),
            &["decide/", "detectors/", "explain/", "audit/"],
        );
    }
    report.check_goals();

    let table = report.markdown();
    println!("{table}");
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&a.out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    eprintln!("results written to {}", a.out.display());
    Ok(())
}

/// `target/` from `target/release/steward-bench`.
fn target_dir(exe: &Path) -> Option<PathBuf> {
    exe.parent()?.parent().map(Path::to_path_buf)
}
