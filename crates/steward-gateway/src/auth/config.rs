//! The `auth:` section of steward.yaml.
//!
//! ```yaml
//! auth:
//!   api_keys: true
//!   oidc:                                # one issuer, or a list of them
//!     issuer: https://keycloak.example/realms/acme
//!     audience: steward                  # or a list; the token's `aud` must contain one
//!     jwks_url: https://keycloak.example/realms/acme/protocol/openid-connect/certs  # else discovery
//!     roles_claim: realm_access.roles    # or a list of claim paths; default `roles`
//!     principal_claim: preferred_username  # default `sub`
//!     algorithms: [RS256, ES256]         # default: every asymmetric algorithm
//!   none: false                          # anonymous callers; loopback listeners only
//! ```
//! `auth: none` (a plain word) is the same as `auth: { none: true }`.

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer};

use super::AuthError;

/// How callers of the HTTP gateway prove who they are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    /// Accept API keys made by `steward keys create`.
    pub api_keys: bool,
    /// Accept JWT bearer tokens from these issuers.
    pub oidc: Vec<OidcConfig>,
    /// Let callers without credentials in, as [`super::ANONYMOUS`]. Loopback listeners only.
    pub none: bool,
}

/// One trusted token issuer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Compared byte for byte with the token's `iss`.
    pub issuer: String,
    /// The token's `aud` must contain at least one of these.
    #[serde(deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// The JWKS address; when absent it comes from `{issuer}/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Dotted claim paths whose string lists (or space-separated strings) are the caller's roles.
    #[serde(default = "default_roles_claim", deserialize_with = "one_or_many")]
    pub roles_claim: Vec<String>,
    /// The claim that names the principal.
    #[serde(default = "default_principal_claim")]
    pub principal_claim: String,
    /// Signature algorithms to accept; `none` and the HS* family are refused.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    /// Allow `http://` issuer and JWKS addresses on hosts other than loopback. Anyone on the
    /// network path could then substitute signing keys; for closed test networks only.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

fn default_roles_claim() -> Vec<String> {
    vec!["roles".into()]
}

fn default_principal_claim() -> String {
    "sub".into()
}

/// Every algorithm accepted when `algorithms` is not given: all the asymmetric ones.
pub(crate) const DEFAULT_ALGORITHMS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

impl OidcConfig {
    /// The allow-list, checked: never `none`, never a shared-secret (HS*) algorithm.
    pub(crate) fn allowed_algorithms(&self) -> Result<Vec<Algorithm>, AuthError> {
        let Some(names) = &self.algorithms else {
            return Ok(DEFAULT_ALGORITHMS.to_vec());
        };
        if names.is_empty() {
            return Err(self.err("`algorithms` is empty; leave it out to accept every asymmetric algorithm"));
        }
        names
            .iter()
            .map(|name| {
                if name.eq_ignore_ascii_case("none") {
                    return Err(self.err("algorithm `none` (unsigned tokens) is never accepted"));
                }
                let alg: Algorithm = name.parse().map_err(|_| self.err(&format!("unknown algorithm `{name}`")))?;
                if alg.family() == AlgorithmFamily::Hmac {
                    return Err(self.err(&format!(
                        "{name} is a shared-secret algorithm; tokens from an OIDC issuer are checked with its public keys only"
                    )));
                }
                Ok(alg)
            })
            .collect()
    }

    /// Checks everything that can be checked without the network.
    pub(crate) fn validate(&self) -> Result<(), AuthError> {
        check_url(&self.issuer, "issuer", self.allow_insecure_http).map_err(|m| self.err(&m))?;
        if let Some(url) = &self.jwks_url {
            check_url(url, "jwks_url", self.allow_insecure_http).map_err(|m| self.err(&m))?;
        }
        if self.audience.is_empty() || self.audience.iter().any(|a| a.trim().is_empty()) {
            return Err(self.err("`audience` must name this gateway (e.g. the client id the tokens are issued for)"));
        }
        if self
            .roles_claim
            .iter()
            .chain([&self.principal_claim])
            .any(|c| c.trim().is_empty())
        {
            return Err(self.err("claim names must not be empty"));
        }
        self.allowed_algorithms().map(|_| ())
    }

