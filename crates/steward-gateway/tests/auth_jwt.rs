//! OIDC/JWT authentication against a local identity provider: keys and tokens are minted here,
//! and a tiny HTTP server on 127.0.0.1 serves the discovery document and the JWKS.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use steward_gateway::auth::{AuthConfig, AuthError, Authenticator, OidcConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---- keys and tokens ----------------------------------------------------------------------

enum Signer {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

struct TestKey {
    kid: String,
    signer: Signer,
}

impl TestKey {
    fn ec(kid: &str) -> TestKey {
        let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        TestKey {
            kid: kid.into(),
            signer: Signer::Ec(kp),
        }
    }

    fn rsa(kid: &str) -> TestKey {
        TestKey {
            kid: kid.into(),
            signer: Signer::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
        }
    }

    fn alg(&self) -> &'static str {
        match self.signer {
            Signer::Ec(_) => "ES256",
            Signer::Rsa(_) => "RS256",
        }
    }

    /// The public JWK, as an identity provider publishes it.
    fn jwk(&self) -> Value {
        match &self.signer {
            Signer::Ec(kp) => {
                let point = kp.public_key().as_ref();
                assert_eq!(point[0], 4);
                json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig", "alg": "ES256",
                       "x": b64(&point[1..33]), "y": b64(&point[33..65])})
            }
            Signer::Rsa(kp) => {
                let public = kp.public_key();
                json!({"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256",
                       "n": b64(public.modulus().big_endian_without_leading_zero()),
                       "e": b64(public.exponent().big_endian_without_leading_zero())})
            }
        }
    }

    /// The public key as PEM, the classic HMAC secret in an HS/RS confusion attack.
    fn public_pem(&self) -> String {
        let Signer::Rsa(kp) = &self.signer else {
            panic!("RSA only")
        };
        let der = kp.public_key().as_der().unwrap();
        let body = STANDARD.encode(der.as_ref());
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(&json!({"alg": self.alg(), "typ": "JWT", "kid": self.kid}), claims)
    }

    fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = match &self.signer {
            Signer::Ec(kp) => kp
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Signer::Rsa(kp) => {
                let mut sig = vec![0; kp.public_modulus_len()];
                kp.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
        };
        format!("{input}.{}", b64(&sig))
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

fn hs256(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

// ---- the identity provider ----------------------------------------------------------------

/// Serves `{issuer}/.well-known/openid-configuration` and `{issuer}/certs` on 127.0.0.1.
struct Idp {
    issuer: String,
    jwks: Arc<Mutex<Value>>,
    jwks_hits: Arc<AtomicUsize>,
    discovery_hits: Arc<AtomicUsize>,
}

impl Idp {
    async fn start(keys: &[&TestKey]) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}/realms/test", listener.local_addr().unwrap());
        let idp = Idp {
            issuer: issuer.clone(),
            jwks: Arc::new(Mutex::new(
                json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()}),
            )),
            jwks_hits: Arc::default(),
            discovery_hits: Arc::default(),
        };
        let (jwks, jwks_hits, discovery_hits) = (idp.jwks.clone(), idp.jwks_hits.clone(), idp.discovery_hits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (jwks, jwks_hits, discovery_hits, issuer) =
                    (jwks.clone(), jwks_hits.clone(), discovery_hits.clone(), issuer.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 1024];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let head = String::from_utf8_lossy(&buf);
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    let (status, body) = if path == "/realms/test/.well-known/openid-configuration" {
                        discovery_hits.fetch_add(1, Ordering::SeqCst);
                        (
                            "200 OK",
                            json!({"issuer": issuer, "jwks_uri": format!("{issuer}/certs")}).to_string(),
                        )
                    } else if path == "/realms/test/certs" {
                        jwks_hits.fetch_add(1, Ordering::SeqCst);
                        ("200 OK", jwks.lock().unwrap().to_string())
                    } else {
                        ("404 Not Found", "{}".to_string())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        idp
    }

    fn publish(&self, keys: &[&TestKey]) {
        *self.jwks.lock().unwrap() = json!({"keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>()});
    }

    fn oidc(&self) -> OidcConfig {
        OidcConfig {
            issuer: self.issuer.clone(),
            audience: vec!["steward".into()],
            jwks_url: None,
            roles_claim: vec!["realm_access.roles".into()],
            principal_claim: "preferred_username".into(),
            algorithms: None,
            allow_insecure_http: false,
        }
    }

    async fn authenticator(&self) -> Authenticator {
        Authenticator::new(
            &AuthConfig {
                oidc: vec![self.oidc()],
                ..AuthConfig::default()
            },
            None,
        )
        .await
        .unwrap()
    }

    fn claims(&self) -> Value {
        json!({
            "iss": self.issuer, "aud": ["steward", "account"], "sub": "8f1c-uuid", "azp": "claude-code",
            "preferred_username": "alice", "email": "alice@example.com", "name": "Alice",
            "iat": now(), "exp": now() + 300, "realm_access": {"roles": ["developer", "offline_access"]},
        })
    }

    fn hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn refused(auth: &Authenticator, token: &str) -> String {
    match auth.authenticate(Some(&bearer(token))).await {
        Err(e @ AuthError::Invalid(_)) => {
            assert_eq!(e.status(), 401);
            e.to_string()
        }
        other => panic!("expected a 401 refusal, got {other:?}"),
    }
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

// ---- the cases ----------------------------------------------------------------------------

#[tokio::test]
async fn valid_tokens_become_principals_with_roles() {
    let ec = TestKey::ec("ec-1");
    let rsa = TestKey::rsa("rsa-1");
    let idp = Idp::start(&[&ec, &rsa]).await;
    let auth = idp.authenticator().await;
    assert_eq!(auth.issuers(), vec![idp.issuer.clone()]);
    assert_eq!(idp.discovery_hits.load(Ordering::SeqCst), 1);

    for key in [&ec, &rsa] {
        let token = key.sign(&idp.claims());
        let p = auth.authenticate(Some(&bearer(&token))).await.unwrap();
        assert_eq!(p.id, "alice");
        assert_eq!(p.auth, "jwt");
        assert_eq!(p.roles, vec!["developer", "offline_access"]);
        assert_eq!(p.attributes["email"], "alice@example.com");
        assert_eq!(p.attributes["iss"], idp.issuer.as_str());
        assert_eq!(p.attributes["client_id"], "claude-code");
        let attrs = serde_json::to_string(&p.attributes).unwrap();
        assert!(
            !attrs.contains(token.split('.').nth(2).unwrap()),
            "the token must not be kept"
        );
    }
    // A single audience string works too, and a token 30 s past `exp` is inside the leeway.
    let token = ec.sign(&with(
        with(idp.claims(), "aud", json!("steward")),
        "exp",
        json!(now() - 30),
    ));
    assert!(auth.authenticate(Some(&bearer(&token))).await.is_ok());
    // Known keys are served from the cache.
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn expired_not_yet_valid_wrong_audience_and_wrong_issuer_are_refused() {
    let key = TestKey::ec("k");
    let idp = Idp::start(&[&key]).await;
    let auth = idp.authenticator().await;

    let msg = refused(&auth, &key.sign(&with(idp.claims(), "exp", json!(now() - 120)))).await;
    assert!(msg.contains("expired"), "{msg}");
    let msg = refused(&auth, &key.sign(&with(idp.claims(), "nbf", json!(now() + 600)))).await;
    assert!(msg.contains("not valid yet"), "{msg}");
    let mut no_exp = idp.claims();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(refused(&auth, &key.sign(&no_exp)).await.contains("exp"));

    for aud in [json!("account"), json!(["account", "other"]), json!([])] {
        let msg = refused(&auth, &key.sign(&with(idp.claims(), "aud", aud))).await;
        assert!(msg.contains("audience"), "{msg}");
    }
    let mut no_aud = idp.claims();
    no_aud.as_object_mut().unwrap().remove("aud");
    refused(&auth, &key.sign(&no_aud)).await;

    for iss in [
        json!("https://evil.example/realms/test"),
        json!(format!("{}/", idp.issuer)),
        json!(null),
    ] {
        refused(&auth, &key.sign(&with(idp.claims(), "iss", iss))).await;
    }
    // A missing principal claim is refused rather than guessed.
    let mut anonymous = idp.claims();
    anonymous.as_object_mut().unwrap().remove("preferred_username");
    assert!(
        refused(&auth, &key.sign(&anonymous))
            .await
            .contains("preferred_username")
    );
}

#[tokio::test]
async fn unsigned_tampered_and_confused_tokens_are_refused() {
    let ec = TestKey::ec("ec-1");
    let rsa = TestKey::rsa("rsa-1");
    let idp = Idp::start(&[&ec, &rsa]).await;
    let auth = idp.authenticator().await;
    let claims = idp.claims();

    // alg none, in any spelling, with or without a trailing signature.
    for alg in ["none", "None", "NONE"] {
        let unsigned = format!(
            "{}.{}.",
            b64(json!({"alg": alg, "kid": "ec-1"}).to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        assert!(refused(&auth, &unsigned).await.contains("alg none"));
        let with_sig = format!("{unsigned}{}", ec.sign(&claims).rsplit('.').next().unwrap());
        refused(&auth, &with_sig).await;
    }

    // A flipped signature byte, and changed claims under the original signature.
    let good = rsa.sign(&claims);
    let (input, sig) = good.rsplit_once('.').unwrap();
    let mut sig_bytes = URL_SAFE_NO_PAD.decode(sig).unwrap();
    sig_bytes[100] ^= 1;
    assert!(
        refused(&auth, &format!("{input}.{}", b64(&sig_bytes)))
            .await
            .contains("signature")
    );
    let (header, _) = input.split_once('.').unwrap();
    let escalated = with(claims.clone(), "realm_access", json!({"roles": ["admin"]}));
    let forged = format!("{header}.{}.{sig}", b64(escalated.to_string().as_bytes()));
    assert!(refused(&auth, &forged).await.contains("signature"));

    // HS256 "signed" with the RSA public key (PEM, DER modulus) under the RSA key's kid.
    let jwk = rsa.jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    for secret in [rsa.public_pem().into_bytes(), n, jwk.to_string().into_bytes()] {
        for kid in [json!("rsa-1"), json!(null)] {
            let mut header = json!({"alg": "HS256", "typ": "JWT"});
            if !kid.is_null() {
                header["kid"] = kid;
            }
            let msg = refused(&auth, &hs256(&secret, &header, &claims)).await;
            assert!(msg.contains("HS256 are not accepted"), "{msg}");
        }
    }
    // Even with HS256 put in the allow-list by hand, the configuration refuses it.
    let cfg = AuthConfig {
        oidc: vec![OidcConfig {
            algorithms: Some(vec!["HS256".into()]),
            ..idp.oidc()
        }],
        ..AuthConfig::default()
    };
    assert!(matches!(
        Authenticator::new(&cfg, None).await,
        Err(AuthError::Config(_))
    ));

    // An ES256 header naming the RSA key, and an RS256 header naming the EC key.
    let header = json!({"alg": "ES256", "kid": "rsa-1"});
    assert!(
        refused(&auth, &ec.sign_with_header(&header, &claims))
            .await
            .contains("does not match")
    );
    let header = json!({"alg": "RS256", "kid": "ec-1"});
    assert!(
        refused(&auth, &rsa.sign_with_header(&header, &claims))
            .await
            .contains("does not match")
    );

    // Not a JWT at all, and a critical header extension.
    for junk in ["abc", "a.b", "a.b.c.d", "e30.e30.e30", "....", "not!base64.x.y"] {
        assert!(auth.authenticate(Some(&bearer(junk))).await.is_err(), "{junk}");
    }
    let crit = json!({"alg": "ES256", "kid": "ec-1", "crit": ["exp"]});
    refused(&auth, &ec.sign_with_header(&crit, &claims)).await;

    // Nothing of the above made the gateway refetch keys (all kids were known).
    assert_eq!(idp.hits(), 1);
}

#[tokio::test]
async fn unknown_kid_refetches_once_then_refuses() {
    let known = TestKey::ec("known");
    let rogue = TestKey::ec("rogue");
    let idp = Idp::start(&[&known]).await;
    let auth = idp.authenticator().await;
    assert_eq!(idp.hits(), 1);

    let msg = refused(&auth, &rogue.sign(&idp.claims())).await;
    assert!(msg.contains("key"), "{msg}");
    assert_eq!(idp.hits(), 2, "an unknown kid triggers one refetch");
    // Within the cooldown further unknown kids are refused from the cache.
    refused(&auth, &rogue.sign(&idp.claims())).await;
    let other = TestKey::ec("another");
    refused(&auth, &other.sign(&idp.claims())).await;
    assert_eq!(idp.hits(), 2);
    // A rogue key that reuses a published kid fails on the signature.
    let impostor = TestKey::ec("known");
    assert!(
        refused(&auth, &impostor.sign(&idp.claims()))
            .await
            .contains("signature")
    );
    // Known keys still work.
    assert!(
        auth.authenticate(Some(&bearer(&known.sign(&idp.claims()))))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_key_rotated_in_after_start_is_accepted_after_refetch() {
    let old = TestKey::ec("2026-10");
    let new = TestKey::rsa("2026-11");
    let idp = Idp::start(&[&old]).await;
    let auth = idp.authenticator().await;
    assert_eq!(idp.hits(), 1);

    idp.publish(&[&old, &new]);
    let p = auth
        .authenticate(Some(&bearer(&new.sign(&idp.claims()))))
        .await
        .unwrap();
    assert_eq!(p.id, "alice");
    assert_eq!(idp.hits(), 2);
    // Both keys are now cached.
    auth.authenticate(Some(&bearer(&old.sign(&idp.claims()))))
        .await
        .unwrap();
    auth.authenticate(Some(&bearer(&new.sign(&idp.claims()))))
        .await
        .unwrap();
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn configured_jwks_url_skips_discovery_and_kidless_tokens_need_one_key() {
    let key = TestKey::ec("only");
    let idp = Idp::start(&[&key]).await;
    let cfg = OidcConfig {
        jwks_url: Some(format!("{}/certs", idp.issuer)),
        ..idp.oidc()
    };
    let auth = Authenticator::new(
        &AuthConfig {
            oidc: vec![cfg],
            ..AuthConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    assert_eq!(idp.discovery_hits.load(Ordering::SeqCst), 0);
    assert_eq!(idp.hits(), 1);

    let kidless = key.sign_with_header(&json!({"alg": "ES256"}), &idp.claims());
    assert_eq!(auth.authenticate(Some(&bearer(&kidless))).await.unwrap().id, "alice");
}

#[tokio::test]
async fn several_issuers_each_with_their_own_keys_and_claims() {
    let key_a = TestKey::ec("a");
    let key_b = TestKey::ec("b");
    let idp_a = Idp::start(&[&key_a]).await;
    let idp_b = Idp::start(&[&key_b]).await;
    let cfg_b = OidcConfig {
        principal_claim: "sub".into(),
        roles_claim: vec!["groups".into()],
        ..idp_b.oidc()
    };
    let auth = Authenticator::new(
        &AuthConfig {
            oidc: vec![idp_a.oidc(), cfg_b],
            ..AuthConfig::default()
        },
        None,
    )
    .await
    .unwrap();

    let p = auth
        .authenticate(Some(&bearer(&key_b.sign(&with(
            idp_b.claims(),
            "groups",
            json!(["ops"]),
        )))))
        .await
        .unwrap();
    assert_eq!((p.id.as_str(), p.roles.clone()), ("8f1c-uuid", vec!["ops".to_string()]));
    // Issuer A's name on a token signed with issuer B's key.
    let crossed = key_b.sign_with_header(&json!({"alg": "ES256", "kid": "a"}), &idp_a.claims());
    assert!(refused(&auth, &crossed).await.contains("signature"));
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_a_pass() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let issuer = format!("http://127.0.0.1:{port}/realms/gone");
    let cfg = OidcConfig {
        issuer: issuer.clone(),
        audience: vec!["steward".into()],
        jwks_url: None,
        roles_claim: vec!["roles".into()],
        principal_claim: "sub".into(),
        algorithms: None,
        allow_insecure_http: false,
    };
    // Start-up survives an identity provider that is down.
    let auth = Authenticator::new(
        &AuthConfig {
            oidc: vec![cfg],
            ..AuthConfig::default()
        },
        None,
    )
    .await
    .unwrap();
    let key = TestKey::ec("k");
    let token = key.sign(&json!({"iss": issuer, "aud": "steward", "sub": "x", "exp": now() + 60}));
    let err = auth.authenticate(Some(&bearer(&token))).await.unwrap_err();
    assert!(matches!(err, AuthError::Unavailable(_)), "{err:?}");
    assert_eq!(err.status(), 503);
}

#[tokio::test]
async fn oversized_and_malformed_headers_are_refused_before_parsing() {
    let key = TestKey::ec("k");
    let idp = Idp::start(&[&key]).await;
    let auth = idp.authenticator().await;
    let mut claims = idp.claims();
    claims["padding"] = json!("x".repeat(20_000));
    let err = auth.authenticate(Some(&bearer(&key.sign(&claims)))).await.unwrap_err();
    assert!(matches!(err, AuthError::Malformed(_)), "{err:?}");
    let token = key.sign(&idp.claims());
    for header in [
        token.clone(),
        format!("Basic {token}"),
        format!("Bearer {token} extra"),
        "Bearer".into(),
    ] {
        let err = auth.authenticate(Some(&header)).await.unwrap_err();
        assert!(matches!(err, AuthError::Malformed(_)), "{header}: {err:?}");
    }
    assert_eq!(auth.authenticate(None).await.unwrap_err(), AuthError::Missing);
    // API keys are not accepted when only OIDC is configured.
    let key_like = format!("Bearer stw_{}_{}", "a".repeat(12), "b".repeat(64));
    assert!(matches!(
        auth.authenticate(Some(&key_like)).await,
        Err(AuthError::Invalid(_))
    ));
}
