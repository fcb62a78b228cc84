//! JWT bearer tokens from the configured OIDC issuers.
//!
//! Order of checks: shape; header (`alg` is never `none`, no `crit`); the unverified `iss` picks
//! the issuer (exact match) and thereby its algorithm allow-list and keys; the key named by `kid`
//! must fit the algorithm; then jsonwebtoken verifies the signature and `exp`/`nbf` (60 s leeway),
//! `iss` and `aud`; finally claims become a principal.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use steward_policy::Principal;

use super::config::OidcConfig;
use super::jwks::KeyCache;
use super::{AuthError, claims};

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 60;

/// A trusted issuer, ready to verify its tokens.
pub(crate) struct Issuer {
    pub(crate) cfg: OidcConfig,
    algorithms: Vec<Algorithm>,
    pub(crate) keys: Arc<KeyCache>,
}

impl Issuer {
    pub(crate) fn new(cfg: &OidcConfig, http: reqwest::Client) -> Result<Issuer, AuthError> {
        cfg.validate()?;
        let keys = KeyCache::new(&cfg.issuer, cfg.jwks_url.as_deref(), cfg.allow_insecure_http, http)?;
        Ok(Issuer {
            cfg: cfg.clone(),
            algorithms: cfg.allowed_algorithms()?,
            keys: Arc::new(keys),
        })
    }

    async fn verify(&self, token: &str, alg: Algorithm, kid: Option<&str>) -> Result<Principal, AuthError> {
        if !self.algorithms.contains(&alg) {
            return Err(AuthError::invalid(format!(
                "tokens signed with {alg:?} are not accepted"
            )));
        }
        let key = self.keys.key_for(kid, alg).await?;
        let mut v = Validation::new(alg);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&self.cfg.audience);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.leeway = LEEWAY_SECS;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = true;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| refusal(e.kind()))?;
        claims::principal(&data.claims, &self.cfg.principal_claim, &self.cfg.roles_claim)
    }
}

/// Verifies `token` against whichever configured issuer it names.
pub(crate) async fn authenticate(issuers: &[Issuer], token: &str) -> Result<Principal, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::invalid(
            "the bearer credential is neither a Steward API key nor a JWT",
        ));
    };
    let header = decode_segment(header).ok_or_else(|| AuthError::invalid("malformed token header"))?;
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::invalid("the token header names no algorithm"))?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(AuthError::invalid("unsigned tokens (alg none) are refused"));
    }
    if header.contains_key("crit") {
        return Err(AuthError::invalid(
            "the token header has critical extensions this gateway does not understand",
        ));
    }
    let alg: Algorithm = alg_name
        .parse()
        .map_err(|_| AuthError::invalid("unsupported token algorithm"))?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.as_str()),
        Some(_) => return Err(AuthError::invalid("malformed token header")),
    };
    let claims = decode_segment(payload).ok_or_else(|| AuthError::invalid("malformed token claims"))?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| AuthError::invalid("the token has no `iss` claim"))?;
    // Byte-for-byte: a trailing slash or a different case is another issuer.
    let issuer = issuers
        .iter()
        .find(|i| i.cfg.issuer == iss)
        .ok_or_else(|| AuthError::invalid("the token's issuer is not trusted here"))?;
    issuer.verify(token, alg, kid).await
}

fn decode_segment(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What the caller is told. Specific enough to fix a client, never the token's own values.
fn refusal(kind: &ErrorKind) -> AuthError {
    let msg = match kind {
        ErrorKind::ExpiredSignature => "the token has expired",
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)",
        ErrorKind::InvalidAudience => "the token's audience does not include this gateway",
        ErrorKind::InvalidIssuer => "the token's issuer is not trusted here",
        ErrorKind::InvalidSignature => "the token's signature does not verify",
        ErrorKind::MissingRequiredClaim(c) => {
            return AuthError::invalid(format!(
                "the token has no `{}` claim",
                if c.len() <= 8 { c.as_str() } else { "required" }
            ));
        }
        ErrorKind::InvalidClaimFormat(_) => "the token has a malformed time claim",
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the token's algorithm does not match its signing key"
        }
        _ => "invalid token",
    };
    AuthError::invalid(msg)
}
