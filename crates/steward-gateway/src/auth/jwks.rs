//! One issuer's signing keys: fetched from its JWKS (found by OIDC discovery unless configured),
//! cached, refreshed when old, and refetched when a token names a key we do not know, at most
//! once per cooldown so random `kid`s cannot make us hammer the identity provider.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde_json::Value;

use super::AuthError;
use super::config::check_url;

/// Whole-request time limit for discovery and JWKS fetches.
pub(crate) const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// At most one refetch for an unknown `kid` per issuer in this window.
const KID_REFETCH_COOLDOWN: Duration = Duration::from_secs(30);
/// Keys older than this are refreshed in the background (so removed keys stop working).
const MAX_AGE: Duration = Duration::from_secs(600);
/// Failed background refreshes are retried no sooner than this.
const RETRY_AFTER: Duration = Duration::from_secs(30);
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const MAX_KEYS: usize = 64;

/// A usable verification key from the JWKS.
struct CachedKey {
    kid: Option<String>,
    family: AlgorithmFamily,
    /// The JWK's own `alg`, when it pins one.
    alg: Option<Algorithm>,
    curve: Option<EllipticCurve>,
    key: DecodingKey,
}

impl CachedKey {
    fn fits(&self, alg: Algorithm) -> bool {
        let curve_ok = match (&self.curve, alg) {
            (Some(EllipticCurve::P256), Algorithm::ES256) | (Some(EllipticCurve::P384), Algorithm::ES384) => true,
            (Some(EllipticCurve::Ed25519), Algorithm::EdDSA) => true,
            (Some(_), _) => false,
            (None, _) => true,
        };
        self.family == alg.family() && self.alg.is_none_or(|a| a == alg) && curve_ok
    }
}

#[derive(Default)]
struct Times {
    fetched_ok: Option<Instant>,
    attempted: Option<Instant>,
    kid_refetch: Option<Instant>,
}

pub(crate) struct KeyCache {
    issuer: String,
    configured_url: Option<reqwest::Url>,
    allow_http: bool,
    http: reqwest::Client,
    discovered_url: Mutex<Option<reqwest::Url>>,
    keys: RwLock<Arc<Vec<CachedKey>>>,
    times: Mutex<Times>,
    /// Held while fetching, so concurrent requests wait for one fetch instead of starting many.
    fetching: Arc<tokio::sync::Mutex<()>>,
}

impl KeyCache {
    pub(crate) fn new(
        issuer: &str,
        jwks_url: Option<&str>,
        allow_http: bool,
        http: reqwest::Client,
    ) -> Result<KeyCache, AuthError> {
        let configured_url = jwks_url
            .map(|u| check_url(u, "jwks_url", allow_http))
            .transpose()
            .map_err(|m| AuthError::Config(format!("auth.oidc (issuer {issuer}): {m}")))?;
        Ok(KeyCache {
            issuer: issuer.to_string(),
            configured_url,
            allow_http,
            http,
            discovered_url: Mutex::new(None),
            keys: RwLock::new(Arc::new(Vec::new())),
            times: Mutex::new(Times::default()),
            fetching: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Fetches the keys now (start-up). Returns how many usable keys there are.
    pub(crate) async fn prime(&self) -> Result<usize, String> {
        let _guard = self.fetching.lock().await;
        self.fetch_and_store().await
    }

    /// The key for a token's `kid` and `alg`.
    pub(crate) async fn key_for(self: &Arc<Self>, kid: Option<&str>, alg: Algorithm) -> Result<DecodingKey, AuthError> {
        if let Some(key) = select(&self.snapshot(), kid, alg)? {
            if self.needs_refresh() {
                self.refresh_in_background();
            }
            return Ok(key);
        }
        let _guard = self.fetching.lock().await;
        // Someone else may have fetched while we waited.
        if let Some(key) = select(&self.snapshot(), kid, alg)? {
            return Ok(key);
        }
        {
            let mut t = lock(&self.times);
            if t.kid_refetch.is_some_and(|at| at.elapsed() < KID_REFETCH_COOLDOWN) {
                return Err(unknown_key());
            }
            t.kid_refetch = Some(Instant::now());
        }
        self.fetch_and_store()
            .await
            .map_err(|e| AuthError::Unavailable(format!("cannot fetch the signing keys of {}: {e}", self.issuer)))?;
        select(&self.snapshot(), kid, alg)?.ok_or_else(unknown_key)
    }

    fn snapshot(&self) -> Arc<Vec<CachedKey>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn needs_refresh(&self) -> bool {
        let t = lock(&self.times);
        let old = t.fetched_ok.is_none_or(|at| at.elapsed() > MAX_AGE);
        let may_retry = t.attempted.is_none_or(|at| at.elapsed() > RETRY_AFTER);
        old && may_retry
    }

    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(guard) = self.fetching.clone().try_lock_owned() else {
            return; // a fetch is already running
        };
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let _guard = guard;
            if let Err(e) = this.fetch_and_store().await {
                tracing::warn!(issuer = %this.issuer, error = %e, "refreshing signing keys failed; keeping the cached ones");
            }
        });
    }

    /// Call with `fetching` held.
    async fn fetch_and_store(&self) -> Result<usize, String> {
        lock(&self.times).attempted = Some(Instant::now());
        let url = self.jwks_url().await?;
        let doc = get_json(&self.http, &url).await?;
        let keys = parse_jwks(&doc)?;
        let n = keys.len();
        if n == 0 {
            tracing::warn!(issuer = %self.issuer, %url, "the JWKS holds no usable signing key");
        }
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(keys);
        lock(&self.times).fetched_ok = Some(Instant::now());
        tracing::debug!(issuer = %self.issuer, %url, keys = n, "signing keys fetched");
        Ok(n)
    }

