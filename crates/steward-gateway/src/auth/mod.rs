//! Who is calling the HTTP gateway: API keys (`steward keys create`) and OIDC/JWT bearer tokens,
//! or nobody at all (`auth: none`, loopback only).
//!
//! The HTTP layer calls [`Authenticator::authenticate`] with the raw `Authorization` header and
//! answers an [`AuthError`] with [`AuthError::status`] and, for 401, a `WWW-Authenticate` header
//! from [`www_authenticate`]. Nothing here sees a request body, and no error carries a credential.

mod challenge;
mod claims;
mod config;
mod error;
mod jwks;
mod jwt;

use std::sync::Arc;

use steward_policy::Principal;
use steward_store::{KEY_PREFIX, KeyError, KeyStore};

pub use challenge::{METADATA_PATH, protected_resource_metadata, resource_metadata_url, www_authenticate};
pub(crate) use config::check_url;
pub use config::{AuthConfig, OidcConfig};
pub use error::AuthError;
pub use jwt::LEEWAY_SECS;

/// The principal id of callers let in by `auth: none`.
pub const ANONYMOUS: &str = "anonymous";
/// The longest credential looked at; anything longer is refused before any parsing.
pub const MAX_CREDENTIAL_LEN: usize = 16 * 1024;

/// Checks credentials. Built once at start-up; cheap to clone (clones share caches).
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    keys: Option<KeyStore>,
    issuers: Vec<jwt::Issuer>,
    anonymous: bool,
}

