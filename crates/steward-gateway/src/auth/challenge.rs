//! What a 401 says: the `WWW-Authenticate` challenge and the RFC 9728 protected resource
//! metadata it points at, so an MCP client can find the authorization server by itself.

use super::AuthError;

/// Where RFC 9728 puts the metadata document.
pub const METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// `Bearer resource_metadata="…"`, plus `error` and `error_description` when the credential
/// was refused (RFC 6750 §3). Quotes and control characters are dropped, never escaped.
pub fn www_authenticate(resource_metadata_url: &str, error: Option<&AuthError>) -> String {
    let mut out = format!("Bearer resource_metadata=\"{}\"", quotable(resource_metadata_url));
    if let Some(e) = error
        && let Some(code) = e.error_code()
    {
        out.push_str(&format!(
            ", error=\"{code}\", error_description=\"{}\"",
            quotable(&e.to_string())
        ));
    }
    out
}

/// The RFC 9728 document for `resource` (the URL clients call, e.g. `https://gw/mcp/github`).
/// `authorization_servers` is left out when no OIDC issuer is configured (API keys only).
pub fn protected_resource_metadata(resource: &str, issuers: &[String], scopes: &[String]) -> serde_json::Value {
    let mut doc = serde_json::json!({
        "resource": resource,
        "bearer_methods_supported": ["header"],
        "resource_name": "Steward MCP gateway",
    });
    if !issuers.is_empty() {
        doc["authorization_servers"] = serde_json::json!(issuers);
    }
    if !scopes.is_empty() {
        doc["scopes_supported"] = serde_json::json!(scopes);
    }
    doc
}

/// The metadata URL for a resource URL (RFC 9728 §3.1: the well-known segment goes between the
/// host and the path): `https://gw/mcp/github` → `https://gw/.well-known/oauth-protected-resource/mcp/github`.
pub fn resource_metadata_url(resource: &str) -> Option<String> {
    let url = reqwest::Url::parse(resource).ok()?;
    let origin = url.origin().ascii_serialization();
    if origin == "null" {
        return None;
    }
    let path = url.path().trim_end_matches('/');
    Some(format!("{origin}{METADATA_PATH}{path}"))
}

/// RFC 6750 quoted-string characters: printable ASCII without `"` and `\`.
fn quotable(s: &str) -> String {
    s.chars()
        .filter(|c| matches!(c, ' '..='~') && *c != '"' && *c != '\\')
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenge_with_and_without_error() {
        let url = "https://gw.example/.well-known/oauth-protected-resource/mcp/github";
        assert_eq!(
            www_authenticate(url, None),
            format!("Bearer resource_metadata=\"{url}\"")
        );
        assert_eq!(
            www_authenticate(url, Some(&AuthError::Missing)),
            format!("Bearer resource_metadata=\"{url}\"")
        );
        let e = AuthError::Invalid("token \"expired\"\r\nX-Evil: 1".into());
        assert_eq!(
            www_authenticate(url, Some(&e)),
            format!(
                "Bearer resource_metadata=\"{url}\", error=\"invalid_token\", error_description=\"token expiredX-Evil: 1\""
            )
        );
        assert!(www_authenticate(url, Some(&AuthError::Malformed("x".into()))).contains("error=\"invalid_request\""));
    }

    #[test]
    fn metadata_document() {
        let doc = protected_resource_metadata("https://gw/mcp", &["https://kc/realms/acme".into()], &[]);
        assert_eq!(doc["resource"], "https://gw/mcp");
        assert_eq!(doc["authorization_servers"][0], "https://kc/realms/acme");
        assert_eq!(doc["bearer_methods_supported"][0], "header");
        assert!(doc.get("scopes_supported").is_none());
        let doc = protected_resource_metadata("https://gw/mcp", &[], &["mcp:tools".into()]);
        assert!(doc.get("authorization_servers").is_none());
        assert_eq!(doc["scopes_supported"][0], "mcp:tools");
    }

    #[test]
    fn metadata_url() {
        assert_eq!(
            resource_metadata_url("https://gw.example/mcp/github").as_deref(),
            Some("https://gw.example/.well-known/oauth-protected-resource/mcp/github")
        );
        assert_eq!(
            resource_metadata_url("http://127.0.0.1:8787/").as_deref(),
            Some("http://127.0.0.1:8787/.well-known/oauth-protected-resource")
        );
        assert_eq!(resource_metadata_url("not a url"), None);
    }
}
