//! The bundled secret rule set: byte regexes (no Unicode tables: secrets are ASCII) behind an
//! Aho-Corasick keyword prefilter, so a text with none of the keywords costs one pass of the
//! prefilter and no regex at all. Compiled once per process.
//!
//! Rules are tried in priority order; where two matches overlap the earlier rule wins, so a
//! `GITHUB_TOKEN=ghp_…` is a `github_token`, not a `generic_secret`.

use std::ops::Range;
use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

/// One secret rule.
struct Rule {
    kind: &'static str,
    /// Lower-case literals, one of which every match contains.
    keywords: &'static [&'static str],
    re: Regex,
    /// The capture group that is the secret itself (0: the whole match).
    group: usize,
    check: Check,
}

#[derive(Clone, Copy)]
enum Check {
    None,
    /// Random-looking enough to be a key, and not a placeholder.
    Entropy,
    /// Not a placeholder (`${DB_PASSWORD}`, `****`, `<password>`).
    NotPlaceholder,
}

pub(crate) struct SecretRules {
    rules: Vec<Rule>,
    prefilter: AhoCorasick,
    /// Keyword index (prefilter pattern id) → rules that need it.
    keyword_rules: Vec<Vec<usize>>,
}

/// At most this many matches per rule and text; beyond that the text is plainly not one
/// with a few leaked secrets, and further matching is wasted work.
const MAX_MATCHES_PER_RULE: usize = 4096;

const RULES: &[(&str, &[&str], &str, usize, u8)] = &[
    // (kind, keywords, pattern, group, check: 0 none, 1 entropy, 2 not placeholder)
    (
        "private_key",
        &["private key"],
        r"-----BEGIN[ A-Z0-9]{0,24}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[ A-Z0-9]{0,24}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,.\-]*)",
        0,
        0,
    ),
    (
        "aws_access_key",
        &["akia", "asia", "abia", "acca", "a3t"],
        r"\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})\b",
        1,
        0,
    ),
    (
        "aws_secret_key",
        &["aws"],
        r#"(?i)aws[a-z0-9_ .\-]{0,20}?(?:secret|sk)[a-z0-9_ .\-]{0,20}?["']?\s*(?:[:=]|=>)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        1,
        0,
    ),
    (
        "github_token",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        r"\b(gh[pousr]_[A-Za-z0-9]{36,255})\b",
        1,
        0,
    ),
    (
        "github_token",
        &["github_pat_"],
        r"\b(github_pat_[A-Za-z0-9_]{60,255})\b",
        1,
        0,
    ),
    (
        "gitlab_token",
        &[
            "glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glft-", "glimt-", "glagent-", "glsoat-", "gloas-",
        ],
        r"\b(gl(?:pat|dt|rt|ptt|cbt|ft|imt|agent|soat|oas)-[A-Za-z0-9_\-]{20,255})",
        1,
        0,
    ),
    ("slack_token", &["xox"], r"\b(xox[abposre]-[A-Za-z0-9-]{10,255})", 1, 0),
    (
        "slack_webhook",
        &["hooks.slack.com"],
        r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{20,255})",
        1,
        0,
    ),
    (
        "stripe_key",
        &["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"],
        r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,255}|whsec_[A-Za-z0-9]{24,255})",
        1,
        0,
    ),
    (
        "anthropic_key",
        &["sk-ant-"],
        r"\b(sk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_\-]{40,255})",
        1,
        0,
    ),
    (
        "openai_key",
        &["sk-"],
        r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,255}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|sk-[A-Za-z0-9]{32,255})\b",
        1,
        0,
    ),
    (
        "google_api_key",
        &["aiza"],
        r"\b(AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
        1,
        0,
    ),
    ("npm_token", &["npm_"], r"\b(npm_[A-Za-z0-9]{36})\b", 1, 0),
    (
        "pypi_token",
        &["pypi-"],
        r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        1,
        0,
    ),
    (
        "jwt",
        &["eyj"],
        r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*)",
        1,
        0,
    ),
    (
        "database_url",
        &[
            "postgres",
            "mysql",
            "mariadb",
            "mongodb",
            "redis",
            "amqp",
            "mssql",
            "sqlserver",
            "clickhouse",
            "jdbc",
            "cockroach",
            "couchdb",
            "neo4j",
        ],
        r#"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|jdbc:[a-z]+|cockroachdb|couchdb|neo4j(?:\+s)?)://[^\s:/@'"`]{1,256}:([^\s@'"`/]{1,256})@"#,
        1,
        2,
    ),
    (
        "bearer_token",
        &["bearer"],
        r"(?i)\bbearer\s+([A-Za-z0-9_\-.~+/]{20,4096}=*)",
        1,
        1,
    ),
    (
        "generic_secret",
        &["key", "secret", "token", "passw", "pwd", "credential", "auth"],
        r#"(?i)(?:api[_.\-]?key|apikey|secret[_.\-]?key|client[_.\-]?secret|access[_.\-]?key|access[_.\-]?token|auth[_.\-]?token|refresh[_.\-]?token|secret|token|password|passwd|pwd|private[_.\-]?key|credentials?|signing[_.\-]?key|encryption[_.\-]?key|session[_.\-]?key|auth)["']?\s*(?:[:=]|=>|:=)\s*["']?([A-Za-z0-9_\-+/=.~#!$%^*@]{16,512})"#,
        1,
        1,
    ),
];

