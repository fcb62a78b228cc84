//! Ed25519 keys for signed checkpoints and prune anchors, kept outside the database.
//!
//! Files are PEM, so OpenSSL reads and writes them too: the private key is PKCS#8
//! (`BEGIN PRIVATE KEY`, `openssl genpkey -algorithm ed25519` makes one), the public key is
//! SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`). The crypto is aws-lc-rs, already in the build
//! for JWT validation; the PEM framing is a few lines of base64 and written here.

use std::io::Write;
use std::path::Path;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow it.
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
/// Key files are a few hundred bytes; anything much larger is not a key.
const MAX_KEY_FILE: u64 = 16 * 1024;

/// Why a key could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} already exists; remove it first (a signing key is never overwritten)")]
    Exists { path: String },
    #[error("{path}: {what}")]
    Invalid { path: String, what: String },
    #[error("cannot generate a key: the system random number generator failed")]
    Random,
}

/// An Ed25519 public key (32 bytes), as checkpoints record it: lower-case hex.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_hex(s: &str) -> Option<PublicKey> {
        let bytes = hex::decode(s.trim()).ok()?;
        bytes.try_into().ok().map(PublicKey)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A short name for messages: the first 16 hex digits of the key's SHA-256.
    pub fn id(&self) -> String {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(self.0)[..8])
    }

    /// Reads a `BEGIN PUBLIC KEY` PEM file (or a bare 64-digit hex key).
    pub fn from_file(path: &Path) -> Result<PublicKey, KeyFileError> {
        let text = read_small(path)?;
        let invalid = |what: &str| KeyFileError::Invalid {
            path: path.display().to_string(),
            what: what.to_string(),
        };
        if let Some(k) = PublicKey::from_hex(&text) {
            return Ok(k);
        }
        let der = pem_body(&text, "PUBLIC KEY").ok_or_else(|| invalid("not a PEM public key (BEGIN PUBLIC KEY)"))?;
        match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(key) => key
                .try_into()
                .map(PublicKey)
                .map_err(|_| invalid("not an Ed25519 public key")),
            None => Err(invalid("not an Ed25519 public key")),
        }
    }

    /// The key as a `BEGIN PUBLIC KEY` PEM document.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(&self.0);
        pem("PUBLIC KEY", &der)
    }

    /// Whether `signature` (hex) is this key's signature of `message`.
    pub fn verifies(&self, message: &[u8], signature: &str) -> bool {
        let Ok(sig) = hex::decode(signature.trim()) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, self.0).verify(message, &sig).is_ok()
    }
}

/// An Ed25519 private key that signs checkpoints and anchors.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public_key", &self.public_key().id())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Makes a new key and writes it to `path` (mode 0600, never overwriting) and its public
    /// half to `path.pub`.
    pub fn generate(path: &Path) -> Result<SigningKey, KeyFileError> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        // PKCS#8 v1 (RFC 8410), the form OpenSSL reads and writes.
        let pkcs8 = Ed25519KeyPair::generate_pkcs8v1(&rng).map_err(|_| KeyFileError::Random)?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8.as_ref()).map_err(|_| KeyFileError::Random)?;
        let key = SigningKey { pair };
        let public = public_path(path);
        for p in [path, public.as_path()] {
            if p.exists() {
                return Err(KeyFileError::Exists {
                    path: p.display().to_string(),
                });
            }
        }
        write_new(path, pem("PRIVATE KEY", pkcs8.as_ref()).as_bytes(), 0o600)?;
        write_new(&public, key.public_key().to_pem().as_bytes(), 0o644)?;
        Ok(key)
    }

    /// Reads a PKCS#8 `BEGIN PRIVATE KEY` PEM file.
    pub fn from_file(path: &Path) -> Result<SigningKey, KeyFileError> {
        let text = read_small(path)?;
        let invalid = |what: &str| KeyFileError::Invalid {
            path: path.display().to_string(),
            what: what.to_string(),
        };
        let der = pem_body(&text, "PRIVATE KEY").ok_or_else(|| invalid("not a PEM private key (BEGIN PRIVATE KEY)"))?;
        // PKCS#8 v1 (no public key inside, as OpenSSL writes it) and v2 both load.
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|_| invalid("not an Ed25519 PKCS#8 private key"))?;
        Ok(SigningKey { pair })
    }

    pub fn public_key(&self) -> PublicKey {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        PublicKey(out)
    }

    /// The signature of `message`, hex.
    pub fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.pair.sign(message).as_ref())
    }
}

/// Where `keygen` writes the public half of `path`: `path.pub`.
pub fn public_path(path: &Path) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".pub");
    p.into()
}

fn read_small(path: &Path) -> Result<String, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.len() > MAX_KEY_FILE {
        return Err(KeyFileError::Invalid {
            path: path.display().to_string(),
            what: format!("larger than {MAX_KEY_FILE} bytes; not a key file"),
        });
    }
    std::fs::read_to_string(path).map_err(io)
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyFileError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |source| KeyFileError::Io {
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyFileError::Exists {
                path: path.display().to_string(),
            },
            _ => io(e),
        })?;
    f.write_all(bytes).and_then(|()| f.sync_all()).map_err(io)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = start + text[start..].find(&end)?;
    let b64: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_round_trip_and_sign() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k/audit.key");
        let key = SigningKey::generate(&path).unwrap();
        let again = SigningKey::from_file(&path).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let public = PublicKey::from_file(&public_path(&path)).unwrap();
        assert_eq!(public, key.public_key());
        let sig = again.sign(b"head");
        assert!(public.verifies(b"head", &sig));
        assert!(!public.verifies(b"head2", &sig));
        assert!(!public.verifies(b"head", "zz"));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(matches!(SigningKey::generate(&path), Err(KeyFileError::Exists { .. })));
    }

    #[test]
    fn garbage_is_refused_not_panicked_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").unwrap();
        assert!(SigningKey::from_file(&path).is_err());
        std::fs::write(&path, "hello").unwrap();
        assert!(PublicKey::from_file(&path).is_err());
        assert!(SigningKey::from_file(&dir.path().join("missing")).is_err());
    }
}
