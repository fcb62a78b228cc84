//! What `steward scan` saw last time: the fingerprint of every tool, prompt and resource of
//! every server, in one JSON file per (home, project) pair, so the next run reports drift.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Pin files larger than this are not read (the run then starts afresh and says so).
pub const MAX_PIN_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The fingerprints of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinFile {
    /// The home and project directories scanned (for people reading the file).
    pub home: String,
    pub project: String,
    /// server key → what it offered.
    pub servers: BTreeMap<String, ServerPins>,
}

/// Fingerprints of one server's tools, prompts and resources, by name (resources by URI).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPins {
    pub tools: BTreeMap<String, String>,
    #[serde(default)]
    pub prompts: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: BTreeMap<String, String>,
}

/// The file name for a (home, project) pair: two homes, or two projects, never share one.
pub fn file_name(home: &Path, project: &Path) -> String {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut h = Sha256::new();
    h.update(canon(home).to_string_lossy().as_bytes());
    h.update([0u8]);
    h.update(canon(project).to_string_lossy().as_bytes());
    format!("scan-pins-{}.json", &hex::encode(h.finalize())[..24])
}

/// Reads the pins; `Ok(None)` when there are none yet.
pub fn load(path: &Path) -> Result<Option<PinFile>, String> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    if meta.len() > MAX_PIN_FILE_BYTES {
        return Err(format!("{} is larger than {MAX_PIN_FILE_BYTES} bytes", path.display()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{} is not a pin file: {e}", path.display()))
}

/// Writes the pins atomically (a temporary file renamed over the old one), private to the user.
pub fn save(path: &Path, pins: &PinFile) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    let text = serde_json::to_string_pretty(pins).map_err(std::io::Error::other)?;
    tmp.1.write_all(text.as_bytes())?;
    tmp.1.sync_all()?;
    drop(tmp.1);
    std::fs::rename(&tmp.0, path)
}

fn tempfile_in(dir: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    for n in 0..100u32 {
        let p = dir.join(format!(".scan-pins-{}-{n}.tmp", std::process::id()));
        match opts.open(&p) {
            Ok(f) => return Ok((p, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no temporary file name free"))
}

/// The fingerprint of a prompt or resource entry: its canonical JSON without `_meta`.
pub fn entry_fingerprint(entry: &Value) -> String {
    let mut v = entry.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("_meta");
    }
    let digest = Sha256::digest(steward_mcp::fingerprint::canonical_json(&v).as_bytes());
    format!("sha256:{}", hex::encode(digest))
}

/// One difference between two runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// `tool`, `prompt` or `resource`.
    pub item: &'static str,
    pub name: String,
    /// `changed`, `added` or `removed`.
    pub change: &'static str,
}

/// What changed from `before` to `after`.
pub fn changes(before: &ServerPins, after: &ServerPins) -> Vec<Change> {
    let mut out = Vec::new();
    for (item, a, b) in [
        ("tool", &before.tools, &after.tools),
        ("prompt", &before.prompts, &after.prompts),
        ("resource", &before.resources, &after.resources),
    ] {
        for (name, fp) in b {
            match a.get(name) {
                Some(old) if old != fp => out.push(Change {
                    item,
                    name: name.clone(),
                    change: "changed",
                }),
                None => out.push(Change {
                    item,
                    name: name.clone(),
                    change: "added",
                }),
                _ => {}
            }
        }
        for name in a.keys().filter(|n| !b.contains_key(*n)) {
            out.push(Change {
                item,
                name: name.clone(),
                change: "removed",
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_between_runs() {
        let mut a = ServerPins::default();
        a.tools.insert("x".into(), "sha256:1".into());
        a.tools.insert("gone".into(), "sha256:2".into());
        let mut b = ServerPins::default();
        b.tools.insert("x".into(), "sha256:9".into());
        b.prompts.insert("p".into(), "sha256:3".into());
        let c = changes(&a, &b);
        assert_eq!(
            c.iter()
                .map(|c| (c.item, c.name.as_str(), c.change))
                .collect::<Vec<_>>(),
            [
                ("tool", "x", "changed"),
                ("tool", "gone", "removed"),
                ("prompt", "p", "added")
            ]
        );
    }

    #[test]
    fn file_names_differ_per_home_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let a = file_name(Path::new("/home/a"), Path::new("/p"));
        let b = file_name(Path::new("/home/b"), Path::new("/p"));
        assert_ne!(a, b);
        let path = dir.path().join("sub").join(&a);
        assert_eq!(load(&path).unwrap(), None);
        let mut pins = PinFile {
            home: "/home/a".into(),
            project: "/p".into(),
            ..PinFile::default()
        };
        pins.servers.insert("s".into(), ServerPins::default());
        save(&path, &pins).unwrap();
        assert_eq!(load(&path).unwrap(), Some(pins));
        std::fs::write(&path, "not json").unwrap();
        assert!(load(&path).is_err());
    }
}
