use std::path::PathBuf;

/// Where the proxy's audit database lives when `--audit-db`/`--db` is not given:
/// `$XDG_DATA_HOME/steward/audit.db`, else `~/.local/share/steward/audit.db`, else `./steward-data/audit.db`.
pub fn default_audit_db() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        });
    match base {
        Some(b) => b.join("steward").join("audit.db"),
        None => PathBuf::from("steward-data").join("audit.db"),
    }
}