impl Authenticator {
    /// Validates `cfg` and fetches every issuer's signing keys once. An issuer that cannot be
    /// reached now is logged and retried when its first token arrives; it does not stop start-up.
    /// `keys` is required when `cfg.api_keys` is set and ignored otherwise.
    pub async fn new(cfg: &AuthConfig, keys: Option<KeyStore>) -> Result<Authenticator, AuthError> {
        cfg.validate()?;
        // Name the backend explicitly: should another crate ever enable jsonwebtoken's second
        // backend too, verification must not turn into a panic.
        let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
        let keys = match (cfg.api_keys, keys) {
            (true, Some(k)) => Some(k),
            (true, None) => {
                return Err(AuthError::Config(
                    "`api_keys: true` needs the gateway's key store".into(),
                ));
            }
            (false, _) => None,
        };
        let issuers = if cfg.oidc.is_empty() {
            Vec::new()
        } else {
            let http = reqwest::Client::builder()
                .timeout(jwks::FETCH_TIMEOUT)
                .connect_timeout(jwks::CONNECT_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("steward/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| AuthError::Config(format!("cannot build the HTTP client for OIDC: {e}")))?;
            cfg.oidc
                .iter()
                .map(|o| jwt::Issuer::new(o, http.clone()))
                .collect::<Result<Vec<_>, _>>()?
        };
        for issuer in &issuers {
            match issuer.keys.prime().await {
                Ok(n) => tracing::info!(issuer = %issuer.cfg.issuer, keys = n, "OIDC issuer ready"),
                Err(e) => {
                    tracing::warn!(issuer = %issuer.cfg.issuer, error = %e, "cannot fetch the issuer's signing keys yet; will retry when a token arrives")
                }
            }
        }
        if cfg.none {
            tracing::warn!(
                "auth: none: requests without credentials are accepted as `{ANONYMOUS}`; every caller on this machine can use the gateway"
            );
        }
        Ok(Authenticator {
            inner: Arc::new(Inner {
                keys,
                issuers,
                anonymous: cfg.none,
            }),
        })
    }

    /// The principal behind an `Authorization` header value (`None` when the header is absent).
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let Some(raw) = authorization else {
            return if self.inner.anonymous {
                Ok(Principal::new(ANONYMOUS, "none"))
            } else {
                Err(AuthError::Missing)
            };
        };
        let credential = bearer_credential(raw)?;
        if credential.starts_with(KEY_PREFIX) {
            return self.api_key(credential);
        }
        if self.inner.issuers.is_empty() {
            return Err(AuthError::invalid(if self.inner.keys.is_some() {
                "not a Steward API key (this gateway accepts no other bearer tokens)"
            } else {
                "this gateway accepts no bearer tokens"
            }));
        }
        jwt::authenticate(&self.inner.issuers, credential).await
    }

    /// The configured issuers, for the `authorization_servers` of the resource metadata.
    pub fn issuers(&self) -> Vec<String> {
        self.inner.issuers.iter().map(|i| i.cfg.issuer.clone()).collect()
    }

    pub fn allows_anonymous(&self) -> bool {
        self.inner.anonymous
    }

    pub fn accepts_api_keys(&self) -> bool {
        self.inner.keys.is_some()
    }

    fn api_key(&self, credential: &str) -> Result<Principal, AuthError> {
        let Some(store) = &self.inner.keys else {
            return Err(AuthError::invalid("this gateway does not accept API keys"));
        };
        // One indexed SQLite lookup (microseconds), so it runs inline rather than on a blocking thread.
        let key = store.verify(credential).map_err(|e| match e {
            KeyError::Malformed => AuthError::invalid("malformed API key"),
            e if e.is_rejection() => AuthError::Invalid(e.to_string()),
            e => AuthError::Unavailable(format!("API key store: {e}")),
        })?;
        let mut p = Principal::new(key.principal, "api-key");
        p.roles = key.roles;
        p.attributes.insert("key_id".into(), key.id.into());
        if let Some(name) = key.name {
            p.attributes.insert("key_name".into(), name.into());
        }
        Ok(p)
    }
}

/// `Bearer <credential>` → the credential (RFC 6750 §2.1: scheme case-insensitive, b64token).
fn bearer_credential(raw: &str) -> Result<&str, AuthError> {
    if raw.len() > MAX_CREDENTIAL_LEN + 16 {
        return Err(AuthError::Malformed(format!(
            "the credential is longer than {MAX_CREDENTIAL_LEN} bytes"
        )));
    }
    let (scheme, rest) = raw.trim().split_once(' ').unwrap_or((raw.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed(
            "use `Authorization: Bearer <API key or token>`".into(),
        ));
    }
    let credential = rest.trim_start_matches(' ');
    let b64token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~' | '+' | '/' | '=');
    if credential.is_empty() || !credential.chars().all(b64token) {
        return Err(AuthError::Malformed(
            "the bearer credential is empty or has characters a token cannot have".into(),
        ));
    }
    if credential.len() > MAX_CREDENTIAL_LEN {
        return Err(AuthError::Malformed(format!(
            "the credential is longer than {MAX_CREDENTIAL_LEN} bytes"
        )));
    }
    Ok(credential)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer_credential("Bearer abc.def-_~+/=").unwrap(), "abc.def-_~+/=");
        assert_eq!(bearer_credential("bearer  abc").unwrap(), "abc");
        assert_eq!(bearer_credential("BEARER abc").unwrap(), "abc");
        for bad in [
            "",
            "Bearer",
            "Bearer ",
            "Basic dXNlcjpwYXNz",
            "abc",
            "Bearer a b",
            "Bearer a\"b",
            "Bearer é",
        ] {
            assert!(
                matches!(bearer_credential(bad), Err(AuthError::Malformed(_))),
                "{bad:?}"
            );
        }
        let huge = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_LEN + 1));
        assert!(matches!(bearer_credential(&huge), Err(AuthError::Malformed(_))));
    }

    #[tokio::test]
    async fn anonymous_only_when_configured() {
        let none = Authenticator::new(
            &AuthConfig {
                none: true,
                ..AuthConfig::default()
            },
            None,
        )
        .await
        .unwrap();
        let p = none.authenticate(None).await.unwrap();
        assert_eq!((p.id.as_str(), p.auth.as_str()), (ANONYMOUS, "none"));
        // A credential that is present is still checked.
        assert!(none.authenticate(Some("Bearer stw_x")).await.is_err());
        assert!(none.authenticate(Some("Bearer a.b.c")).await.is_err());

        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open_sqlite(&dir.path().join("s.db")).unwrap();
        let keys = Authenticator::new(
            &AuthConfig {
                api_keys: true,
                ..AuthConfig::default()
            },
            Some(store),
        )
        .await
        .unwrap();
        assert_eq!(keys.authenticate(None).await.unwrap_err(), AuthError::Missing);
        assert!(keys.issuers().is_empty());
        assert!(
            Authenticator::new(
                &AuthConfig {
                    api_keys: true,
                    ..AuthConfig::default()
                },
                None
            )
            .await
            .is_err()
        );
        assert!(Authenticator::new(&AuthConfig::default(), None).await.is_err());
    }
}
