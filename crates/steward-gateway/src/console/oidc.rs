//! Console sign-in with OpenID Connect: the authorization-code flow with PKCE (S256), state and
//! nonce, against one of the issuers the API trusts. The tokens that come back are verified by
//! the gateway's [`crate::auth::Authenticator`], exactly like bearer tokens on `/mcp` and `/v1`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::config::ConsoleOidc;
use crate::auth::OidcConfig;

/// A sign-in must come back from the issuer within this.
const LOGIN_TTL: Duration = Duration::from_secs(600);
/// At most this many sign-ins under way at once (the oldest is dropped).
const MAX_PENDING: usize = 1_000;
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A sign-in sent to the issuer and not back yet.
struct Pending {
    verifier: String,
    nonce: String,
    redirect_uri: String,
    /// The console page to land on afterwards.
    next: String,
    started: Instant,
}

/// What the issuer's token endpoint gave back, with what the ID token must say.
pub struct Tokens {
    pub id_token: String,
    pub access_token: Option<String>,
    pub nonce: String,
    pub next: String,
}

#[derive(Clone)]
struct Endpoints {
    authorization: reqwest::Url,
    token: reqwest::Url,
}

pub struct Oidc {
    client: ConsoleOidc,
    issuer: OidcConfig,
    http: reqwest::Client,
    endpoints: tokio::sync::Mutex<Option<Endpoints>>,
    pending: Mutex<HashMap<String, Pending>>,
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// `BASE64URL(SHA256(verifier))` (RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

impl Oidc {
    /// The console's client at `issuer` (one of `auth.oidc`).
    pub fn new(client: ConsoleOidc, issuer: OidcConfig) -> Result<Oidc, String> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("steward-console/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client for OIDC sign-in: {e}"))?;
        Ok(Oidc {
            client,
            issuer,
            http,
            endpoints: tokio::sync::Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer.issuer
    }

    pub fn redirect_url(&self) -> Option<&str> {
        self.client.redirect_url.as_deref()
    }

    /// The issuer's authorization page for a new sign-in, and the `state` that names it.
    pub async fn begin(&self, redirect_uri: &str, next: String) -> Result<(String, String), String> {
        let endpoints = self.endpoints().await?;
        let (state, verifier, nonce) = (random_token(), random_token(), random_token());
        let mut url = endpoints.authorization.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.client.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.client.scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &s256(&verifier))
            .append_pair("code_challenge_method", "S256");
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.retain(|_, p| p.started.elapsed() < LOGIN_TTL);
        if pending.len() >= MAX_PENDING
            && let Some(oldest) = pending.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| k.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(
            state.clone(),
            Pending {
                verifier,
                nonce,
                redirect_uri: redirect_uri.to_string(),
                next,
                started: Instant::now(),
            },
        );
        Ok((url.to_string(), state))
    }

    /// Exchanges the code of the sign-in named by `state` (used once) for tokens.
    pub async fn finish(&self, state: &str, code: &str) -> Result<Tokens, String> {
        let p = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(state)
            .filter(|p| p.started.elapsed() < LOGIN_TTL)
            .ok_or("the sign-in is unknown or took too long; start again")?;
        let endpoints = self.endpoints().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", p.redirect_uri.as_str()),
            ("client_id", self.client.client_id.as_str()),
            ("code_verifier", p.verifier.as_str()),
        ];
        if let Some(secret) = &self.client.secret {
            form.push(("client_secret", secret.as_str()));
        }
        let body = serde_urlencoded::to_string(&form).map_err(|e| e.to_string())?;
        let resp = self
            .http
            .post(endpoints.token.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("the token endpoint cannot be reached: {}", e.without_url()))?;
        let status = resp.status();
        let doc = read_json(resp).await?;
        if !status.is_success() {
            let error = doc.get("error").and_then(Value::as_str).unwrap_or("unknown error");
            return Err(format!(
                "the issuer refused the sign-in ({status}: {})",
                error
                    .chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(80)
                    .collect::<String>()
            ));
        }
        let id_token = doc
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or("the issuer's answer has no id_token")?
            .to_string();
        let access_token = doc.get("access_token").and_then(Value::as_str).map(str::to_string);
        Ok(Tokens {
            id_token,
            access_token,
            nonce: p.nonce,
            next: p.next,
        })
    }

    /// The authorization and token endpoints, from the discovery document (fetched once).
    async fn endpoints(&self) -> Result<Endpoints, String> {
        let mut cached = self.endpoints.lock().await;
        if let Some(e) = cached.as_ref() {
            return Ok(e.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.issuer.issuer.trim_end_matches('/')
        );
        let url = reqwest::Url::parse(&url).map_err(|e| format!("{url}: {e}"))?;
        let resp = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{url}: {}", e.without_url()))?;
        if !resp.status().is_success() {
            return Err(format!("{url}: HTTP {}", resp.status()));
        }
        let doc = read_json(resp).await?;
        if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.issuer.as_str()) {
            return Err(format!("{url}: its `issuer` is not {}", self.issuer.issuer));
        }
        let endpoint = |name: &str| -> Result<reqwest::Url, String> {
            let raw = doc
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{url}: no `{name}`"))?;
            crate::auth::check_url(raw, name, self.issuer.allow_insecure_http).map_err(|m| format!("{url}: {m}"))
        };
        if let Some(methods) = doc.get("code_challenge_methods_supported").and_then(Value::as_array)
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(format!("{url}: the issuer does not support PKCE with S256"));
        }
        let e = Endpoints {
            authorization: endpoint("authorization_endpoint")?,
            token: endpoint("token_endpoint")?,
        };
        *cached = Some(e.clone());
        Ok(e)
    }
}

/// The `nonce` claim of a JWT whose signature was already verified.
pub fn nonce_of(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("nonce")?.as_str().map(str::to_string)
}

async fn read_json(mut resp: reqwest::Response) -> Result<Value, String> {
    if resp.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64) {
        return Err(format!("the issuer's answer is larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.without_url().to_string())? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("the issuer's answer is larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("the issuer's answer is not JSON ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636() {
        // RFC 7636 appendix B.
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn nonce_from_claims() {
        let payload = URL_SAFE_NO_PAD.encode(br#"{"nonce":"n-1","sub":"a"}"#);
        assert_eq!(nonce_of(&format!("h.{payload}.s")).as_deref(), Some("n-1"));
        assert_eq!(nonce_of("garbage"), None);
    }
}
