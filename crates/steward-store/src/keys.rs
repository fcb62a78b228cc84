//! API keys for the HTTP gateway, in the `api_keys` table of the gateway's store (its SQLite
//! file, or the PostgreSQL database every gateway shares: a key revoked on one is refused by
//! all on their next request, because every request reads the table).
//!
//! A key reads `stw_<id>_<secret>`: `id` is 12 hex digits (the primary key, so verifying is one
//! indexed lookup), `secret` is 64 hex digits from 32 bytes of OS randomness. Only the SHA-256 of
//! the secret is stored: the secret is uniformly random and 256 bits long, so a slow password
//! hash would add latency to every request and no protection.

use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};
use rand::TryRngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::backend::Conn;
use crate::db::{DbError, Row, vals};

/// Every key starts with this, so scanners (and people) can tell a Steward key from a JWT.
pub const KEY_PREFIX: &str = "stw_";
const ID_BYTES: usize = 6;
const SECRET_BYTES: usize = 32;
/// The exact length of a well-formed key: `stw_` + 12 + `_` + 64.
pub const KEY_LEN: usize = KEY_PREFIX.len() + ID_BYTES * 2 + 1 + SECRET_BYTES * 2;

const MAX_PRINCIPAL_LEN: usize = 256;
const MAX_ROLE_LEN: usize = 128;
const MAX_ROLES: usize = 64;
const MAX_NAME_LEN: usize = 200;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    secret_sha256 BLOB NOT NULL,
    principal     TEXT NOT NULL,
    roles         TEXT NOT NULL,
    name          TEXT,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    revoked_at    TEXT
);
";

/// Why a key operation failed, or why a presented key was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create directory {path} for the key database: {source}")]
    CreateDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("key database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("key store: {0}")]
    Store(#[from] crate::StoreError),
    #[error("the operating system's random number generator failed: {0}")]
    Random(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("no API key with id {0}")]
    NotFound(String),
    /// The presented string is not shaped like a Steward key.
    #[error("malformed API key")]
    Malformed,
    /// No key has this id, or the secret does not match: deliberately one answer for both.
    #[error("unknown API key")]
    Unknown,
    #[error("API key {0} has been revoked")]
    Revoked(String),
    #[error("API key {0} has expired")]
    Expired(String),
}

impl KeyError {
    /// True when the presented key was refused (as opposed to the store failing).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            KeyError::Malformed | KeyError::Unknown | KeyError::Revoked(_) | KeyError::Expired(_)
        )
    }
}

/// A stored key as `list` shows it: never the secret, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: Option<String>,
    pub principal: String,
    pub roles: Vec<String>,
    /// RFC 3339 UTC.
    pub created: String,
    pub expires: Option<String>,
    pub revoked: Option<String>,
}

/// What `create` needs.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    pub principal: String,
    pub roles: Vec<String>,
    pub name: Option<String>,
    pub expires: Option<DateTime<Utc>>,
}

/// A freshly created key. `key` is the only copy of the secret there will ever be.
pub struct CreatedKey {
    pub key: String,
    pub record: ApiKey,
}

impl std::fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedKey")
            .field("key", &"[redacted]")
            .field("record", &self.record)
            .finish()
    }
}

/// What `revoke` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    Now,
    Already,
}

impl From<DbError> for KeyError {
    fn from(e: DbError) -> KeyError {
        match e {
            DbError::Sqlite(e) => KeyError::Sqlite(e),
            other => KeyError::Store(other.into()),
        }
    }
}

/// The API key table. Cheap to clone; clones share one connection (SQLite) or the pool.
#[derive(Clone)]
pub struct KeyStore {
    conn: Conn,
}

impl KeyStore {
    /// Opens (creating if needed) the SQLite file at `path` and its `api_keys` table.
    pub fn open_sqlite(path: &Path) -> Result<KeyStore, KeyError> {
        let conn = crate::schema::open_with_schema(path, SCHEMA).map_err(|f| match f {
            crate::schema::OpenFailure::CreateDir(path, source) => KeyError::CreateDir { path, source },
            crate::schema::OpenFailure::Open(path, source) => KeyError::Open { path, source },
        })?;
        Ok(KeyStore {
            conn: Conn::sqlite(conn, path),
        })
    }

    pub(crate) fn on(conn: Conn) -> KeyStore {
        KeyStore { conn }
    }

