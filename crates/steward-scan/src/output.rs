//! Output protection: secrets and personal data in what servers send back (tool results,
//! `resources/read` contents, `prompts/get` messages), and ANSI escapes stripped from them.
//!
//! [`redact_result`] walks the result in place. For each kind found the policy's action
//! applies: `redact` replaces the value with `[REDACTED:kind]` everywhere it occurs in the
//! result, so `structuredContent` and its text copy stay consistent; `block` marks the report
//! so the door replaces the whole result with an error naming the kinds; `audit` only reports.
//! Findings carry kind and location, never the value.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::MAX_SCAN_BYTES;

/// The most text one result is scanned for (strings together); a result with more is
/// reported incomplete.
pub const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;
use super::secrets::SecretRules;
use super::text;

pub use super::pii::PiiKind;

/// What to do when a kind of sensitive data is found in a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputAction {
    /// Replace the value with `[REDACTED:kind]`.
    Redact,
    /// Replace the whole result with an error naming the kinds found.
    Block,
    /// Leave the result alone; only report.
    Audit,
}

impl OutputAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OutputAction::Redact => "redact",
            OutputAction::Block => "block",
            OutputAction::Audit => "audit",
        }
    }
}

/// Which detector family a kind belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Secret,
    Pii,
    /// ANSI escape sequences (stripped, not redacted).
    Ansi,
}

impl Class {
    pub fn as_str(self) -> &'static str {
        match self {
            Class::Secret => "secrets",
            Class::Pii => "pii",
            Class::Ansi => "ansi",
        }
    }
}

/// What output protection does. In a policy file this is the `redact:` block, e.g.
/// `redact: { secrets: true, pii: [email, phone, payment_card, ssn, iban] }`; missing keys
/// take the baseline's values (secrets redacted, no PII, ANSI stripped).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputPolicy {
    /// Run the bundled secret rules.
    pub secrets: bool,
    /// The personal data kinds to look for.
    pub pii: Vec<PiiKind>,
    /// The action for every kind found, unless `kinds` says otherwise.
    pub action: OutputAction,
    /// Per-kind or per-class actions: keys are a kind (`aws_access_key`, `email`) or a class
    /// (`secrets`, `pii`); the kind wins over its class.
    pub kinds: BTreeMap<String, OutputAction>,
    /// Remove ANSI escape sequences from every string.
    pub strip_ansi: bool,
    /// Each string is scanned up to this many bytes (beyond: the report is incomplete).
    #[serde(skip)]
    pub max_string_bytes: usize,
    /// At most this many bytes are scanned per result; later strings are not scanned (values
    /// already found are still redacted there) and the report is incomplete.
    #[serde(skip)]
    pub max_total_bytes: usize,
}

impl Default for OutputPolicy {
    fn default() -> Self {
        OutputPolicy::baseline()
    }
}

impl OutputPolicy {
    /// Protection on by default: secrets redacted, ANSI stripped, personal data left alone.
    pub fn baseline() -> OutputPolicy {
        OutputPolicy {
            secrets: true,
            pii: Vec::new(),
            action: OutputAction::Redact,
            kinds: BTreeMap::new(),
            strip_ansi: true,
            max_string_bytes: MAX_RESULT_BYTES,
            max_total_bytes: MAX_RESULT_BYTES,
        }
    }

    /// Nothing scanned, nothing changed.
    pub fn off() -> OutputPolicy {
        OutputPolicy {
            secrets: false,
            strip_ansi: false,
            ..OutputPolicy::baseline()
        }
    }

    /// Every secret and every personal data kind, with one action.
    pub fn all(action: OutputAction) -> OutputPolicy {
        OutputPolicy {
            pii: PiiKind::ALL.to_vec(),
            action,
            ..OutputPolicy::baseline()
        }
    }

    /// Whether this policy can find or change anything.
    pub fn is_active(&self) -> bool {
        self.secrets || !self.pii.is_empty() || self.strip_ansi
    }

