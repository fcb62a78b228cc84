//! API keys through the authenticator, on a real SQLite file.

use steward_gateway::auth::{AuthConfig, AuthError, Authenticator};
use steward_store::{KeyStore, NewKey};

async fn setup() -> (tempfile::TempDir, KeyStore, Authenticator) {
    let dir = tempfile::tempdir().unwrap();
    let store = KeyStore::open_sqlite(&dir.path().join("steward-data/steward.db")).unwrap();
    let auth = Authenticator::new(
        &AuthConfig {
            api_keys: true,
            ..AuthConfig::default()
        },
        Some(store.clone()),
    )
    .await
    .unwrap();
    (dir, store, auth)
}

fn new_key(principal: &str, roles: &[&str]) -> NewKey {
    NewKey {
        principal: principal.into(),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..NewKey::default()
    }
}

async fn refusal(auth: &Authenticator, header: &str) -> AuthError {
    let err = auth.authenticate(Some(header)).await.unwrap_err();
    assert_eq!(err.status(), 401, "{err:?}");
    if header.len() > 40 {
        let tail = &header[header.len() - 32..];
        assert!(
            !err.to_string().contains(tail),
            "the error echoes the credential: {err}"
        );
    }
    err
}

#[tokio::test]
async fn a_created_key_authenticates_as_its_principal() {
    let (_dir, store, auth) = setup().await;
    let created = store
        .create(&NewKey {
            name: Some("laptop".into()),
            ..new_key("alice", &["developer", "approver"])
        })
        .unwrap();
    let p = auth
        .authenticate(Some(&format!("Bearer {}", created.key)))
        .await
        .unwrap();
    assert_eq!(p.id, "alice");
    assert_eq!(p.auth, "api-key");
    assert_eq!(p.roles, vec!["developer", "approver"]);
    assert_eq!(p.attributes["key_id"], created.record.id.as_str());
    assert_eq!(p.attributes["key_name"], "laptop");
    assert!(!serde_json::to_string(&p.attributes).unwrap().contains(&created.key));
    // The scheme is case-insensitive.
    assert!(
        auth.authenticate(Some(&format!("bearer {}", created.key)))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn wrong_secret_unknown_revoked_expired_and_malformed_keys_are_refused() {
    let (dir, store, auth) = setup().await;
    let good = store.create(&new_key("alice", &["developer"])).unwrap();
    let (id, secret) = steward_store::split_key(&good.key).unwrap();

    let wrong = format!("stw_{id}_{}", secret.chars().rev().collect::<String>());
    assert_eq!(
        refusal(&auth, &format!("Bearer {wrong}")).await,
        AuthError::Invalid("unknown API key".into())
    );
    let unknown = format!("stw_{}_{secret}", "0".repeat(12));
    assert_eq!(
        refusal(&auth, &format!("Bearer {unknown}")).await,
        AuthError::Invalid("unknown API key".into())
    );
    for malformed in [
        format!("{}x", good.key),
        good.key[..good.key.len() - 1].to_string(),
        good.key.to_uppercase().replace("STW_", "stw_"),
        "stw_".into(),
    ] {
        let err = refusal(&auth, &format!("Bearer {malformed}")).await;
        assert_eq!(err, AuthError::Invalid("malformed API key".into()), "{malformed}");
    }

    let doomed = store.create(&new_key("bob", &[])).unwrap();
    assert!(auth.authenticate(Some(&format!("Bearer {}", doomed.key))).await.is_ok());
    store.revoke(&doomed.record.id).unwrap();
    let err = refusal(&auth, &format!("Bearer {}", doomed.key)).await;
    assert!(err.to_string().contains("revoked"), "{err}");

    let old = store.create(&new_key("carol", &[])).unwrap();
    // Let the key's time pass, through a second connection to the same file.
    let conn = rusqlite::Connection::open(dir.path().join("steward-data/steward.db")).unwrap();
    conn.execute(
        "UPDATE api_keys SET expires_at = '2020-01-01T00:00:00.000Z' WHERE id = ?1",
        [&old.record.id],
    )
    .unwrap();
    let err = refusal(&auth, &format!("Bearer {}", old.key)).await;
    assert!(err.to_string().contains("expired"), "{err}");

    // The good key is unaffected, and a JWT-looking token is not accepted without OIDC.
    assert!(auth.authenticate(Some(&format!("Bearer {}", good.key))).await.is_ok());
    refusal(&auth, "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln").await;
    assert_eq!(auth.authenticate(None).await.unwrap_err(), AuthError::Missing);
}

#[tokio::test]
async fn a_broken_store_is_unavailable_not_a_pass() {
    let (dir, store, auth) = setup().await;
    let key = store.create(&new_key("alice", &[])).unwrap();
    drop(store);
    // Another process drops the table under us: the check fails closed with 503.
    let path = dir.path().join("steward-data/steward.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("DROP TABLE api_keys")
        .unwrap();
    let err = auth
        .authenticate(Some(&format!("Bearer {}", key.key)))
        .await
        .unwrap_err();
    assert!(matches!(err, AuthError::Unavailable(_)), "{err:?}");
    assert_eq!(err.status(), 503);
}
