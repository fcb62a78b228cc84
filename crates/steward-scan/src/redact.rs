//! Redaction of secrets from arguments (and reasons, details) before they are written to the
//! audit log, on the same secret rules as output protection.

use serde_json::Value;

use super::decode;
use super::secrets::SecretRules;

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

/// What kind of secret a string holds, if any: the output scanner's rules
/// ([`crate::scan_text`]'s secrets), so what output protection withholds is never written in
/// clear into an audit row.
pub fn secret_kind(s: &str) -> Option<&'static str> {
    let (text, _) = super::clip(s, super::MAX_SCAN_BYTES);
    if let Some((kind, _)) = SecretRules::get().find(text.as_bytes()).0.first() {
        return Some(kind);
    }
    // Text hidden in base64 or hex.
    decode::runs(text)
        .into_iter()
        .find_map(|run| SecretRules::get().find(run.text.as_bytes()).0.first().map(|(k, _)| *k))
}

/// A copy of `args` with secret-named keys' values and every secret inside a string or an
/// object key replaced by `[REDACTED:kind]`. The original is left untouched (its digest is
/// computed from it). Nesting deeper than the limit is replaced by `[TRUNCATED]`, never
/// copied unread.
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
                    (redact_text(k), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|x| redact(x, depth + 1)).collect()),
        Value::String(s) => Value::String(redact_text(s)),
        other => other.clone(),
    }
}

/// `s` with every secret the output rules find replaced by `[REDACTED:kind]`, base64 and hex
/// runs that hide one replaced whole; used for reasons and detector details before they are
/// stored. Text beyond the scan limit is cut and marked, not stored unread.
pub fn redact_text(s: &str) -> String {
    let (text, clipped) = super::clip(s, super::MAX_SCAN_BYTES);
    let rules = SecretRules::get();
    let mut cuts: Vec<(std::ops::Range<usize>, &'static str)> =
        rules.find(text.as_bytes()).0.into_iter().map(|(k, r)| (r, k)).collect();
    for run in decode::runs(text) {
        if cuts
            .iter()
            .any(|(r, _)| r.start < run.range.end && run.range.start < r.end)
        {
            continue;
        }
        if let Some((kind, _)) = rules.find(run.text.as_bytes()).0.first() {
            cuts.push((run.range.clone(), kind));
        }
    }
    if cuts.is_empty() && !clipped {
        return s.to_string();
    }
    cuts.sort_by_key(|(r, _)| r.start);
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (r, kind) in cuts {
        if r.start < last || !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end) {
            continue;
        }
        out.push_str(&text[last..r.start]);
        out.push_str("[REDACTED:");
        out.push_str(kind);
        out.push(']');
        last = r.end;
    }
    out.push_str(&text[last..]);
    if clipped {
        out.push_str("[TRUNCATED]");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted() {
        let aws = format!("AKIA{}", "Z7QK4M2XW9PL3RTB");
        let args = json!({
            "password": "hunter2",
            "query": "select 1",
            "env": {"AWS_ACCESS_KEY_ID": aws},
            "cmd": "curl -H token=ghp_abcdefghijklmnopqrstuvwxyz0123456789 https://x",
            "url": "postgres://app:s3cret@db:5432/app",
        });
        let r = redact_args(&args);
        assert_eq!(r["password"], "[REDACTED:secret]");
        assert_eq!(r["query"], "select 1");
        assert_eq!(r["env"]["AWS_ACCESS_KEY_ID"], "[REDACTED:aws_access_key]");
        assert_eq!(r["cmd"], "curl -H token=[REDACTED:github_token] https://x");
        assert_eq!(r["url"], "postgres://app:[REDACTED:database_url]@db:5432/app");
        let text = r.to_string();
        assert!(!text.contains("hunter2") && !text.contains("s3cret") && !text.contains("AKIA"));
    }

    #[test]
    fn every_kind_output_protection_redacts_is_redacted_in_arguments() {
        // The prefixes the old argument redactor did not know, and secrets without a prefix.
        let cases = [
            format!("ABIA{}", "Z7QK4M2XW9PL3RTB"),
            format!("ACCA{}", "Z7QK4M2XW9PL3RTB"),
            format!("sk-ant-api03-{}", "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kM9nP2rS5uV8xY1"),
            format!("stw_{}_{}", "0123456789ab", "0123456789abcdef".repeat(4)),
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=Zk8Rw2Lq9Vt4Ny6Hb1Mc8Xp3Fd5Js0Ga2Ke7Ui4Oz1Yq3Wv6Br9Tn2Lm5Px8Cs0Dh4Fj7Gk1Hl3Jq6Mw9Nz2Rb5Vc8Xd==".to_string(),
            "Authorization: Basic YWRtaW46czNjcjN0UFc=".to_string(),
            "db_password: Wint3r!Sun".to_string(),
        ];
        for c in cases {
            let matches = crate::scan_text(&c);
            assert!(!matches.is_empty(), "output scanning misses {c}");
            let redacted = redact_args(&json!({"arg": c.clone()}));
            let out = redacted["arg"].as_str().unwrap();
            for m in matches {
                assert!(!out.contains(&c[m.range.clone()]), "{c} -> {out}");
            }
        }
    }

    #[test]
    fn keys_encoded_secrets_and_long_text_are_handled() {
        let gh = format!("ghp_{}", "9f8e7d6c5b4a3210ZYXWVUTSRQPONMLKJIHG");
        let r = redact_args(&json!({gh.clone(): 1}));
        assert!(!r.to_string().contains(&gh), "{r}");
        let hidden = hex::encode(format!("token {gh}"));
        assert_eq!(redact_text(&format!("x {hidden} y")), "x [REDACTED:github_token] y");
        let long = format!("{}{gh}", "a ".repeat(crate::MAX_SCAN_BYTES));
        let out = redact_text(&long);
        assert!(!out.contains(&gh) && out.ends_with("[TRUNCATED]"));
    }
}