    /// The action for `kind` of `class`.
    pub fn action_for(&self, kind: &str, class: Class) -> OutputAction {
        self.kinds
            .get(kind)
            .or_else(|| self.kinds.get(class.as_str()))
            .copied()
            .unwrap_or(self.action)
    }

    /// Checks the `kinds` keys name known kinds or classes.
    pub fn validate(&self) -> Result<(), String> {
        for k in self.kinds.keys() {
            let known = SECRET_KINDS.contains(&k.as_str())
                || k.parse::<PiiKind>().is_ok()
                || matches!(k.as_str(), "secrets" | "pii");
            if !known {
                return Err(format!(
                    "unknown output kind '{k}' (expected secrets, pii, a PII kind or one of {})",
                    SECRET_KINDS.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// The kinds the bundled secret rules report.
pub const SECRET_KINDS: &[&str] = &[
    "private_key",
    "steward_api_key",
    "aws_access_key",
    "aws_secret_key",
    "github_token",
    "gitlab_token",
    "slack_token",
    "slack_webhook",
    "stripe_key",
    "anthropic_key",
    "openai_key",
    "google_api_key",
    "google_oauth_secret",
    "google_oauth_token",
    "gcp_private_key_id",
    "azure_storage_key",
    "azure_sas_token",
    "azure_client_secret",
    "npm_token",
    "pypi_token",
    "huggingface_token",
    "sendgrid_key",
    "digitalocean_token",
    "shopify_token",
    "mailgun_key",
    "databricks_token",
    "telegram_bot_token",
    "linear_key",
    "age_secret_key",
    "vault_token",
    "jwt",
    "database_url",
    "url_password",
    "basic_auth",
    "bearer_token",
    "password",
    "generic_secret",
];

/// One kind of sensitive data at one place in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputFinding {
    /// e.g. `aws_access_key`, `email`, `ansi_escape`.
    pub kind: &'static str,
    pub class: Class,
    /// e.g. `content[0].text`, `structuredContent.env.TOKEN`.
    pub location: String,
    pub action: OutputAction,
}

/// What [`redact_result`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutputReport {
    pub findings: Vec<OutputFinding>,
    /// A kind whose action is `block` was found: replace the result (see [`OutputReport::block_message`]).
    pub blocked: bool,
    /// Values replaced with `[REDACTED:kind]`.
    pub redacted: usize,
    /// ANSI escape sequences removed.
    pub ansi_stripped: usize,
    /// Some part was not looked at: a limit (depth, size, count, decoding depth) stopped the
    /// scan early. The result must then be withheld, not forwarded.
    pub incomplete: bool,
    /// Which limits: `depth`, `size`, `count`, `decode depth`.
    pub incomplete_reasons: BTreeSet<&'static str>,
    /// The same as `incomplete` (the name earlier callers read).
    pub truncated: bool,
}

impl OutputReport {
    /// Whether the result was changed in place (re-serialise it before forwarding).
    pub fn changed(&self) -> bool {
        self.redacted > 0 || self.ansi_stripped > 0
    }

    /// The distinct kinds found, sorted.
    pub fn kinds(&self) -> BTreeSet<&'static str> {
        self.findings.iter().map(|f| f.kind).collect()
    }

    /// The kinds whose action is `block`, sorted.
    pub fn blocking_kinds(&self) -> BTreeSet<&'static str> {
        self.findings
            .iter()
            .filter(|f| f.action == OutputAction::Block)
            .map(|f| f.kind)
            .collect()
    }

    /// The text of the error result that replaces a blocked result: it names the kinds, for
    /// the model to read and stop.
    pub fn block_message(&self) -> String {
        let kinds: Vec<&str> = self.blocking_kinds().into_iter().collect();
        format!(
            "Steward withheld this result: it contains sensitive data ({}). Do not retry to obtain it; ask the user how to proceed.",
            kinds.join(", ")
        )
    }
}

/// One match of [`scan_text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextMatch {
    pub kind: &'static str,
    pub class: Class,
    /// Byte range in the scanned text.
    pub range: Range<usize>,
}

/// Every secret and every kind of personal data in `text` (scanned up to
/// [`MAX_SCAN_BYTES`]), in text order, not overlapping. ANSI escapes are not reported here.
pub fn scan_text(text: &str) -> Vec<TextMatch> {
    let (text, _) = super::clip(text, MAX_SCAN_BYTES);
    matches(text, true, &PiiKind::ALL).0
}

/// `s` without ANSI escape sequences (borrowed when there are none).
pub fn strip_ansi(s: &str) -> Cow<'_, str> {
    text::strip_ansi(s)
}

