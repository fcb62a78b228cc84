//! `steward keys create|list|revoke`: API keys for the HTTP gateway, kept in the gateway's store.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use serde::Deserialize;
use steward_store::{ApiKey, AuditEvent, AuditLog, EventKind, KeyStore, NewKey, Revoked};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create an API key. The key is printed once, alone on stdout; only its hash is stored.
    Create(CreateArgs),
    /// List API keys: id, name, principal, roles, created, expires, revoked (never a secret).
    List {
        #[command(flatten)]
        config: ConfigArg,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API key by its id; the gateway refuses it from the next request on.
    Revoke {
        #[command(flatten)]
        config: ConfigArg,
        /// The key id (the 12 hex digits after `stw_`).
        id: String,
    },
}

#[derive(Args)]
pub struct ConfigArg {
    /// Gateway configuration (steward.yaml); its `store:` names the database. Without it, the
    /// embedded default of `steward serve`: ./steward-data/steward.db.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Who the key authenticates as (the policy's principal id).
    #[arg(long, value_name = "P")]
    pub principal: String,
    /// Roles the key carries, comma-separated (the policy may add more for the principal).
    #[arg(long, value_name = "R1,R2", value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Expiry: a duration (30d, 12h, 2w, 1y) or a date/time (2027-01-31, RFC 3339). Default: never.
    #[arg(long, value_name = "WHEN")]
    pub expires: Option<String>,
    /// A label to recognise the key by (e.g. the laptop or service using it).
    #[arg(long, value_name = "LABEL")]
    pub name: Option<String>,
}

pub fn run(cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        KeysCommand::Create(args) => create(args),
        KeysCommand::List { config, json } => list(&config, json),
        KeysCommand::Revoke { config, id } => revoke(&config, &id),
    }
}

fn create(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let expires = args.expires.as_deref().map(parse_expiry).transpose()?;
    let roles: Vec<String> = args
        .roles
        .iter()
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .collect();
    let (path, store) = open(&args.config)?;
    let created = store.create(&NewKey {
        principal: args.principal.clone(),
        roles,
        name: args.name.clone(),
        expires,
    })?;
    let record = &created.record;
    let audited = audit(
        &path,
        "create",
        record,
        format!("API key {} created for {}", record.id, record.principal),
    );
    if let Err(e) = audited {
        // A key nobody can account for must not exist.
        let _ = store.revoke(&record.id);
        return Err(e.context(format!(
            "could not record the new key in the audit log, so key {} was revoked again",
            record.id
        )));
    }
    println!("{}", created.key);
    eprintln!(
        "created API key {} for principal '{}' (roles: {}; expires: {}) in {}",
        record.id,
        record.principal,
        if record.roles.is_empty() {
            "none".to_string()
        } else {
            record.roles.join(", ")
        },
        record.expires.as_deref().unwrap_or("never"),
        path.display()
    );
    eprintln!("this is the only time the key is shown; clients send it as `Authorization: Bearer <key>`");
    Ok(ExitCode::SUCCESS)
}

