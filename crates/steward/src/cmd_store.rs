//! `steward store migrate --from sqlite:PATH --to postgres:URL`: moves a gateway's state from
//! its SQLite file to a PostgreSQL database that several gateways share (docs/scale-out.md).

use std::process::ExitCode;

use anyhow::bail;
use clap::Subcommand;
use steward_store::StoreLocation;

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Copy a SQLite store (audit log, approvals, pins, keys, evidence tables) into an empty
    /// PostgreSQL database, then verify the chain there. A non-empty target is refused.
    Migrate {
        /// The SQLite store: sqlite:PATH.
        #[arg(long, value_name = "sqlite:PATH")]
        from: String,
        /// The PostgreSQL store: postgres:URL (postgres://user:password@host:port/db).
        #[arg(long, value_name = "postgres:URL")]
        to: String,
        /// The report as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: StoreCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StoreCommand::Migrate { from, to, json } => migrate(&from, &to, json),
    }
}

fn migrate(from: &str, to: &str, json: bool) -> anyhow::Result<ExitCode> {
    let from = StoreLocation::parse(from);
    let to = StoreLocation::parse(to);
    if !matches!(from, StoreLocation::Sqlite(_)) {
        bail!("--from must be a SQLite store: sqlite:PATH");
    }
    if !to.is_postgres() {
        bail!("--to must be a PostgreSQL store: postgres:URL");
    }
    // The URL's password is never printed: describe() leaves it out.
    eprintln!("steward: migrating {} to {}", from.describe(), to.describe());
    let report = steward_store::migrate::migrate(&from, &to, |step| eprintln!("steward: {step}"))?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        for (table, rows) in &report.copied {
            println!("{table}: {rows} rows copied");
        }
        println!(
            "chain on the target: {} rows verified, seq {}..{}, {}",
            report.verify.rows,
            report.verify.first_seq,
            report.verify.last_seq,
            if report.verify.ok() { "OK" } else { "BROKEN" }
        );
    }
    Ok(if report.verify.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