/// The matches in `text`, and whether a per-rule match cap stopped the search early.
pub(crate) fn matches(text: &str, secrets: bool, pii: &[PiiKind]) -> (Vec<TextMatch>, bool) {
    let hay = text.as_bytes();
    let mut out: Vec<TextMatch> = Vec::new();
    let mut capped = false;
    if secrets {
        let (found, cap) = SecretRules::get().find(hay);
        capped |= cap;
        for (kind, r) in found {
            out.push(TextMatch {
                kind,
                class: Class::Secret,
                range: on_boundaries(text, r),
            });
        }
    }
    if !pii.is_empty() {
        for (kind, r) in super::pii::find(hay, pii) {
            let r = on_boundaries(text, r);
            // A secret already covers it (an email inside a database URL): keep the secret.
            if !out.iter().any(|m| m.range.start < r.end && r.start < m.range.end) {
                out.push(TextMatch {
                    kind: kind.as_str(),
                    class: Class::Pii,
                    range: r,
                });
            }
        }
    }
    out.sort_by_key(|m| m.range.start);
    (out, capped)
}

fn on_boundaries(s: &str, mut r: Range<usize>) -> Range<usize> {
    while r.start > 0 && !s.is_char_boundary(r.start) {
        r.start -= 1;
    }
    while r.end < s.len() && !s.is_char_boundary(r.end) {
        r.end += 1;
    }
    r
}

/// Scans and protects an MCP result in place: a `tools/call` result (`content[].text`,
/// embedded `resource.text`, `structuredContent`), a `resources/read` result (`contents[]`,
/// `blob`s that decode to text) or a `prompts/get` result (`messages[].content`). The same as
/// [`redact_json`](crate::redact_json), which takes any JSON.
pub fn redact_result(result: &mut Value, policy: &OutputPolicy) -> OutputReport {
    super::redact_json::redact_json(result, policy)
}

