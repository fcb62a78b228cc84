//! Where the durable state lives: a SQLite file (one gateway, the default) or a PostgreSQL
//! database (several gateways sharing one truth).

use std::fmt;
use std::path::{Path, PathBuf};

/// The pool size when `store.postgres.pool` is not given.
pub const DEFAULT_POOL: usize = 16;

/// A store's location.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    Sqlite(PathBuf),
    Postgres(PostgresConfig),
}

/// How to reach a PostgreSQL store. The URL may hold a password: it is never printed, logged or
/// put in an error ([`PostgresConfig::display`] leaves it out).
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/db?sslmode=require`, in libpq's URL or key=value form.
    pub url: String,
    /// Connections kept open by each process.
    pub pool: usize,
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            pool: DEFAULT_POOL,
        }
    }

    /// `postgres://user@host:port/db`: the URL without its password or options, for messages.
    pub fn display(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.display())
            .field("pool", &self.pool)
            .finish()
    }
}

impl fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

impl StoreLocation {
    /// `sqlite:PATH`, `postgres:URL`, or a bare `postgres://…` / `postgresql://…` URL; anything
    /// else is a SQLite path.
    pub fn parse(s: &str) -> StoreLocation {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return StoreLocation::Postgres(PostgresConfig::new(s));
        }
        if let Some(url) = s.strip_prefix("postgres:").or_else(|| s.strip_prefix("postgresql:")) {
            return StoreLocation::Postgres(PostgresConfig::new(url));
        }
        StoreLocation::Sqlite(PathBuf::from(s.strip_prefix("sqlite:").unwrap_or(s)))
    }

    /// For messages: the SQLite path, or the PostgreSQL URL without its password.
    pub fn describe(&self) -> String {
        match self {
            StoreLocation::Sqlite(p) => format!("{} (SQLite)", p.display()),
            StoreLocation::Postgres(pg) => format!("{} (PostgreSQL)", pg.display()),
        }
    }

    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            StoreLocation::Sqlite(p) => Some(p),
            StoreLocation::Postgres(_) => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, StoreLocation::Postgres(_))
    }
}

/// A libpq URL or key=value string without the password, query options or other parameters.
fn redact_url(url: &str) -> String {
    let url = url.trim();
    let Some((scheme, rest)) = url.split_once("://") else {
        // key=value form: keep host, port, dbname, user.
        let kept: Vec<&str> = url
            .split_whitespace()
            .filter(|kv| {
                let k = kv.split('=').next().unwrap_or("");
                matches!(k, "host" | "hostaddr" | "port" | "dbname" | "user")
            })
            .collect();
        return if kept.is_empty() {
            "postgres (connection string)".into()
        } else {
            kept.join(" ")
        };
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{user}@{host}")
        }
        None => authority.to_string(),
    };
    format!("{scheme}://{authority}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        let pg = PostgresConfig::new("postgres://steward:s3cr3t@db.example:5433/steward?sslmode=require&password=x");
        assert_eq!(pg.display(), "postgres://steward@db.example:5433/steward");
        assert!(!format!("{pg:?}").contains("s3cr3t"));
        assert_eq!(
            PostgresConfig::new("host=db port=5432 password=s3cr3t dbname=st").display(),
            "host=db port=5432 dbname=st"
        );
        assert_eq!(redact_url("postgresql://db/x"), "postgresql://db/x");
    }

    #[test]
    fn locations_parse() {
        assert_eq!(
            StoreLocation::parse("sqlite:./a.db"),
            StoreLocation::Sqlite(PathBuf::from("./a.db"))
        );
        assert_eq!(
            StoreLocation::parse("/var/lib/s.db"),
            StoreLocation::Sqlite(PathBuf::from("/var/lib/s.db"))
        );
        assert_eq!(
            StoreLocation::parse("postgres:postgres://u@h/d"),
            StoreLocation::Postgres(PostgresConfig::new("postgres://u@h/d"))
        );
        assert!(StoreLocation::parse("postgresql://u@h/d").is_postgres());
    }
}