fn list(config: &ConfigArg, json: bool) -> anyhow::Result<ExitCode> {
    let (_, store) = open(config)?;
    let keys = store.list()?;
    if json {
        for k in &keys {
            let mut v = serde_json::to_value(k)?;
            v["status"] = status(k).into();
            crate::output::json_line(&v)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = crate::output::table(["ID", "NAME", "PRINCIPAL", "ROLES", "CREATED", "EXPIRES", "STATUS"]);
    for k in &keys {
        t.add_row([
            k.id.clone(),
            k.name.clone().unwrap_or_else(|| "-".into()),
            k.principal.clone(),
            if k.roles.is_empty() {
                "-".to_string()
            } else {
                k.roles.join(",")
            },
            k.created.clone(),
            k.expires.clone().unwrap_or_else(|| "never".into()),
            match &k.revoked {
                Some(at) => format!("revoked {at}"),
                None => status(k).to_string(),
            },
        ]);
    }
    crate::output::print_table(&t);
    Ok(ExitCode::SUCCESS)
}

fn revoke(config: &ConfigArg, id: &str) -> anyhow::Result<ExitCode> {
    let (path, store) = open(config)?;
    let id = steward_store::split_key(id).map(|(id, _)| id).unwrap_or(id);
    match store.revoke(id)? {
        Revoked::Now => {
            let record = store.list()?.into_iter().find(|k| k.id == id);
            if let Some(record) = record {
                audit(
                    &path,
                    "revoke",
                    &record,
                    format!("API key {} of {} revoked", record.id, record.principal),
                )?;
            }
            println!("revoked API key {id}");
        }
        Revoked::Already => println!("API key {id} was already revoked"),
    }
    Ok(ExitCode::SUCCESS)
}

fn status(k: &ApiKey) -> &'static str {
    if k.revoked.is_some() {
        return "revoked";
    }
    let expired = k
        .expires
        .as_deref()
        .is_some_and(|e| DateTime::parse_from_rfc3339(e).map(|t| t <= Utc::now()).unwrap_or(true));
    if expired { "expired" } else { "active" }
}

fn open(config: &ConfigArg) -> anyhow::Result<(PathBuf, KeyStore)> {
    let path = store_path(config.config.as_deref())?;
    let store = KeyStore::open_sqlite(&path)?;
    Ok((path, store))
}

/// Key management is recorded in the same hash-chained audit log the gateway writes.
fn audit(path: &Path, action: &str, key: &ApiKey, reason: String) -> anyhow::Result<()> {
    let log = AuditLog::open_sqlite(path)?;
    let mut event = AuditEvent::new(EventKind::System);
    event.principal = Some(steward_gateway::identity::os_user());
    event.door = Some("cli".into());
    event.method = Some(format!("keys/{action}"));
    event.reason = Some(reason);
    event.detail = Some(serde_json::json!({
        "action": format!("api_key.{action}"),
        "key_id": key.id,
        "name": key.name,
        "principal": key.principal,
        "roles": key.roles,
        "expires": key.expires,
    }));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build()?;
    let result = runtime.block_on(log.append(event));
    log.close();
    result.map(|_| ()).context("audit log")
}

/// The subset of steward.yaml this command reads; every other key is ignored, so key management
/// works without the upstreams' secrets in the environment.
#[derive(Deserialize)]
struct ConfigDoc {
    #[serde(default)]
    store: Option<StoreDoc>,
}

#[derive(Deserialize)]
struct StoreDoc {
    #[serde(default)]
    sqlite: Option<PathBuf>,
    #[serde(default)]
    postgres: Option<String>,
}

const DEFAULT_DB: &str = "steward-data/steward.db";

/// Where `steward serve --config FILE` keeps its state: `store.sqlite` relative to the config
/// file's directory, else `steward-data/steward.db` beside the config (or in the current
/// directory without a config).
fn store_path(config: Option<&Path>) -> anyhow::Result<PathBuf> {
    let Some(file) = config else {
        return Ok(PathBuf::from(DEFAULT_DB));
    };
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    if text.len() > 4 * 1024 * 1024 {
        bail!("{} is larger than 4 MiB", file.display());
    }
    let doc: ConfigDoc =
        serde_saphyr::from_str(&text).with_context(|| format!("{} is not a valid steward.yaml", file.display()))?;
    let base = file.parent().unwrap_or(Path::new(""));
    let sqlite = match doc.store {
        Some(StoreDoc { sqlite: Some(p), .. }) => p,
        Some(StoreDoc {
            sqlite: None,
            postgres: Some(_),
        }) => {
            bail!(
                "{}: API keys are kept in SQLite; add `store: {{ sqlite: PATH }}`",
                file.display()
            )
        }
        _ => PathBuf::from(DEFAULT_DB),
    };
    Ok(if sqlite.is_absolute() {
        sqlite
    } else {
        base.join(sqlite)
    })
}

/// `90d`, `12h`, `2w`, `1y`, `30m`, `2027-01-31` (midnight UTC) or an RFC 3339 time.
fn parse_expiry(s: &str) -> anyhow::Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).unwrap_or_default());
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok().filter(|n| *n > 0).with_context(|| {
        format!("--expires: cannot read '{s}'; use e.g. 90d, 12h, 2w, 1y, 2027-01-31 or an RFC 3339 time")
    })?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "y" => 31_536_000,
        other => bail!("--expires: unknown unit '{other}' in '{s}'; use s, m, h, d, w or y"),
    };
    let secs = n
        .checked_mul(unit_secs)
        .filter(|s| *s <= 100 * 31_536_000)
        .context("--expires: at most 100 years")?;
    Ok(Utc::now() + chrono::Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_forms() {
        let now = Utc::now();
        let d = parse_expiry("90d").unwrap() - now;
        assert!((d.num_seconds() - 90 * 86_400).abs() < 60);
        assert!(parse_expiry("2w").unwrap() > now);
        assert_eq!(
            parse_expiry("2031-01-31").unwrap().to_rfc3339(),
            "2031-01-31T00:00:00+00:00"
        );
        assert_eq!(
            parse_expiry("2031-01-31T12:00:00+01:00").unwrap().to_rfc3339(),
            "2031-01-31T11:00:00+00:00"
        );
        for bad in ["", "0d", "-1d", "5x", "d", "1000y", "tomorrow"] {
            assert!(parse_expiry(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn store_path_follows_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("steward.yaml");
        std::fs::write(&cfg, "listen: 0.0.0.0:8787\nstore: { sqlite: ./data/s.db }\nservers:\n  gh: { command: x, env: { T: \"${UNSET_SURELY}\" } }\n").unwrap();
        assert_eq!(store_path(Some(&cfg)).unwrap(), dir.path().join("./data/s.db"));
        std::fs::write(&cfg, "auth: { api_keys: true }\n").unwrap();
        assert_eq!(store_path(Some(&cfg)).unwrap(), dir.path().join(DEFAULT_DB));
        std::fs::write(&cfg, "store: { sqlite: /var/lib/steward/s.db }\n").unwrap();
        assert_eq!(store_path(Some(&cfg)).unwrap(), PathBuf::from("/var/lib/steward/s.db"));
        std::fs::write(&cfg, "store: { postgres: \"postgres://x\" }\n").unwrap();
        assert!(store_path(Some(&cfg)).is_err());
        assert_eq!(store_path(None).unwrap(), PathBuf::from(DEFAULT_DB));
        assert!(store_path(Some(&dir.path().join("missing.yaml"))).is_err());
    }
}