impl SecretRules {
    pub(crate) fn get() -> &'static SecretRules {
        static RULES_ONCE: OnceLock<SecretRules> = OnceLock::new();
        RULES_ONCE.get_or_init(SecretRules::build)
    }

    fn build() -> SecretRules {
        let mut rules = Vec::with_capacity(RULES.len());
        let mut keywords: Vec<&'static str> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        for (i, (kind, kws, src, group, check)) in RULES.iter().enumerate() {
            let re = RegexBuilder::new(src)
                .unicode(false)
                .size_limit(16 * 1024 * 1024)
                .build()
                .unwrap_or_else(|e| panic!("built-in secret rule {kind} is invalid: {e}"));
            for kw in *kws {
                match keywords.iter().position(|k| k == kw) {
                    Some(at) => keyword_rules[at].push(i),
                    None => {
                        keywords.push(kw);
                        keyword_rules.push(vec![i]);
                    }
                }
            }
            let check = match check {
                1 => Check::Entropy,
                2 => Check::NotPlaceholder,
                _ => Check::None,
            };
            rules.push(Rule {
                kind,
                keywords: kws,
                re,
                group: *group,
                check,
            });
        }
        // A DFA (a few dozen short keywords make a small one) searched leftmost-longest, not
        // overlapping: it can skip ahead with its own prefilter, and a keyword inside a longer
        // one (`sk-` in `sk-ant-`) belongs to a rule the longer one's rule covers.
        let prefilter = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&keywords)
            .expect("the secret keywords build an automaton");
        SecretRules {
            rules,
            prefilter,
            keyword_rules,
        }
    }

    /// Every secret in `hay`: (kind, byte range of the secret itself), in text order, not
    /// overlapping; and whether a rule hit its match cap (then some text was not searched).
    pub(crate) fn find(&self, hay: &[u8]) -> (Vec<(&'static str, Range<usize>)>, bool) {
        let mut wanted = vec![false; self.rules.len()];
        let mut any = false;
        for m in self.prefilter.find_iter(hay) {
            for &r in &self.keyword_rules[m.pattern().as_usize()] {
                wanted[r] = true;
                any = true;
            }
            if wanted.iter().all(|w| *w) {
                break;
            }
        }
        if !any {
            return (Vec::new(), false);
        }
        let mut capped = false;
        let mut found: Vec<(usize, Range<usize>)> = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !wanted[i] {
                continue;
            }
            debug_assert!(!rule.keywords.is_empty());
            for (n, caps) in rule.re.captures_iter(hay).enumerate() {
                if n == MAX_MATCHES_PER_RULE {
                    capped = true;
                    break;
                }
                let Some(m) = caps.get(rule.group) else { continue };
                let value = m.as_bytes();
                let ok = match rule.check {
                    Check::None => true,
                    Check::Entropy => looks_random(value) && !is_placeholder(value),
                    Check::NotPlaceholder => !is_placeholder(value),
                };
                if ok {
                    found.push((i, m.range()));
                }
            }
        }
        // Earlier rules win overlaps: accept in rule order, skipping anything that overlaps.
        let mut accepted: Vec<(usize, Range<usize>)> = Vec::with_capacity(found.len());
        for (i, r) in found {
            if !accepted.iter().any(|(_, a)| a.start < r.end && r.start < a.end) {
                accepted.push((i, r));
            }
        }
        accepted.sort_by_key(|(_, r)| r.start);
        (
            accepted.into_iter().map(|(i, r)| (self.rules[i].kind, r)).collect(),
            capped,
        )
    }
}

/// Shannon entropy of at least 3 bits per byte, and at least two of lower case, upper case
/// and digits: keys and tokens, not words or `aaaaaaaaaaaaaaaa`.
fn looks_random(v: &[u8]) -> bool {
    let classes = [
        v.iter().any(u8::is_ascii_lowercase),
        v.iter().any(u8::is_ascii_uppercase),
        v.iter().any(u8::is_ascii_digit),
    ];
    if classes.iter().filter(|c| **c).count() < 2 {
        return false;
    }
    shannon_entropy(v) >= 3.0
}

