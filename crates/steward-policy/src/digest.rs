//! Canonical JSON and its SHA-256: the identity of a call's arguments.
//!
//! Canonical form follows RFC 8785 (JCS) for what MCP arguments contain in practice: object keys
//! sorted by UTF-16 code units, no insignificant white space, strings escaped minimally.
//! Numbers are written as `serde_json` writes them (integers exactly).

use sha2::{Digest, Sha256};

/// The canonical JSON text of `value`.
pub fn canonical_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write(value, &mut out);
    out
}

/// `sha256:` + hex SHA-256 of the canonical JSON of `value`.
pub fn args_digest(value: &serde_json::Value) -> String {
    let digest = Sha256::digest(canonical_json(value).as_bytes());
    format!("sha256:{}", hex::encode(digest))
}

fn write(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                write(v, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_and_whitespace_do_not_matter() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b": 1, "a": [1, {"y": 2, "x": "é"}]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"a":[1,{"x":"é","y":2}],"b":1}"#).unwrap();
        assert_eq!(canonical_json(&a), r#"{"a":[1,{"x":"é","y":2}],"b":1}"#);
        assert_eq!(args_digest(&a), args_digest(&b));
        let c: serde_json::Value = serde_json::from_str(r#"{"a":[1,{"x":"é","y":3}],"b":1}"#).unwrap();
        assert_ne!(args_digest(&a), args_digest(&c));
    }
}
