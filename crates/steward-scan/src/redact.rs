//! Redaction of obvious secrets from arguments before they are written to the audit log.

use serde_json::Value;

const MAX_DEPTH: usize = 32;

/// Keys whose values are secrets whatever they look like.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['-', '_'], "");
    [
        "password",
        "passwd",
        "pwd",
        "secret",
        "token",
        "apikey",
        "accesskey",
        "privatekey",
        "authorization",
        "auth",
        "credential",
        "credentials",
        "cookie",
        "sessionid",
        "clientsecret",
    ]
    .iter()
    .any(|s| k == *s || k.ends_with(s))
}

/// What kind of secret a string value looks like, if any.
pub fn secret_kind(s: &str) -> Option<&'static str> {
    let t = s.trim();
    let starts = |p: &str| t.starts_with(p);
    if t.contains("-----BEGIN") && t.contains("PRIVATE KEY") {
        return Some("private_key");
    }
    if (starts("AKIA") || starts("ASIA"))
        && t.len() >= 20
        && t.as_bytes()[..20]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    {
        return Some("aws_access_key");
    }
    if ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"]
        .iter()
        .any(|p| starts(p))
        && t.len() >= 30
    {
        return Some("github_token");
    }
    if ["xoxb-", "xoxp-", "xoxa-", "xoxs-"].iter().any(|p| starts(p)) {
        return Some("slack_token");
    }
    if (starts("sk-") || starts("sk_live_") || starts("rk_live_")) && t.len() >= 24 && !t.contains(' ') {
        return Some("api_key");
    }
    if starts("glpat-") && t.len() >= 24 {
        return Some("gitlab_token");
    }
    if starts("eyJ") && t.split('.').count() == 3 && t.len() > 30 && !t.contains(' ') {
        return Some("jwt");
    }
    if let Some(rest) = t.split_once("://").map(|(_, r)| r)
        && let Some((userinfo, _)) = rest.split_once('@')
        && userinfo.contains(':')
        && !userinfo.contains('/')
    {
        return Some("url_password");
    }
    None
}

/// A copy of `args` with secret-named keys and secret-looking strings replaced by
/// `[REDACTED:kind]`. The original is left untouched (its digest is computed from it).
pub fn redact_args(args: &Value) -> Value {
    redact(args, 0)
}

fn redact(v: &Value, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::String("[TRUNCATED]".into());
    }
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let value = if secret_key(k)
                        && !matches!(v, Value::Null | Value::Bool(_))
                        && !v.is_object()
                        && !v.is_array()
                    {
                        Value::String("[REDACTED:secret]".into())
                    } else {
                        redact(v, depth + 1)
                    };
                    (k.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|x| redact(x, depth + 1)).collect()),
        Value::String(s) => match secret_kind(s) {
            Some(kind) => Value::String(format!("[REDACTED:{kind}]")),
            None => Value::String(redact_inline(s)),
        },
        other => other.clone(),
    }
}

/// Redacts secret-looking words inside a longer string (a command line with a token in it).
fn redact_inline(s: &str) -> String {
    if !s.contains(' ') && !s.contains('=') {
        return s.to_string();
    }
    let mut changed = false;
    let out: Vec<String> = s
        .split(' ')
        .map(|word| {
            let value = word.split_once('=').map(|(_, v)| v).unwrap_or(word);
            let value = value.trim_matches(|c| c == '"' || c == '\'');
            match secret_kind(value) {
                Some(kind) => {
                    changed = true;
                    word.replace(value, &format!("[REDACTED:{kind}]"))
                }
                None => word.to_string(),
            }
        })
        .collect();
    if changed { out.join(" ") } else { s.to_string() }
}

/// Redacts secret-looking words in free text (reasons, detector details) before it is stored.
pub fn redact_text(s: &str) -> String {
    match secret_kind(s) {
        Some(kind) => format!("[REDACTED:{kind}]"),
        None => redact_inline(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted() {
        let args = json!({
            "password": "hunter2",
            "query": "select 1",
            "env": {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE"},
            "cmd": "curl -H token=ghp_abcdefghijklmnopqrstuvwxyz0123456789 https://x",
            "url": "postgres://app:s3cret@db:5432/app",
        });
        let r = redact_args(&args);
        assert_eq!(r["password"], "[REDACTED:secret]");
        assert_eq!(r["query"], "select 1");
        assert_eq!(r["env"]["AWS_ACCESS_KEY_ID"], "[REDACTED:aws_access_key]");
        assert_eq!(r["cmd"], "curl -H token=[REDACTED:github_token] https://x");
        assert_eq!(r["url"], "[REDACTED:url_password]");
        let text = r.to_string();
        assert!(!text.contains("hunter2") && !text.contains("s3cret") && !text.contains("AKIA"));
    }
}
