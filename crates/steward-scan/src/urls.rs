//! URLs in tool definitions that point somewhere a description has no business sending the
//! model: script and data URLs, raw IP addresses, link shorteners, request-capture services,
//! and query strings with a slot for data to be filled in.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

use regex::Regex;

use super::Severity;

/// One suspicious URL: its kind, severity and a message that does not quote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UrlFinding {
    pub kind: &'static str,
    pub severity: Severity,
    pub message: &'static str,
}

const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "is.gd",
    "ow.ly",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "t.ly",
    "bl.ink",
    "short.io",
    "v.gd",
    "s.id",
    "lnkd.in",
    "tr.im",
    "shorte.st",
    "adf.ly",
];

/// Services whose purpose is to capture requests (or tunnel them to a laptop).
const CAPTURE_SERVICES: &[&str] = &[
    "webhook.site",
    "requestbin.com",
    "requestbin.net",
    "pipedream.net",
    "m.pipedream.net",
    "ngrok.io",
    "ngrok-free.app",
    "ngrok.app",
    "burpcollaborator.net",
    "oastify.com",
    "interact.sh",
    "interactsh.com",
    "oast.fun",
    "oast.me",
    "oast.pro",
    "oast.live",
    "oast.site",
    "oast.online",
    "hookbin.com",
    "beeceptor.com",
    "requestcatcher.com",
    "postb.in",
    "canarytokens.com",
    "dnslog.cn",
    "trycloudflare.com",
    "serveo.net",
    "localtunnel.me",
    "loca.lt",
];

/// Query parameter names that ask for something to be carried out.
const DATA_PARAMS: &[&str] = &[
    "data",
    "secret",
    "secrets",
    "token",
    "key",
    "apikey",
    "api_key",
    "content",
    "contents",
    "payload",
    "file",
    "env",
    "ssh",
    "password",
    "passwd",
    "creds",
    "credentials",
    "cookie",
    "session",
    "exfil",
    "leak",
    "dump",
    "conversation",
    "history",
    "prompt",
    "context",
    "chat",
];

fn url_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"(?ix)
              \b(?:https?|ftp|wss?)://[^\s<>"'`\])}]+
            | \b(?:javascript|vbscript):[^\s<>"'`]+
            | \bdata:[a-z]+/[a-z0-9.+-]+[;,][^\s<>"'`]*"#,
        )
        .expect("the URL pattern is valid")
    })
}

/// Every suspicious URL in `text` (already clipped to the scan limit).
pub(crate) fn scan(text: &str) -> Vec<UrlFinding> {
    let mut out = Vec::new();
    for m in url_regex().find_iter(text) {
        if let Some(f) = classify(m.as_str()) {
            out.push(f);
        }
    }
    out
}

fn classify(url: &str) -> Option<UrlFinding> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("javascript:") || lower.starts_with("vbscript:") {
        return Some(UrlFinding {
            kind: "suspicious_url",
            severity: Severity::High,
            message: "a script URL (javascript:/vbscript:)",
        });
    }
    if let Some(rest) = lower.strip_prefix("data:") {
        let active = [
            "text/html",
            "image/svg",
            "application/javascript",
            "text/javascript",
            "application/x-javascript",
        ]
        .iter()
        .any(|t| rest.starts_with(t));
        return Some(if active {
            UrlFinding {
                kind: "suspicious_url",
                severity: Severity::High,
                message: "a data: URL carrying HTML or script",
            }
        } else {
            UrlFinding {
                kind: "suspicious_url",
                severity: Severity::Medium,
                message: "an inline data: URL",
            }
        });
    }
    let after_scheme = lower.split_once("://").map(|(_, r)| r)?;
    let authority = after_scheme.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    let has_userinfo = authority.contains('@');
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    let host = host.trim_end_matches('.');
    let query = after_scheme
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(q));

    if CAPTURE_SERVICES
        .iter()
        .any(|s| host == *s || host.ends_with(&format!(".{s}")))
    {
        return Some(UrlFinding {
            kind: "exfiltration_url",
            severity: Severity::High,
            message: "a URL on a request-capture or tunnelling service",
        });
    }
    if let Some(q) = query
        && query_has_slot(q)
    {
        return Some(UrlFinding {
            kind: "exfiltration_url",
            severity: Severity::High,
            message: "a URL whose query string has a placeholder for data to be filled in",
        });
    }
    if let Some(ip) = parse_host_ip(host) {
        let local = match ip {
            IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified(),
            IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified(),
        };
        return Some(if local {
            UrlFinding {
                kind: "suspicious_url",
                severity: Severity::Low,
                message: "a URL with a loopback IP address",
            }
        } else {
            UrlFinding {
                kind: "suspicious_url",
                severity: Severity::Medium,
                message: "a URL with a raw IP address as its host",
            }
        });
    }
    if SHORTENERS.contains(&host) {
        return Some(UrlFinding {
            kind: "suspicious_url",
            severity: Severity::Medium,
            message: "a link-shortener URL that hides its target",
        });
    }
    if host.split('.').any(|label| label.starts_with("xn--")) || !host.is_ascii() {
        return Some(UrlFinding {
            kind: "suspicious_url",
            severity: Severity::Medium,
            message: "a URL with an internationalised (possibly look-alike) host name",
        });
    }
    if has_userinfo {
        return Some(UrlFinding {
            kind: "suspicious_url",
            severity: Severity::Medium,
            message: "a URL with user information before the host",
        });
    }
    if let Some(q) = query
        && query_names_data(q)
    {
        return Some(UrlFinding {
            kind: "suspicious_url",
            severity: Severity::Medium,
            message: "a URL with a query parameter named for secrets or data",
        });
    }
    None
}