pub(crate) fn shannon_entropy(v: &[u8]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for b in v {
        counts[*b as usize] += 1;
    }
    let n = v.len() as f64;
    counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = *c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

fn is_placeholder(v: &[u8]) -> bool {
    let lower = v.to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    v.iter()
        .all(|b| *b == b'*' || *b == b'x' || *b == b'X' || *b == b'.' || *b == b'-')
        || matches!(v.first(), Some(b'$' | b'{' | b'<' | b'%'))
        || has(b"your_")
        || has(b"your-")
        || has(b"placeholder")
        || has(b"changeme")
        || has(b"redacted")
        || has(b"xxxxxx")
        || has(b"******")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(&'static str, String)> {
        SecretRules::get()
            .find(text.as_bytes())
            .0
            .into_iter()
            .map(|(k, r)| (k, text[r].to_string()))
            .collect()
    }

    // Fake credentials, assembled at run time so this file does not trip secret scanners.
    fn fake(prefix: &str, body: &str) -> String {
        format!("{prefix}{body}")
    }

    #[test]
    fn finds_each_bundled_kind() {
        let aws = fake("AKIA", "IOSFODNN7EXAMPLE");
        let aws_secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
        let ghp = fake("ghp_", "1234567890abcdefghijABCDEFGHIJ123456");
        let glpat = fake("glpat-", "xxxxxxxxxxxxxxxxxxxx1234");
        let slack = fake("xoxb-", "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
        let stripe = fake("sk_live_", "4eC39HqLyjWDarjtT1zdp7dc");
        let openai = fake("sk-proj-", "abcdEFGH1234ijklMNOP5678qrstUVWX");
        let anthropic = fake(
            "sk-ant-api03-",
            &"aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6kM9nP2rS5uV8xY1".repeat(2),
        );
        let google = fake("AIza", "SyD-1234567890abcdefghijklmnopqrstu");
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let text = format!(
            "AWS_ACCESS_KEY_ID={aws}\naws_secret_access_key = {aws_secret}\nGITHUB_TOKEN={ghp}\n{glpat} {slack} {stripe} {openai} {anthropic} {google}\nAuthorization: {jwt}\nDATABASE_URL=postgres://app:s3cr3tP4ss@db.internal:5432/app\n"
        );
        let k = kinds(&text);
        let want = [
            ("aws_access_key", aws.as_str()),
            ("aws_secret_key", aws_secret),
            ("github_token", ghp.as_str()),
            ("gitlab_token", glpat.as_str()),
            ("slack_token", slack.as_str()),
            ("stripe_key", stripe.as_str()),
            ("openai_key", openai.as_str()),
            ("anthropic_key", anthropic.as_str()),
            ("google_api_key", google.as_str()),
            ("jwt", jwt),
            ("database_url", "s3cr3tP4ss"),
        ];
        for (kind, value) in want {
            assert!(k.contains(&(kind, value.to_string())), "{kind} {value} not in {k:?}");
        }
        assert_eq!(k.len(), want.len(), "{k:?}");
    }

    #[test]
    fn private_key_blocks_with_and_without_end() {
        let block = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----";
        let k = kinds(&format!("key:\n{block}\ndone"));
        assert_eq!(k, vec![("private_key", block.to_string())]);
        // JSON-escaped newlines and a cut-off block.
        let escaped = r"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc";
        assert_eq!(
            kinds(&format!("\"{escaped}\"")),
            vec![("private_key", escaped.to_string())]
        );
    }

    #[test]
    fn generic_rule_wants_a_keyword_and_randomness() {
        let k = kinds(
            r#"{"api_key": "Zx9QpL2mN8vR4tY7wK1s", "token": "aaaaaaaaaaaaaaaaaaaa", "password": "${DB_PASSWORD}"}"#,
        );
        assert_eq!(k, vec![("generic_secret", "Zx9QpL2mN8vR4tY7wK1s".to_string())]);
        assert!(kinds("the tokenizer splits text into tokens; max_tokens=4096").is_empty());
        assert!(kinds(r#"{"password": "your_password_here_123"}"#).is_empty());
        assert!(kinds("postgres://user:${PASSWORD}@host/db").is_empty());
    }

    #[test]
    fn specific_rules_win_overlaps() {
        let ghp = fake("ghp_", "1234567890abcdefghijABCDEFGHIJ123456");
        assert_eq!(kinds(&format!("token={ghp}")), vec![("github_token", ghp)]);
    }

    #[test]
    fn ordinary_text_has_no_secrets() {
        for ok in [
            "Returns all environment variables, helpful for debugging MCP server configuration",
            "Asia/Tokyo is UTC+9; the key is in the lock",
            "commit 3f786850e387550fdab836ed7e6dc881de23001b Author: someone",
            "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "uuid 123e4567-e89b-12d3-a456-426614174000",
        ] {
            assert!(kinds(ok).is_empty(), "{ok}: {:?}", kinds(ok));
        }
    }

    #[test]
    fn entropy() {
        assert!(shannon_entropy(b"aaaa") < 0.01);
        assert!((shannon_entropy(b"abcd") - 2.0).abs() < 1e-9);
    }
}