    async fn jwks_url(&self) -> Result<reqwest::Url, String> {
        if let Some(u) = &self.configured_url {
            return Ok(u.clone());
        }
        if let Some(u) = lock(&self.discovered_url).clone() {
            return Ok(u);
        }
        let discovery = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let discovery = reqwest::Url::parse(&discovery).map_err(|e| format!("{discovery}: {e}"))?;
        let doc = get_json(&self.http, &discovery).await?;
        // OpenID Connect Discovery §4.3: the document must name exactly the issuer we asked.
        if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(format!("{discovery}: its `issuer` is not {}", self.issuer));
        }
        let jwks = doc
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{discovery}: no `jwks_uri`"))?;
        let url = check_url(jwks, "jwks_uri", self.allow_http).map_err(|m| format!("{discovery}: {m}"))?;
        *lock(&self.discovered_url) = Some(url.clone());
        Ok(url)
    }
}

fn unknown_key() -> AuthError {
    AuthError::invalid("the token is signed with a key the issuer does not publish")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The one key a token may be verified with, or `None` when we do not have it.
fn select(keys: &[CachedKey], kid: Option<&str>, alg: Algorithm) -> Result<Option<DecodingKey>, AuthError> {
    match kid {
        Some(kid) => match keys.iter().find(|k| k.kid.as_deref() == Some(kid)) {
            // The key named by `kid` decides the algorithm family: an RSA key never verifies
            // an HS256 or ES256 signature, whatever the header says.
            Some(k) if k.fits(alg) => Ok(Some(k.key.clone())),
            Some(_) => Err(AuthError::invalid(
                "the token's algorithm does not match its signing key",
            )),
            None => Ok(None),
        },
        None => {
            let mut fitting = keys.iter().filter(|k| k.fits(alg));
            match (fitting.next(), fitting.next()) {
                (Some(k), None) => Ok(Some(k.key.clone())),
                (None, _) => Ok(None),
                (Some(_), Some(_)) => Err(AuthError::invalid(
                    "the token names no key id (kid) and the issuer has several keys",
                )),
            }
        }
    }
}

/// The signature keys of a JWKS document. Keys we cannot or must not use are skipped:
/// encryption keys, symmetric (`oct`) keys, unknown types and algorithms.
fn parse_jwks(doc: &Value) -> Result<Vec<CachedKey>, String> {
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the JWKS has no `keys` list")?;
    let mut out = Vec::new();
    for raw in list.iter().take(MAX_KEYS) {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else {
            continue;
        };
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            continue;
        }
        let (family, curve) = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => (AlgorithmFamily::Rsa, None),
            AlgorithmParameters::EllipticCurve(p) => (AlgorithmFamily::Ec, Some(p.curve.clone())),
            AlgorithmParameters::OctetKeyPair(p) => (AlgorithmFamily::Ed, Some(p.curve.clone())),
            _ => continue,
        };
        let alg = match jwk.common.key_algorithm {
            None => None,
            Some(ka) => match Algorithm::try_from(ka) {
                Ok(a) if a.family() == family => Some(a),
                _ => continue,
            },
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        out.push(CachedKey {
            kid: jwk.common.key_id.clone(),
            family,
            alg,
            curve,
            key,
        });
    }
    Ok(out)
}

/// GET a JSON document with the client's timeouts and a size limit on the body.
async fn get_json(http: &reqwest::Client, url: &reqwest::Url) -> Result<Value, String> {
    let mut resp = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("{url}: {}", e.without_url()))?;
    if !resp.status().is_success() {
        return Err(format!("{url}: HTTP {}", resp.status()));
    }
    if resp.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Err(format!("{url}: the document is larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{url}: {}", e.without_url()))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("{url}: the document is larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url}: not JSON ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const N: &str = "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw";

    #[test]
    fn skips_keys_that_must_not_verify_signatures() {
        let doc = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": N, "e": "AQAB", "kid": "enc", "use": "enc", "alg": "RSA-OAEP"},
            {"kty": "RSA", "n": N, "e": "AQAB", "kid": "hs", "alg": "HS256"},
            {"kty": "RSA", "n": N, "e": "AQAB", "kid": "sig", "use": "sig", "alg": "RS256"},
            {"kty": "weird", "kid": "w"},
            "not even an object",
        ]});
        let keys = parse_jwks(&doc).unwrap();
        let kids: Vec<_> = keys.iter().map(|k| k.kid.as_deref().unwrap_or("")).collect();
        assert_eq!(kids, vec!["sig"]);
        assert!(parse_jwks(&json!({"nokeys": []})).is_err());
    }

    #[test]
    fn selection_follows_the_key_not_the_header() {
        let keys = parse_jwks(&json!({"keys": [
            {"kty": "RSA", "n": N, "e": "AQAB", "kid": "a", "alg": "RS256"},
            {"kty": "RSA", "n": N, "e": "AQAB", "kid": "b"},
        ]}))
        .unwrap();
        assert!(select(&keys, Some("a"), Algorithm::RS256).unwrap().is_some());
        assert!(select(&keys, Some("a"), Algorithm::PS256).is_err());
        assert!(select(&keys, Some("a"), Algorithm::HS256).is_err());
        assert!(select(&keys, Some("b"), Algorithm::PS512).unwrap().is_some());
        assert!(select(&keys, Some("b"), Algorithm::ES256).is_err());
        assert!(select(&keys, Some("zz"), Algorithm::RS256).unwrap().is_none());
        // Without a kid, only an unambiguous key is used.
        assert!(select(&keys, None, Algorithm::RS256).is_err());
        assert!(select(&keys, None, Algorithm::PS256).unwrap().is_some());
        assert!(select(&keys, None, Algorithm::ES256).unwrap().is_none());
    }
}