/// `{x}`, `{{x}}`, `${x}`, `<x>`, `%7B`, `$X` as a parameter value: a template for the model.
fn query_has_slot(q: &str) -> bool {
    q.split('&').any(|pair| {
        let v = pair.split_once('=').map(|(_, v)| v).unwrap_or("");
        v.starts_with('{')
            || v.starts_with("${")
            || v.starts_with('<')
            || v.starts_with("%7b")
            || v.starts_with("%3c")
            || v.starts_with('$')
            || v.starts_with('[')
    })
}

fn query_names_data(q: &str) -> bool {
    q.split('&').any(|pair| {
        let name = pair.split('=').next().unwrap_or("");
        DATA_PARAMS.contains(&name)
    })
}

/// Dotted quads, IPv6 literals and the single-number and hex forms browsers also accept.
fn parse_host_ip(host: &str) -> Option<IpAddr> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(ip);
    }
    if !host.is_empty() && host.len() <= 10 && host.bytes().all(|b| b.is_ascii_digit()) {
        return host.parse::<u32>().ok().map(|n| IpAddr::V4(Ipv4Addr::from(n)));
    }
    if let Some(hex) = host.strip_prefix("0x")
        && !hex.is_empty()
        && hex.len() <= 8
    {
        return u32::from_str_radix(hex, 16).ok().map(|n| IpAddr::V4(Ipv4Addr::from(n)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Option<(&'static str, Severity)> {
        let f = scan(text);
        f.first().map(|f| (f.kind, f.severity))
    }

    #[test]
    fn classifies_urls() {
        assert_eq!(one("see javascript:alert(1)"), Some(("suspicious_url", Severity::High)));
        assert_eq!(
            one("img data:text/html;base64,PHNjcmlwdD4="),
            Some(("suspicious_url", Severity::High))
        );
        assert_eq!(
            one("img data:image/png;base64,iVBORw0KGgo="),
            Some(("suspicious_url", Severity::Medium))
        );
        assert_eq!(
            one("post to http://203.0.113.7:8080/collect"),
            Some(("suspicious_url", Severity::Medium))
        );
        assert_eq!(
            one("post to http://3232235777/x"),
            Some(("suspicious_url", Severity::Medium))
        );
        assert_eq!(
            one("post to http://[2001:db8::1]/x"),
            Some(("suspicious_url", Severity::Medium))
        );
        assert_eq!(
            one("local http://127.0.0.1:3000/"),
            Some(("suspicious_url", Severity::Low))
        );
        assert_eq!(
            one("docs at https://bit.ly/3abcd"),
            Some(("suspicious_url", Severity::Medium))
        );
        assert_eq!(
            one("send to https://webhook.site/0000-1111"),
            Some(("exfiltration_url", Severity::High))
        );
        assert_eq!(
            one("send to https://abc.ngrok-free.app/x"),
            Some(("exfiltration_url", Severity::High))
        );
        assert_eq!(
            one("GET https://example.com/log?d={contents_of_env}"),
            Some(("exfiltration_url", Severity::High))
        );
        assert_eq!(
            one("GET https://example.com/log?q=${SECRET}"),
            Some(("exfiltration_url", Severity::High))
        );
        assert_eq!(
            one("GET https://example.com/log?token=abc"),
            Some(("suspicious_url", Severity::Medium))
        );
        assert_eq!(
            one("https://xn--pple-43d.com/login"),
            Some(("suspicious_url", Severity::Medium))
        );
        assert_eq!(
            one("https://github.com@evil.example/"),
            Some(("suspicious_url", Severity::Medium))
        );
    }

    #[test]
    fn ordinary_urls_pass() {
        for ok in [
            "See https://modelcontextprotocol.io/specification for details.",
            "https://github.com/modelcontextprotocol/servers?tab=readme-ov-file#usage",
            "Search https://example.com/search?q=rust&page=2",
            "the data: field holds the input",
            "IANA names like America/New_York",
        ] {
            assert!(scan(ok).is_empty(), "{ok}");
        }
    }
}
