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
    re: Regex,
    /// The capture group that is the secret itself (0: the whole match).
    group: usize,
    check: Check,
}

/// What a candidate must also pass, beyond its pattern.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Check {
    /// The pattern is specific enough; only obvious placeholders are dropped.
    Placeholder,
    /// Random-looking enough to be a key, and not a placeholder or ciphertext.
    Entropy,
    /// A password after a password key: any value but placeholders, references and ciphertext.
    Password,
    /// 40 characters of base64 with no key word before them: only when they look like a
    /// random AWS secret (mixed classes, frequent class changes, not hex).
    BareAwsSecret,
    /// `Basic <base64>`: it must decode to `user:password`.
    BasicAuth,
}

pub(crate) struct SecretRules {
    rules: Vec<Rule>,
    prefilter: AhoCorasick,
    /// Keyword index (prefilter pattern id) → rules that need it.
    keyword_rules: Vec<Vec<usize>>,
    /// Rules without keywords: run on every text.
    always: Vec<usize>,
}

/// At most this many matches per rule and text; beyond that the text is plainly not one
/// with a few leaked secrets, and the caller is told the search stopped early.
const MAX_MATCHES_PER_RULE: usize = 4096;

use Check::{BareAwsSecret, BasicAuth, Entropy, Password, Placeholder};