pub(crate) fn class_of(kind: &str) -> Class {
    if kind.parse::<PiiKind>().is_ok() {
        Class::Pii
    } else {
        Class::Secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn aws() -> String {
        format!("AKIA{}", "Z7QK4M2XW9PL3RTB")
    }
    fn ghp() -> String {
        format!("ghp_{}", "1234567890abcdefghijABCDEFGHIJ123456")
    }

    #[test]
    fn redacts_text_and_structured_content_consistently() {
        let env = json!({"AWS_ACCESS_KEY_ID": aws(), "GITHUB_TOKEN": ghp(), "HOME": "/home/u"});
        let mut result = json!({
            "content": [{"type": "text", "text": serde_json::to_string_pretty(&env).unwrap()}],
            "structuredContent": {"env": env},
        });
        let report = redact_result(&mut result, &OutputPolicy::baseline());
        let text = result.to_string();
        assert!(!text.contains(&aws()) && !text.contains(&ghp()), "{text}");
        assert_eq!(
            result["structuredContent"]["env"]["AWS_ACCESS_KEY_ID"],
            "[REDACTED:aws_access_key]"
        );
        assert_eq!(
            result["structuredContent"]["env"]["GITHUB_TOKEN"],
            "[REDACTED:github_token]"
        );
        assert!(
            result["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("\"GITHUB_TOKEN\": \"[REDACTED:github_token]\"")
        );
        assert_eq!(result["structuredContent"]["env"]["HOME"], "/home/u");
        assert_eq!(report.kinds(), BTreeSet::from(["aws_access_key", "github_token"]));
        assert!(report.changed() && !report.blocked);
        assert_eq!(report.redacted, 4);
        let locations: BTreeSet<&str> = report.findings.iter().map(|f| f.location.as_str()).collect();
        assert_eq!(
            locations,
            BTreeSet::from([
                "content[0].text",
                "structuredContent.env.AWS_ACCESS_KEY_ID",
                "structuredContent.env.GITHUB_TOKEN"
            ])
        );
        // Findings never carry the value.
        assert!(!serde_json::to_string(&report).unwrap().contains(&aws()[4..]));
    }

    #[test]
    fn a_value_found_only_with_context_is_redacted_everywhere() {
        // `api_key=…` in the text gives the generic rule its key word; the structured copy has none.
        let mut result = json!({
            "content": [{"type": "text", "text": "api_key=Zx9QpL2mN8vR4tY7wK1s"}],
            "structuredContent": {"value": "Zx9QpL2mN8vR4tY7wK1s"},
        });
        let report = redact_result(&mut result, &OutputPolicy::baseline());
        assert_eq!(result["content"][0]["text"], "api_key=[REDACTED:generic_secret]");
        assert_eq!(result["structuredContent"]["value"], "[REDACTED:generic_secret]");
        assert_eq!(report.findings.len(), 2);
    }

    #[test]
    fn block_reports_and_names_kinds() {
        let mut policy = OutputPolicy::all(OutputAction::Redact);
        policy.kinds.insert("secrets".into(), OutputAction::Block);
        let mut result = json!({"content": [{"type": "text", "text": format!("key {} mail bob@example.com", aws())}]});
        let report = redact_result(&mut result, &policy);
        assert!(report.blocked);
        assert_eq!(report.blocking_kinds(), BTreeSet::from(["aws_access_key"]));
        assert!(report.block_message().contains("aws_access_key") && !report.block_message().contains(&aws()));
        // The email (redact) is still redacted; the door replaces the result anyway.
        assert!(
            result["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("[REDACTED:email]")
        );
    }

    #[test]
    fn audit_only_reports() {
        let mut result = json!({"content": [{"type": "text", "text": format!("k={}", aws())}]});
        let before = result.clone();
        let report = redact_result(&mut result, &OutputPolicy::all(OutputAction::Audit));
        assert_eq!(result, before);
        assert_eq!(
            report.findings,
            vec![OutputFinding {
                kind: "aws_access_key",
                class: Class::Secret,
                location: "content[0].text".into(),
                action: OutputAction::Audit
            }]
        );
        assert!(!report.changed() && !report.blocked);
    }

    #[test]
    fn pii_only_when_asked_and_luhn_matters() {
        let text = "card 4111 1111 1111 1111, order 4111111111111112, mail a@example.org, ssn 078-05-1120, iban DE89370400440532013000, tel +1 415 555 2671";
        let mut r = json!({"content": [{"type": "text", "text": text}]});
        assert!(redact_result(&mut r, &OutputPolicy::baseline()).findings.is_empty());
        let report = redact_result(&mut r, &OutputPolicy::all(OutputAction::Redact));
        assert_eq!(
            r["content"][0]["text"],
            "card [REDACTED:payment_card], order 4111111111111112, mail [REDACTED:email], ssn [REDACTED:ssn], iban [REDACTED:iban], tel [REDACTED:phone]"
        );
        assert_eq!(
            report.kinds(),
            BTreeSet::from(["email", "iban", "payment_card", "phone", "ssn"])
        );
    }

    #[test]
    fn strips_ansi_and_leaves_binary_media_alone() {
        let secret = aws();
        let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
        let mut r = json!({
            "content": [
                {"type": "text", "text": "\u{1b}[31mred\u{1b}[0m"},
                {"type": "image", "data": png, "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "file:///x", "text": secret.clone()}},
            ],
            "_meta": {"k": secret.clone()},
        });
        let report = redact_result(&mut r, &OutputPolicy::baseline());
        assert_eq!(r["content"][0]["text"], "red");
        assert_eq!(r["content"][1]["data"], png);
        assert_eq!(r["content"][2]["resource"]["text"], "[REDACTED:aws_access_key]");
        // `_meta` reaches the client too.
        assert_eq!(r["_meta"]["k"], "[REDACTED:aws_access_key]");
        assert_eq!(report.ansi_stripped, 2);
        assert!(!report.incomplete);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.kind == "ansi_escape" && f.location == "content[0].text")
        );
    }

    #[test]
    fn resources_and_prompts_results_are_walked() {
        let mut r = json!({"contents": [{"uri": "file:///.env", "text": format!("GITHUB_TOKEN={}", ghp())}]});
        redact_result(&mut r, &OutputPolicy::baseline());
        assert_eq!(r["contents"][0]["text"], "GITHUB_TOKEN=[REDACTED:github_token]");
        let mut p = json!({"messages": [{"role": "user", "content": {"type": "text", "text": ghp()}}]});
        redact_result(&mut p, &OutputPolicy::baseline());
        assert_eq!(p["messages"][0]["content"]["text"], "[REDACTED:github_token]");
    }

    #[test]
    fn limits_are_reported_and_found_values_still_redacted() {
        let secret = aws();
        let policy = OutputPolicy {
            max_string_bytes: 64,
            max_total_bytes: 100,
            ..OutputPolicy::baseline()
        };
        let mut r = json!({"content": [
            {"type": "text", "text": format!("{secret} {}", "x".repeat(200))},
            {"type": "text", "text": format!("{} {secret}", "y".repeat(200))},
        ]});
        let report = redact_result(&mut r, &policy);
        assert!(report.incomplete && report.truncated);
        assert!(report.incomplete_reasons.contains("size"));
        assert!(!r.to_string().contains(&secret));
    }

    #[test]
    fn off_does_nothing() {
        let mut r = json!({"content": [{"type": "text", "text": format!("\u{1b}[0m{}", aws())}]});
        let before = r.clone();
        assert_eq!(redact_result(&mut r, &OutputPolicy::off()), OutputReport::default());
        assert_eq!(r, before);
    }

    #[test]
    fn policy_parses_from_the_redact_block() {
        let p: OutputPolicy =
            serde_json::from_value(json!({"secrets": true, "pii": ["email", "phone", "payment_card", "ssn", "iban"]}))
                .unwrap();
        assert_eq!(p.pii.len(), 5);
        assert_eq!(p.max_string_bytes, MAX_RESULT_BYTES);
        assert_eq!(p.action, OutputAction::Redact);
        let p: OutputPolicy =
            serde_json::from_value(json!({"pii": ["email"], "action": "audit", "kinds": {"email": "block"}})).unwrap();
        assert!(p.secrets);
        assert_eq!(p.action_for("email", Class::Pii), OutputAction::Block);
        assert_eq!(p.action_for("jwt", Class::Secret), OutputAction::Audit);
        assert!(p.validate().is_ok());
        assert!(serde_json::from_value::<OutputPolicy>(json!({"pii": ["card"]})).is_err());
        assert!(serde_json::from_value::<OutputPolicy>(json!({"secret": true})).is_err());
        let bad = OutputPolicy {
            kinds: BTreeMap::from([("nope".to_string(), OutputAction::Block)]),
            ..OutputPolicy::baseline()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn scan_text_reports_ranges() {
        let t = format!("x {} y bob@example.com", aws());
        let m = scan_text(&t);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].kind, &t[m[0].range.clone()]), ("aws_access_key", aws().as_str()));
        assert_eq!((m[1].kind, m[1].class), ("email", Class::Pii));
    }

    #[test]
    fn secret_rule_kinds_are_listed() {
        // Every kind a rule can report is a valid `kinds` key.
        for k in SECRET_KINDS {
            assert!(
                OutputPolicy {
                    kinds: BTreeMap::from([(k.to_string(), OutputAction::Audit)]),
                    ..OutputPolicy::baseline()
                }
                .validate()
                .is_ok()
            );
        }
    }
}