    /// Creates the SQLite key table on a connection (for `store migrate`'s source).
    pub(crate) fn sqlite_schema(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
        conn.execute_batch(SCHEMA)
    }

    /// The SQLite file (`None` on PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        self.conn.sqlite_path()
    }

    /// Whether the keys live on PostgreSQL (every check is then a network round trip).
    pub fn is_postgres(&self) -> bool {
        self.conn.pg().is_some()
    }

    /// Creates a key for `new.principal` and returns it; only its hash is stored.
    pub fn create(&self, new: &NewKey) -> Result<CreatedKey, KeyError> {
        validate_new(new)?;
        let created = now();
        let expires = new.expires.map(rfc3339);
        let roles_json = serde_json::to_string(&new.roles).map_err(|e| KeyError::InvalidInput(e.to_string()))?;
        // A 48-bit id can collide; the primary key catches it and we draw again.
        for _ in 0..8 {
            let id = hex::encode(random_bytes::<ID_BYTES>()?);
            let secret = hex::encode(random_bytes::<SECRET_BYTES>()?);
            let digest = Sha256::digest(secret.as_bytes());
            let inserted = self.conn.read(|db| {
                db.execute(
                    "INSERT INTO api_keys (id, secret_sha256, principal, roles, name, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
                    &vals![
                        id.as_str(),
                        digest.as_slice(),
                        new.principal.as_str(),
                        roles_json.as_str(),
                        &new.name,
                        created.as_str(),
                        &expires
                    ],
                )
            })?;
            if inserted == 1 {
                let record = ApiKey {
                    id: id.clone(),
                    name: new.name.clone(),
                    principal: new.principal.clone(),
                    roles: new.roles.clone(),
                    created,
                    expires,
                    revoked: None,
                };
                return Ok(CreatedKey {
                    key: format!("{KEY_PREFIX}{id}_{secret}"),
                    record,
                });
            }
        }
        Err(KeyError::Random("could not draw an unused key id".into()))
    }

    /// Every key, oldest first.
    pub fn list(&self) -> Result<Vec<ApiKey>, KeyError> {
        self.conn.read(|db| {
            let rows = db.query(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"),
                &[],
            )?;
            Ok(rows.into_iter().map(key_from_row).collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Revokes key `id` (a full key is accepted too, and only its id is used).
    pub fn revoke(&self, id: &str) -> Result<Revoked, KeyError> {
        let id = split_key(id).map(|(id, _)| id).unwrap_or(id);
        self.conn.write(|db| {
            let lock = db.dialect().for_update();
            let revoked = match db.query_opt(
                &format!("SELECT revoked_at FROM api_keys WHERE id = $1{lock}"),
                &vals![id],
            )? {
                None => return Err(KeyError::NotFound(id.to_string())),
                Some(mut r) => r.opt_text(0)?,
            };
            if revoked.is_some() {
                return Ok(Revoked::Already);
            }
            db.execute(
                "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                &vals![now(), id],
            )?;
            Ok(Revoked::Now)
        })
    }

    /// Checks a presented key: one lookup by id, a constant-time comparison of the secret's
    /// hash, then revocation and expiry. Revoked and expired are only reported to a caller who
    /// holds the right secret.
    pub fn verify(&self, presented: &str) -> Result<ApiKey, KeyError> {
        let (id, secret) = split_key(presented).ok_or(KeyError::Malformed)?;
        let presented_digest = Sha256::digest(secret.as_bytes());
        let row = self.conn.read(|db| -> Result<Option<(Vec<u8>, ApiKey)>, KeyError> {
            let Some(mut r) = db.query_opt(
                &format!("SELECT secret_sha256, {KEY_COLUMNS} FROM api_keys WHERE id = $1"),
                &vals![id],
            )?
            else {
                return Ok(None);
            };
            let digest = r.blob(0)?;
            r.0.remove(0);
            Ok(Some((digest, key_from_row(r)?)))
        })?;
        let Some((stored_digest, key)) = row else {
            return Err(KeyError::Unknown);
        };
        if !constant_time_eq(&stored_digest, presented_digest.as_slice()) {
            return Err(KeyError::Unknown);
        }
        if key.revoked.is_some() {
            return Err(KeyError::Revoked(key.id));
        }
        if let Some(expires) = &key.expires {
            // An expiry we cannot read is treated as passed: fail closed.
            let passed = DateTime::parse_from_rfc3339(expires)
                .map(|t| t <= Utc::now())
                .unwrap_or(true);
            if passed {
                return Err(KeyError::Expired(key.id));
            }
        }
        Ok(key)
    }

    /// [`KeyStore::verify`] for async callers: inline on SQLite (one indexed lookup, in
    /// microseconds), on a blocking thread on PostgreSQL (a network round trip).
    pub async fn verify_async(&self, presented: &str) -> Result<ApiKey, KeyError> {
        if !self.is_postgres() {
            return self.verify(presented);
        }
        let (store, presented) = (self.clone(), presented.to_string());
        match tokio::task::spawn_blocking(move || store.verify(&presented)).await {
            Ok(r) => r,
            Err(e) => Err(KeyError::Store(crate::StoreError::Unavailable(format!(
                "the key check could not run: {e}"
            )))),
        }
    }

    #[cfg(test)]
    fn set_expiry(&self, id: &str, expires: &str) {
        self.conn
            .read(|db| db.execute("UPDATE api_keys SET expires_at = $1 WHERE id = $2", &vals![expires, id]))
            .unwrap();
    }
}

pub(crate) const KEY_COLUMNS: &str = "id, name, principal, roles, created_at, expires_at, revoked_at";

/// A row selected with [`KEY_COLUMNS`].
pub(crate) fn key_from_row(mut r: Row) -> Result<ApiKey, DbError> {
    Ok(ApiKey {
        id: r.text(0)?,
        name: r.opt_text(1)?,
        principal: r.text(2)?,
        roles: parse_roles(&r.text(3)?),
        created: r.text(4)?,
        expires: r.opt_text(5)?,
        revoked: r.opt_text(6)?,
    })
}

/// Splits `stw_<id>_<secret>` into id and secret, checking the exact shape (lowercase hex).
pub fn split_key(presented: &str) -> Option<(&str, &str)> {
    if presented.len() != KEY_LEN {
        return None;
    }
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    (hex(id, ID_BYTES * 2) && hex(secret, SECRET_BYTES * 2)).then_some((id, secret))
}

/// Equality whose running time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

fn random_bytes<const N: usize>() -> Result<[u8; N], KeyError> {
    let mut buf = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut buf)
        .map_err(|e| KeyError::Random(e.to_string()))?;
    Ok(buf)
}

pub(crate) fn parse_roles(json: &str) -> Vec<String> {
    // A hand-edited row that is not a JSON list grants no roles rather than failing every request.
    serde_json::from_str(json).unwrap_or_default()
}

fn validate_new(new: &NewKey) -> Result<(), KeyError> {
    let bad = |s: &str| s.chars().any(char::is_control);
    let p = new.principal.trim();
    if p.is_empty() || p != new.principal || p.len() > MAX_PRINCIPAL_LEN || bad(p) {
        return Err(KeyError::InvalidInput(format!(
            "the principal must be 1 to {MAX_PRINCIPAL_LEN} characters with no surrounding spaces or control characters"
        )));
    }
    if new.roles.len() > MAX_ROLES {
        return Err(KeyError::InvalidInput(format!("at most {MAX_ROLES} roles per key")));
    }
    for role in &new.roles {
        if role.is_empty()
            || role.len() > MAX_ROLE_LEN
            || role.contains(',')
            || role.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(KeyError::InvalidInput(format!(
                "invalid role '{}': roles are 1 to {MAX_ROLE_LEN} characters without spaces or commas",
                role.escape_debug()
            )));
        }
    }
    if let Some(name) = &new.name
        && (name.len() > MAX_NAME_LEN || bad(name))
    {
        return Err(KeyError::InvalidInput(format!(
            "the key name must be at most {MAX_NAME_LEN} characters without control characters"
        )));
    }
    if let Some(expires) = new.expires
        && expires <= Utc::now()
    {
        return Err(KeyError::InvalidInput("the expiry must be in the future".into()));
    }
    Ok(())
}

fn now() -> String {
    rfc3339(Utc::now())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, KeyStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open_sqlite(&dir.path().join("sub/steward.db")).unwrap();
        (dir, store)
    }

    fn new_key(principal: &str, roles: &[&str]) -> NewKey {
        NewKey {
            principal: principal.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..NewKey::default()
        }
    }

    #[test]
    fn create_then_verify() {
        let (_d, s) = store();
        let created = s.create(&new_key("alice", &["dev", "ops"])).unwrap();
        assert_eq!(created.key.len(), KEY_LEN);
        assert!(created.key.starts_with(&format!("stw_{}_", created.record.id)));
        let key = s.verify(&created.key).unwrap();
        assert_eq!(key.principal, "alice");
        assert_eq!(key.roles, vec!["dev", "ops"]);
        assert_eq!(key, created.record);
        assert!(!format!("{created:?}").contains(&created.key[20..]));
    }

    #[test]
    fn wrong_secret_unknown_id_and_malformed_are_refused() {
        let (_d, s) = store();
        let created = s.create(&new_key("alice", &[])).unwrap();
        let (id, secret) = split_key(&created.key).unwrap();
        let first = if secret.starts_with('0') { '1' } else { '0' };
        let flipped = format!("{first}{}", &secret[1..]);
        assert!(matches!(
            s.verify(&format!("stw_{id}_{flipped}")),
            Err(KeyError::Unknown)
        ));
        assert!(matches!(
            s.verify(&format!("stw_000000000000_{secret}")),
            Err(KeyError::Unknown)
        ));
        for bad in [
            "",
            "stw_",
            "Bearer x",
            &created.key.to_uppercase(),
            &format!("{}0", created.key),
            &created.key[1..],
            &created.key.replace('_', "-"),
        ] {
            assert!(matches!(s.verify(bad), Err(KeyError::Malformed)), "{bad}");
        }
    }

    #[test]
    fn revoked_and_expired_keys_are_refused() {
        let (_d, s) = store();
        let a = s.create(&new_key("alice", &[])).unwrap();
        assert_eq!(s.revoke(&a.record.id).unwrap(), Revoked::Now);
        assert_eq!(s.revoke(&a.record.id).unwrap(), Revoked::Already);
        assert!(matches!(s.verify(&a.key), Err(KeyError::Revoked(_))));
        assert!(matches!(s.revoke("ffffffffffff"), Err(KeyError::NotFound(_))));

        let b = s
            .create(&NewKey {
                expires: Some(Utc::now() + chrono::Duration::hours(1)),
                ..new_key("bob", &[])
            })
            .unwrap();
        assert!(s.verify(&b.key).is_ok());
        // Expire it the way time would.
        s.set_expiry(&b.record.id, "2001-01-01T00:00:00.000Z");
        assert!(matches!(s.verify(&b.key), Err(KeyError::Expired(_))));
        s.set_expiry(&b.record.id, "soon");
        assert!(matches!(s.verify(&b.key), Err(KeyError::Expired(_))));
    }

    #[test]
    fn only_a_hash_is_stored_and_list_shows_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.db");
        let s = KeyStore::open_sqlite(&path).unwrap();
        let created = s
            .create(&NewKey {
                name: Some("ci".into()),
                ..new_key("svc", &["deploy"])
            })
            .unwrap();
        let (_, secret) = split_key(&created.key).unwrap();
        let listed = s.list().unwrap();
        assert_eq!(listed, vec![created.record.clone()]);
        assert!(!serde_json::to_string(&listed).unwrap().contains(secret));
        drop(s);
        let raw = std::fs::read(&path).unwrap();
        let wal = std::fs::read(path.with_extension("db-wal")).unwrap_or_default();
        for bytes in [raw, wal] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }

    #[test]
    fn a_second_handle_sees_revocation_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.db");
        let gateway = KeyStore::open_sqlite(&path).unwrap();
        let cli = KeyStore::open_sqlite(&path).unwrap();
        let k = cli.create(&new_key("alice", &[])).unwrap();
        assert!(gateway.verify(&k.key).is_ok());
        cli.revoke(&k.key).unwrap();
        assert!(matches!(gateway.verify(&k.key), Err(KeyError::Revoked(_))));
    }

    #[test]
    fn rejects_bad_input() {
        let (_d, s) = store();
        for n in [
            new_key("", &[]),
            new_key(" a", &[]),
            new_key("a\n", &[]),
            new_key("a", &["x y"]),
            new_key("a", &["x,y"]),
            new_key("a", &[""]),
        ] {
            assert!(matches!(s.create(&n), Err(KeyError::InvalidInput(_))), "{n:?}");
        }
        let past = NewKey {
            expires: Some(Utc::now() - chrono::Duration::seconds(1)),
            ..new_key("a", &[])
        };
        assert!(matches!(s.create(&past), Err(KeyError::InvalidInput(_))));
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
