//! Protocol eras: the session-based revisions up to 2025-11-25, and the stateless 2026-07-28.

use serde_json::value::RawValue;

/// `_meta` key carrying the protocol version on every 2026-07-28 request.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key carrying the client's identity on 2026-07-28 requests.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";

/// Which family of protocol revisions a message belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// 2025-11-25 and earlier: `initialize`, sessions, server-to-client requests.
    Legacy,
    /// 2026-07-28 and later: stateless requests with `_meta`, `server/discover`, `resultType`.
    Stateless,
}

impl Era {
    /// The era of a protocol version string (`YYYY-MM-DD`).
    pub fn of_version(version: &str) -> Era {
        if version >= "2026-07-28" {
            Era::Stateless
        } else {
            Era::Legacy
        }
    }

    /// The era a request's params declare, if they declare one (2026-07-28 requests do, in `_meta`).
    pub fn of_params(params: Option<&RawValue>) -> Option<Era> {
        let meta = request_meta(params)?;
        meta.get(META_PROTOCOL_VERSION)?.as_str().map(Era::of_version)
    }
}

/// The `_meta` object of request params, if any.
pub fn request_meta(params: Option<&RawValue>) -> Option<serde_json::Map<String, serde_json::Value>> {
    #[derive(serde::Deserialize)]
    struct WithMeta {
        #[serde(rename = "_meta", default)]
        meta: Option<serde_json::Map<String, serde_json::Value>>,
    }
    serde_json::from_str::<WithMeta>(params?.get()).ok()?.meta
}

/// Client name and version from `initialize` params or a 2026-07-28 request's `_meta`.
pub fn client_info(params: Option<&RawValue>) -> Option<(String, Option<String>)> {
    let params: serde_json::Value = serde_json::from_str(params?.get()).ok()?;
    let info = params
        .get("clientInfo")
        .or_else(|| params.get("_meta").and_then(|m| m.get(META_CLIENT_INFO)))?;
    let name = info.get("name")?.as_str()?.to_string();
    let version = info.get("version").and_then(|v| v.as_str()).map(str::to_string);
    Some((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_eras() {
        assert_eq!(Era::of_version("2025-11-25"), Era::Legacy);
        assert_eq!(Era::of_version("2026-07-28"), Era::Stateless);
        let p = RawValue::from_string(r#"{"name":"x","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"}}}"#.into()).unwrap();
        assert_eq!(Era::of_params(Some(&p)), Some(Era::Stateless));
        assert_eq!(client_info(Some(&p)), Some(("c".into(), Some("1".into()))));
        let p = RawValue::from_string(r#"{"name":"x"}"#.into()).unwrap();
        assert_eq!(Era::of_params(Some(&p)), None);
    }
}