/// (kind, keywords, pattern, group, check), in priority order. Keywords are lower-case literals
/// one of which every match contains (none: the rule runs on every text): where two matches overlap the
/// earlier rule wins. Formats from the vendors' documentation of their credentials.
const RULES: &[(&str, &[&str], &str, usize, Check)] = &[
    (
        "private_key",
        &["private key"],
        r"-----BEGIN[ A-Z0-9]{0,24}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END[ A-Z0-9]{0,24}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s\\:,.\-]*)",
        0,
        Placeholder,
    ),
    (
        "private_key",
        &["private-lines"],
        r"(?i)Private-Lines:\s*\d+\s*((?:[A-Za-z0-9+/=]{4,}\s*)+)",
        1,
        Placeholder,
    ),
    (
        "steward_api_key",
        &["stw_"],
        r"\b(stw_[0-9a-f]{12}_[0-9a-f]{64})\b",
        1,
        Placeholder,
    ),
    (
        "aws_access_key",
        &["akia", "asia", "abia", "acca", "a3t"],
        r"\b((?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16})\b",
        1,
        Placeholder,
    ),
    (
        "aws_secret_key",
        &["aws", "secret_access_key", "secretaccesskey", "secret-access-key"],
        r#"(?i)(?:aws[a-z0-9_ .\-]{0,20}?(?:secret|sk)[a-z0-9_ .\-]{0,20}?|secret[_\-]?access[_\-]?key)["']?\s*(?:[:=]|=>)\s*["']?([A-Za-z0-9/+]{40})(?:[^A-Za-z0-9/+=]|$)"#,
        1,
        Placeholder,
    ),
    (
        "github_token",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_"],
        r"\b(gh[pousr]_[A-Za-z0-9]{36,255})\b",
        1,
        Placeholder,
    ),
    (
        "github_token",
        &["github_pat_"],
        r"\b(github_pat_[A-Za-z0-9_]{60,255})\b",
        1,
        Placeholder,
    ),
    (
        "gitlab_token",
        &[
            "glpat-", "gldt-", "glrt-", "glptt-", "glcbt-", "glft-", "glimt-", "glagent-", "glsoat-", "gloas-",
        ],
        r"\b(gl(?:pat|dt|rt|ptt|cbt|ft|imt|agent|soat|oas)-[A-Za-z0-9_\-]{20,255})",
        1,
        Placeholder,
    ),
    (
        "slack_token",
        &["xox", "xapp-"],
        r"\b(xox[abposre]-[A-Za-z0-9-]{10,255}|xapp-\d-[A-Za-z0-9-]{10,255})",
        1,
        Placeholder,
    ),
    (
        "slack_webhook",
        &["hooks.slack.com"],
        r"(https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/_\-]{20,255})",
        1,
        Placeholder,
    ),
    (
        "stripe_key",
        &["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"],
        r"\b((?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,255}|whsec_[A-Za-z0-9]{24,255})",
        1,
        Placeholder,
    ),
    (
        "anthropic_key",
        &["sk-ant-"],
        r"\b(sk-ant-(?:api|admin|oat|sid)\d{2}-[A-Za-z0-9_\-]{40,255})",
        1,
        Placeholder,
    ),
    (
        "openai_key",
        &["sk-"],
        r"\b(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{20,255}|sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|sk-[A-Za-z0-9]{32,255})\b",
        1,
        Placeholder,
    ),
    (
        "google_api_key",
        &["aiza"],
        r"\b(AIza[0-9A-Za-z_\-]{35})(?:[^0-9A-Za-z_\-]|$)",
        1,
        Placeholder,
    ),
    (
        "google_oauth_secret",
        &["gocspx-"],
        r"\b(GOCSPX-[A-Za-z0-9_\-]{28})",
        1,
        Placeholder,
    ),
    (
        "google_oauth_token",
        &["ya29."],
        r"\b(ya29\.[0-9A-Za-z_\-]{20,2048})",
        1,
        Placeholder,
    ),
    (
        "gcp_private_key_id",
        &["private_key_id"],
        r#"(?i)"?private_key_id"?\s*[:=]\s*"?([0-9a-f]{40})\b"#,
        1,
        Placeholder,
    ),
    (
        "azure_storage_key",
        &["accountkey", "sharedaccesskey", "azure", "primarykey", "secondarykey"],
        r#"(?i)(?:AccountKey|SharedAccessKey|azure[_\-]?storage[_\-]?(?:account[_\-]?)?key|primary_?key|secondary_?key)["']?\s*[=:]\s*["']?([A-Za-z0-9+/]{40,88}={0,2})"#,
        1,
        Entropy,
    ),
    (
        "azure_sas_token",
        &["sig="],
        r"[?&;]sig=([A-Za-z0-9%+/]{30,256}(?:%3D|=){0,2})",
        1,
        Placeholder,
    ),
    (
        "azure_client_secret",
        &["q~"],
        r"(?:^|[^A-Za-z0-9_~.\-])([A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34})(?:[^A-Za-z0-9_~.\-]|$)",
        1,
        Placeholder,
    ),
    ("npm_token", &["npm_"], r"\b(npm_[A-Za-z0-9]{36})\b", 1, Placeholder),
    (
        "pypi_token",
        &["pypi-"],
        r"\b(pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,})",
        1,
        Placeholder,
    ),
    (
        "huggingface_token",
        &["hf_"],
        r"\b(hf_[A-Za-z]{34,40})\b",
        1,
        Placeholder,
    ),
    (
        "sendgrid_key",
        &["sg."],
        r"\b(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})",
        1,
        Placeholder,
    ),
    (
        "digitalocean_token",
        &["do_v1_", "dop_v1_", "dor_v1_"],
        r"\b(do[opr]?_v1_[a-f0-9]{64})\b",
        1,
        Placeholder,
    ),
    (
        "shopify_token",
        &["shpat_", "shpss_", "shpca_", "shppa_"],
        r"\b(shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32})\b",
        1,
        Placeholder,
    ),
    ("mailgun_key", &["key-"], r"\b(key-[0-9a-f]{32})\b", 1, Placeholder),
    (
        "databricks_token",
        &["dapi"],
        r"\b(dapi[a-f0-9]{32}(?:-\d)?)\b",
        1,
        Placeholder,
    ),
    (
        "telegram_bot_token",
        &[":aa"],
        r"\b(\d{8,10}:AA[0-9A-Za-z_\-]{33})\b",
        1,
        Placeholder,
    ),
    (
        "linear_key",
        &["lin_api_"],
        r"\b(lin_api_[A-Za-z0-9]{40})\b",
        1,
        Placeholder,
    ),
    (
        "age_secret_key",
        &["age-secret-key-1"],
        r"\b(AGE-SECRET-KEY-1[0-9A-Z]{58})\b",
        1,
        Placeholder,
    ),
    (
        "vault_token",
        &["hvs.", "hvb."],
        r"\b(hv[sb]\.[A-Za-z0-9_\-]{24,255})",
        1,
        Placeholder,
    ),
    (
        "jwt",
        &["eyj"],
        r"\b(eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*)",
        1,
        Placeholder,
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
        r#"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|clickhouse|jdbc:[a-z]+|cockroachdb|couchdb|neo4j(?:\+s)?)://[^\s:/@'"`]{0,256}:([^\s@'"`/]{1,256})@"#,
        1,
        Password,
    ),
    (
        "url_password",
        &["://"],
        r#"(?i)\b[a-z][a-z0-9+.\-]{1,20}://[^\s:/@'"`<>]{1,256}:([^\s@'"`/<>]{1,256})@[a-z0-9\[]"#,
        1,
        Password,
    ),
    (
        "basic_auth",
        &["basic"],
        r"(?i)\bbasic\s+([A-Za-z0-9+/]{8,4096}={0,2})",
        1,
        BasicAuth,
    ),
    (
        "bearer_token",
        &["bearer"],
        r"(?i)\bbearer\s+([A-Za-z0-9_\-.~+/]{20,4096}=*)",
        1,
        Entropy,
    ),
    (
        "password",
        &["passw", "pwd", "pass", "kennwort", "contrase"],
        r#"(?i)(?:^|[^a-z0-9])[a-z0-9_.\-]*?(?:password|passwd|passwort|passphrase|pwd|_pass|^pass|db_pass|kennwort|contrasena)["']?\s*(?:[:=]|=>|:=)\s*["']?([^\s"'`,;<>{}()\[\]]{4,256})"#,
        1,
        Password,
    ),
    (
        "password",
        &["--pass"],
        r#"(?i)--(?:password|passwd|pass)(?:=|\s+)["']?([^\s"'`]{4,256})"#,
        1,
        Password,
    ),
    (
        "generic_secret",
        &["key", "secret", "token", "credential", "auth"],
        r#"(?i)(?:api[_.\-]?key|apikey|secret[_.\-]?key|client[_.\-]?secret|access[_.\-]?key|access[_.\-]?token|auth[_.\-]?token|refresh[_.\-]?token|secret|token|private[_.\-]?key|credentials?|signing[_.\-]?key|encryption[_.\-]?key|session[_.\-]?key|auth|_authtoken|_auth|x-api-key)["']?\s*(?:[:=]|=>|:=)\s*["']?([A-Za-z0-9_\-+/=.~#!$%^*@]{16,512})"#,
        1,
        Entropy,
    ),
];

