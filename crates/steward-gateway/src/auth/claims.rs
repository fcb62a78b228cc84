//! Verified JWT claims → a [`Principal`].

use serde_json::{Map, Value};
use steward_policy::Principal;

use super::AuthError;

const MAX_ROLES: usize = 256;
const MAX_ROLE_LEN: usize = 256;
const MAX_ID_LEN: usize = 512;

/// Claims copied into `principal.attributes` when present (the token itself never is).
const ATTRIBUTE_CLAIMS: &[&str] = &["iss", "sub", "email", "name", "preferred_username"];

/// Looks a claim up by a dotted path (`realm_access.roles`). A top-level claim whose name
/// itself contains dots (`https://example.com/roles`, as Auth0 names them) wins.
pub(crate) fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for part in parts {
        cur = cur.as_object()?.get(part)?;
    }
    Some(cur)
}

/// The roles under every path: lists of strings, or one space-separated string (`scope`).
pub(crate) fn roles(claims: &Map<String, Value>, paths: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |r: &str| {
        if !r.is_empty() && r.len() <= MAX_ROLE_LEN && out.len() < MAX_ROLES && !out.iter().any(|o| o == r) {
            out.push(r.to_string());
        }
    };
    for path in paths {
        match lookup(claims, path) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut push),
            Some(Value::String(s)) => s.split_whitespace().for_each(&mut push),
            _ => {}
        }
    }
    out
}

/// The principal named by `principal_claim`, with roles and a few identifying attributes.
pub(crate) fn principal(
    claims: &Map<String, Value>,
    principal_claim: &str,
    role_paths: &[String],
) -> Result<Principal, AuthError> {
    let id = lookup(claims, principal_claim)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty() && s.len() <= MAX_ID_LEN && !s.chars().any(char::is_control))
        .ok_or_else(|| AuthError::invalid(format!("the token has no usable `{principal_claim}` claim")))?;
    let mut p = Principal::new(id, "jwt");
    p.roles = roles(claims, role_paths);
    for name in ATTRIBUTE_CLAIMS {
        if let Some(Value::String(v)) = claims.get(*name) {
            p.attributes.insert((*name).to_string(), Value::String(v.clone()));
        }
    }
    // The OAuth client the token was issued to: `azp` in OIDC, `client_id` in RFC 9068.
    if let Some(Value::String(c)) = claims.get("azp").or_else(|| claims.get("client_id")) {
        p.attributes.insert("client_id".into(), Value::String(c.clone()));
    }
    if let Some(Value::String(scope)) = claims.get("scope") {
        let scopes: Vec<Value> = scope.split_whitespace().map(|s| Value::String(s.into())).collect();
        p.attributes.insert("scopes".into(), Value::Array(scopes));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn keycloak_realm_and_client_roles() {
        let c = claims(json!({
            "sub": "f3c2", "preferred_username": "alice", "iss": "https://kc/realms/acme",
            "realm_access": {"roles": ["dev", "offline_access", "dev"]},
            "resource_access": {"steward": {"roles": ["approver"]}},
            "groups": ["/ops"], "azp": "cli", "scope": "openid email", "email": "a@x",
        }));
        let p = principal(
            &c,
            "preferred_username",
            &["realm_access.roles".into(), "resource_access.steward.roles".into()],
        )
        .unwrap();
        assert_eq!(p.id, "alice");
        assert_eq!(p.auth, "jwt");
        assert_eq!(p.roles, vec!["dev", "offline_access", "approver"]);
        assert_eq!(p.attributes["client_id"], "cli");
        assert_eq!(p.attributes["email"], "a@x");
        assert_eq!(p.attributes["sub"], "f3c2");
        assert_eq!(p.attributes["scopes"], json!(["openid", "email"]));
        assert_eq!(roles(&c, &["groups".into()]), vec!["/ops"]);
        assert_eq!(roles(&c, &["scope".into()]), vec!["openid", "email"]);
        assert!(roles(&c, &["realm_access".into(), "missing.path".into()]).is_empty());
    }

    #[test]
    fn dotted_top_level_claim_names() {
        let c = claims(json!({"https://acme.example/roles": ["a"], "sub": "x"}));
        assert_eq!(roles(&c, &["https://acme.example/roles".into()]), vec!["a"]);
    }

    #[test]
    fn principal_claim_must_be_a_string() {
        let c = claims(json!({"sub": 42, "name": ""}));
        assert!(principal(&c, "sub", &[]).is_err());
        assert!(principal(&c, "name", &[]).is_err());
        assert!(principal(&c, "missing", &[]).is_err());
    }
}