    fn err(&self, msg: &str) -> AuthError {
        AuthError::Config(format!("auth.oidc (issuer {}): {msg}", self.issuer))
    }
}

/// Only `https://`, or `http://` to a loopback host, unless explicitly allowed.
pub(crate) fn check_url(url: &str, what: &str, allow_http: bool) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{what}` is not a URL ({e})"))?;
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if allow_http || is_loopback_host(&parsed) => Ok(parsed),
        "http" => Err(format!(
            "`{what}` uses plain http to a non-loopback host; use https (or set allow_insecure_http: true on a closed test network)"
        )),
        other => Err(format!("`{what}` has unsupported scheme `{other}`")),
    }
}

fn is_loopback_host(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.to_canonical().is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

impl AuthConfig {
    /// True when no credentials are needed.
    pub fn allows_anonymous(&self) -> bool {
        self.none
    }

    /// `auth: none` is refused unless the gateway listens on loopback only.
    pub fn check_listen(&self, listen: SocketAddr) -> Result<(), AuthError> {
        if self.none && !listen.ip().to_canonical().is_loopback() {
            return Err(AuthError::Config(format!(
                "`auth: none` lets anyone call every tool without credentials; it is only allowed when listening on loopback, not {listen}"
            )));
        }
        Ok(())
    }

    /// Checks the section without touching the network.
    pub fn validate(&self) -> Result<(), AuthError> {
        if !self.api_keys && self.oidc.is_empty() && !self.none {
            return Err(AuthError::Config(
                "the auth section enables no method: set `api_keys: true`, add `oidc:`, or (loopback only) `none: true`".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for oidc in &self.oidc {
            oidc.validate()?;
            if !seen.insert(oidc.issuer.as_str()) {
                return Err(AuthError::Config(format!(
                    "auth.oidc: issuer {} is listed twice",
                    oidc.issuer
                )));
            }
        }
        Ok(())
    }
}

/// The map form, with the exact key names of steward.yaml.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthMap {
    #[serde(default)]
    api_keys: bool,
    #[serde(default, deserialize_with = "one_or_many")]
    oidc: Vec<OidcConfig>,
    #[serde(default)]
    none: bool,
}

impl<'de> Deserialize<'de> for AuthConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AuthVisitor;
        impl<'de> Visitor<'de> for AuthVisitor {
            type Value = AuthConfig;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an auth map (api_keys, oidc, none) or the word `none`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AuthConfig, E> {
                match v {
                    "none" => Ok(AuthConfig {
                        none: true,
                        ..AuthConfig::default()
                    }),
                    other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
                }
            }
            fn visit_unit<E: de::Error>(self) -> Result<AuthConfig, E> {
                Ok(AuthConfig::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<AuthConfig, E> {
                Ok(AuthConfig::default())
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<AuthConfig, A::Error> {
                let m = AuthMap::deserialize(MapAccessDeserializer::new(map))?;
                Ok(AuthConfig {
                    api_keys: m.api_keys,
                    oidc: m.oidc,
                    none: m.none,
                })
            }
        }
        deserializer.deserialize_any(AuthVisitor)
    }
}

/// One value or a list of them: `audience: steward` and `audience: [steward, web]` both work,
/// and an item's own errors (e.g. an unknown key in an `oidc` entry) are reported as they are.
fn one_or_many<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct OneOrMany<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for OneOrMany<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("one value or a list")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
            T::deserialize(v.into_deserializer()).map(|t| vec![t])
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Vec<T>, A::Error> {
            Vec::<T>::deserialize(SeqAccessDeserializer::new(seq))
        }
        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            T::deserialize(MapAccessDeserializer::new(map)).map(|t| vec![t])
        }
    }
    deserializer.deserialize_any(OneOrMany(PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Result<AuthConfig, String> {
        #[derive(Deserialize)]
        struct Doc {
            auth: AuthConfig,
        }
        serde_saphyr::from_str::<Doc>(s)
            .map(|d| d.auth)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_the_documented_shape() {
        let cfg = yaml(
            "auth:\n  api_keys: true\n  oidc:\n    issuer: https://kc.example/realms/acme\n    audience: steward\n    jwks_url: https://kc.example/realms/acme/protocol/openid-connect/certs\n    roles_claim: realm_access.roles\n",
        )
        .unwrap();
        assert!(cfg.api_keys && !cfg.none);
        assert_eq!(cfg.oidc.len(), 1);
        let o = &cfg.oidc[0];
        assert_eq!(o.audience, vec!["steward"]);
        assert_eq!(o.roles_claim, vec!["realm_access.roles"]);
        assert_eq!(o.principal_claim, "sub");
        assert_eq!(o.allowed_algorithms().unwrap(), DEFAULT_ALGORITHMS);
        cfg.validate().unwrap();
    }

    #[test]
    fn reads_lists_of_issuers_audiences_and_claims() {
        let cfg = yaml(
            "auth:\n  oidc:\n    - issuer: https://a.example\n      audience: [x, y]\n      roles_claim: [realm_access.roles, groups]\n      principal_claim: preferred_username\n      algorithms: [ES256]\n    - issuer: http://127.0.0.1:9000\n      audience: z\n",
        )
        .unwrap();
        assert_eq!(cfg.oidc.len(), 2);
        assert_eq!(cfg.oidc[0].audience, vec!["x", "y"]);
        assert_eq!(cfg.oidc[0].roles_claim, vec!["realm_access.roles", "groups"]);
        assert_eq!(cfg.oidc[0].allowed_algorithms().unwrap(), vec![Algorithm::ES256]);
        assert_eq!(cfg.oidc[1].roles_claim, vec!["roles"]);
        cfg.validate().unwrap();
    }

    #[test]
    fn none_as_a_word_or_a_key() {
        assert!(yaml("auth: none\n").unwrap().none);
        assert!(yaml("auth: { none: true }\n").unwrap().none);
        assert!(yaml("auth: everyone\n").is_err());
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let e = yaml("auth:\n  api_key: true\n").unwrap_err();
        assert!(e.contains("api_key"), "{e}");
        let e =
            yaml("auth:\n  oidc:\n    issuer: https://a.example\n    audience: s\n    role_claim: x\n").unwrap_err();
        assert!(e.contains("role_claim"), "{e}");
    }

    #[test]
    fn refuses_unsafe_algorithms_and_urls() {
        for (algs, needle) in [
            ("[none]", "none"),
            ("[HS256]", "shared-secret"),
            ("[RS257]", "unknown"),
            ("[]", "empty"),
        ] {
            let cfg = yaml(&format!(
                "auth:\n  oidc:\n    issuer: https://a.example\n    audience: s\n    algorithms: {algs}\n"
            ))
            .unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{algs}: {e}");
        }
        let cfg = yaml("auth:\n  oidc:\n    issuer: http://kc.example\n    audience: s\n").unwrap();
        assert!(cfg.validate().unwrap_err().to_string().contains("plain http"));
        let cfg =
            yaml("auth:\n  oidc:\n    issuer: http://kc.example\n    audience: s\n    allow_insecure_http: true\n")
                .unwrap();
        cfg.validate().unwrap();
        let cfg = yaml("auth:\n  oidc:\n    issuer: https://kc.example\n    audience: ''\n").unwrap();
        assert!(cfg.validate().is_err());
        assert!(yaml("auth: {}\n").unwrap().validate().is_err());
    }

    #[test]
    fn none_only_on_loopback() {
        let cfg = AuthConfig {
            none: true,
            ..AuthConfig::default()
        };
        cfg.check_listen("127.0.0.1:8787".parse().unwrap()).unwrap();
        cfg.check_listen("[::1]:8787".parse().unwrap()).unwrap();
        cfg.check_listen("[::ffff:127.0.0.1]:8787".parse().unwrap()).unwrap();
        assert!(cfg.check_listen("0.0.0.0:8787".parse().unwrap()).is_err());
        assert!(cfg.check_listen("[::]:8787".parse().unwrap()).is_err());
        assert!(cfg.check_listen("10.1.2.3:8787".parse().unwrap()).is_err());
        let keys = AuthConfig {
            api_keys: true,
            ..AuthConfig::default()
        };
        keys.check_listen("0.0.0.0:8787".parse().unwrap()).unwrap();
    }
}