/// The kind of a 40-character base64 run with no key word before it that looks like an AWS
/// secret key (found by [`bare_runs`], not a regex: one pass over the bytes).
const BARE_AWS_KIND: &str = "aws_secret_key";

impl SecretRules {
    pub(crate) fn get() -> &'static SecretRules {
        static RULES_ONCE: OnceLock<SecretRules> = OnceLock::new();
        RULES_ONCE.get_or_init(SecretRules::build)
    }

    fn build() -> SecretRules {
        let mut rules = Vec::with_capacity(RULES.len());
        let mut keywords: Vec<&'static str> = Vec::new();
        let mut keyword_rules: Vec<Vec<usize>> = Vec::new();
        let mut always = Vec::new();
        for (i, (kind, kws, src, group, check)) in RULES.iter().enumerate() {
            let re = RegexBuilder::new(src)
                .unicode(false)
                .size_limit(16 * 1024 * 1024)
                .build()
                .unwrap_or_else(|e| panic!("built-in secret rule {kind} is invalid: {e}"));
            if kws.is_empty() {
                always.push(i);
            }
            for kw in *kws {
                match keywords.iter().position(|k| k == kw) {
                    Some(at) => keyword_rules[at].push(i),
                    None => {
                        keywords.push(kw);
                        keyword_rules.push(vec![i]);
                    }
                }
            }
            rules.push(Rule {
                kind,
                re,
                group: *group,
                check: *check,
            });
        }
        // A DFA (a few dozen short keywords make a small one) searched leftmost-longest, not
        // overlapping: it can skip ahead with its own prefilter. A keyword inside a longer one
        // (`sk-` in `sk-ant-`, `pass` in `passw`) belongs to a rule the longer one's rule covers
        // or to the same rule.
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
            always,
        }
    }

    /// Every secret in `hay`: (kind, byte range of the secret itself), in text order, not
    /// overlapping; and whether a rule hit its match cap (then some text was not searched).
    pub(crate) fn find(&self, hay: &[u8]) -> (Vec<(&'static str, Range<usize>)>, bool) {
        let mut wanted = vec![false; self.rules.len()];
        for &r in &self.always {
            wanted[r] = true;
        }
        for m in self.prefilter.find_iter(hay) {
            for &r in &self.keyword_rules[m.pattern().as_usize()] {
                wanted[r] = true;
            }
            if wanted.iter().all(|w| *w) {
                break;
            }
        }
        let mut capped = false;
        let mut found: Vec<(usize, Range<usize>)> = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            if !wanted[i] {
                continue;
            }
            for (n, caps) in rule.re.captures_iter(hay).enumerate() {
                if n == MAX_MATCHES_PER_RULE {
                    capped = true;
                    break;
                }
                let Some(m) = caps.get(rule.group) else { continue };
                if passes(rule.check, m.as_bytes(), hay, m.start()) {
                    found.push((i, m.range()));
                }
            }
        }
        // Bare AWS secrets come last: any keyword rule's match wins over them.
        for r in bare_runs(hay, 40) {
            if passes(BareAwsSecret, &hay[r.clone()], hay, r.start) {
                found.push((usize::MAX, r));
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
            accepted
                .into_iter()
                .map(|(i, r)| (self.rules.get(i).map(|rule| rule.kind).unwrap_or(BARE_AWS_KIND), r))
                .collect(),
            capped,
        )
    }
}

/// Runs of exactly `len` characters of `[A-Za-z0-9/+]` with none of those (nor `=`) either side.
fn bare_runs(hay: &[u8], len: usize) -> Vec<Range<usize>> {
    let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'/' || c == b'+';
    let mut out = Vec::new();
    let mut i = 0;
    while i < hay.len() {
        if !b64(hay[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < hay.len() && b64(hay[i]) {
            i += 1;
        }
        if i - start == len && hay.get(i) != Some(&b'=') {
            out.push(start..i);
        }
    }
    out
}

fn passes(check: Check, value: &[u8], hay: &[u8], start: usize) -> bool {
    if is_placeholder(value) || is_documentation_key(value) {
        return false;
    }
    match check {
        Placeholder => true,
        Entropy => looks_random(value) && !is_reference(value) && !is_ciphertext(value, hay, start),
        Password => !is_reference(value) && !is_ciphertext(value, hay, start) && !is_not_a_password(value),
        BareAwsSecret => bare_aws_secret(value) && !after_hash_label(hay, start),
        BasicAuth => basic_credentials(value),
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

/// A random base64 secret changes character class (lower, upper, digit, sign) at about two
/// thirds of its positions; words, paths and identifiers far less often.
fn bare_aws_secret(v: &[u8]) -> bool {
    let class = |b: u8| match b {
        b'a'..=b'z' => 0,
        b'A'..=b'Z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    };
    let has = |c| v.iter().any(|b| class(*b) == c);
    if !(has(0) && has(1) && has(2)) || v.iter().all(u8::is_ascii_hexdigit) {
        return false;
    }
    let changes = v.windows(2).filter(|w| class(w[0]) != class(w[1])).count();
    changes * 100 >= (v.len() - 1) * 40 && shannon_entropy(v) >= 4.2
}

/// `sha1-…`, `integrity sha384-…`, `digest: …` right before: a hash, not a secret.
fn after_hash_label(hay: &[u8], start: usize) -> bool {
    let from = start.saturating_sub(24);
    let before = hay[from..start].to_ascii_lowercase();
    let has = |n: &[u8]| before.windows(n.len()).any(|w| w == n);
    has(b"sha") || has(b"md5") || has(b"digest") || has(b"hash") || has(b"integrity") || has(b"checksum")
}

/// `Basic dXNlcjpwYXNz`: decodes to printable `user:password` with a non-empty password.
fn basic_credentials(v: &[u8]) -> bool {
    use base64::Engine;
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(v) else {
        return false;
    };
    let Ok(text) = std::str::from_utf8(&raw) else {
        return false;
    };
    match text.split_once(':') {
        Some((user, pass)) => {
            !pass.is_empty()
                && !user.contains(char::is_whitespace)
                && text.chars().all(|c| !c.is_control())
                && !is_placeholder(pass.as_bytes())
        }
        None => false,
    }
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

/// Obviously fake values: masks, `YOUR_KEY_HERE`, `<password>`, runs of one character, the
/// words people write where a secret goes.
pub(crate) fn is_placeholder(v: &[u8]) -> bool {
    let lower = v.to_ascii_lowercase();
    let has = |needle: &[u8]| lower.windows(needle.len()).any(|w| w == needle);
    let trimmed: &[u8] = {
        let mut t = &lower[..];
        while let [b'"' | b'\'' | b'`', rest @ ..] = t {
            t = rest;
        }
        while let [rest @ .., b'"' | b'\'' | b'`'] = t {
            t = rest;
        }
        t
    };
    const WORDS: &[&[u8]] = &[
        b"password",
        b"pass",
        b"passwd",
        b"pwd",
        b"secret",
        b"changeme",
        b"change_me",
        b"example",
        b"placeholder",
        b"redacted",
        b"hidden",
        b"none",
        b"null",
        b"nil",
        b"undefined",
        b"empty",
        b"required",
        b"optional",
        b"string",
        b"value",
        b"token",
        b"true",
        b"false",
        b"mypassword",
        b"yourpassword",
        b"password123",
        b"xxx",
        b"notset",
        b"not_set",
        b"unset",
        b"todo",
        b"tbd",
        b"sample",
        b"masked",
    ];
    v.is_empty()
        || v.iter()
            .all(|b| matches!(b, b'*' | b'x' | b'X' | b'.' | b'-' | b'_' | b'#' | b'0'))
        || v.iter().all(|b| *b == v[0])
        || matches!(v.first(), Some(b'<' | b'[' | b'{'))
        || WORDS.contains(&trimmed)
        || has(b"your_")
        || has(b"your-")
        || has(b"yourkey")
        || has(b"_here")
        || has(b"-here")
        || has(b"placeholder")
        || has(b"changeme")
        || has(b"replace")
        || has(b"redacted")
        || has(b"xxxx")
        || has(b"****")
        || has(b"...")
        || has(b"<")
        || has(b"insert")
}

/// The keys AWS publishes in its documentation (`…EXAMPLE`, `…EXAMPLEKEY`).
fn is_documentation_key(v: &[u8]) -> bool {
    v.ends_with(b"EXAMPLE") || v.ends_with(b"EXAMPLEKEY")
}

/// A reference to a secret kept elsewhere: `${DB_PASSWORD}`, `$(cat …)`, `%(pw)s`,
/// `{{ vault }}`, `os.environ[…]`, `process.env.X`, `env(…)`.
fn is_reference(v: &[u8]) -> bool {
    let lower = v.to_ascii_lowercase();
    let starts = |p: &[u8]| lower.starts_with(p);
    matches!(v.first(), Some(b'$' | b'%' | b'{'))
        || starts(b"os.environ")
        || starts(b"process.env")
        || starts(b"env(")
        || starts(b"env.")
        || starts(b"getenv")
        || starts(b"secrets.")
        || starts(b"vault:")
        || starts(b"ref+")
        || starts(b"op://")
        || starts(b"arn:aws:secretsmanager")
}

/// Encrypted values are not secrets: sops `ENC[…]`, ansible vault, KMS blobs, bcrypt/argon2
/// hashes (hashes start with `$` and are caught as references above).
fn is_ciphertext(v: &[u8], hay: &[u8], start: usize) -> bool {
    let before = &hay[start.saturating_sub(8)..start];
    v.starts_with(b"ENC[")
        || v.starts_with(b"AQICAH")
        || before.ends_with(b"ENC[")
        || v.starts_with(b"vault:v")
        || v.starts_with(b"$ANSIBLE_VAULT")
}

/// Values after a password key that are settings or prose, not passwords.
fn is_not_a_password(v: &[u8]) -> bool {
    let lower = v.to_ascii_lowercase();
    const SETTINGS: &[&[u8]] = &[
        b"must",
        b"should",
        b"will",
        b"is",
        b"the",
        b"a",
        b"an",
        b"enter",
        b"ask",
        b"prompt",
        b"required",
        b"yes",
        b"no",
        b"on",
        b"off",
        b"enabled",
        b"disabled",
        b"auto",
        b"default",
        b"strong",
        b"weak",
        b"never",
        b"always",
        b"stdin",
        b"env",
        b"file",
        b"keyring",
        b"inherit",
    ];
    SETTINGS.contains(&lower.as_slice()) || lower.ends_with(b":") || v.iter().all(u8::is_ascii_digit) && v.len() < 6
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
        let aws = fake("AKIA", "Z7QK4M2XW9PL3RTB");
        let aws_secret = "q8Vz/3kLm+T1pRw7Yx2Nb5Hc9Jd4Fg6Ks0Ae1Ui7";
        let ghp = fake("ghp_", "1234567890abcdefghijABCDEFGHIJ123456");
        let glpat = fake("glpat-", "aB3dE6gH9jK2mN5pQ8sT1234");
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
    fn documentation_keys_and_placeholders_are_not_secrets() {
        for ok in [
            "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "api_key: YOUR_API_KEY_HERE",
            "password: <your-password>",
            "password: ********",
            "postgres://user:password@localhost:5432/db",
            "secret: ENC[AES256_GCM,data:Zm9vYmFyYmF6cXV4,iv:abc]",
        ] {
            assert!(kinds(ok).is_empty(), "{ok}: {:?}", kinds(ok));
        }
    }

    #[test]
    fn new_kinds_are_found() {
        let stw = format!("stw_{}_{}", "0123456789ab", "f".repeat(63) + "0");
        let cases = [
            (format!("key {stw}"), "steward_api_key", stw.clone()),
            (
                "db:\n  password: Wint3r!Sun".to_string(),
                "password",
                "Wint3r!Sun".to_string(),
            ),
            ("passwd=hunter2xyz".to_string(), "password", "hunter2xyz".to_string()),
            (
                "https://deploy:s3cr3tPW@artifacts.example/x".to_string(),
                "url_password",
                "s3cr3tPW".to_string(),
            ),
            (
                "Authorization: Basic YWRtaW46czNjcjN0UFc=".to_string(),
                "basic_auth",
                "YWRtaW46czNjcjN0UFc=".to_string(),
            ),
            (
                "two lines\n  q8Vz/3kLm+T1pRw7Yx2Nb5Hc9Jd4Fg6Ks0Ae1Ui7\n".to_string(),
                "aws_secret_key",
                "q8Vz/3kLm+T1pRw7Yx2Nb5Hc9Jd4Fg6Ks0Ae1Ui7".to_string(),
            ),
            (
                "\"private_key_id\": \"0123456789abcdef0123456789abcdef01234567\"".to_string(),
                "gcp_private_key_id",
                "0123456789abcdef0123456789abcdef01234567".to_string(),
            ),
        ];
        for (text, kind, value) in cases {
            assert!(
                kinds(&text).contains(&(kind, value.clone())),
                "{text}: {:?}",
                kinds(&text)
            );
        }
        // A path, a word run and a hex digest of 40 characters are not bare AWS secrets.
        for ok in [
            "see src/components/HeaderNavigationBar/index",
            "commit 3f786850e387550fdab836ed7e6dc881de23001b",
            "Basic authentication is supported",
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
