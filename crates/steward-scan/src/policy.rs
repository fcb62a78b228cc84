//! What a policy file says about tool definitions: `scan: { block: HIGH, warn: MEDIUM }` and
//! `on_drift: block | warn`. (Output protection is [`super::OutputPolicy`], the `redact:` block.)

use serde::{Deserialize, Serialize};

use super::Severity;
use super::describe::Finding;

/// Severity thresholds for description and shadowing findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScanPolicy {
    /// Tools with a finding at or above this are left out of `tools/list` and their calls
    /// denied; `None` never blocks.
    pub block: Option<Severity>,
    /// Findings at or above this (and below `block`) are audited; the tool stays.
    pub warn: Option<Severity>,
}

impl Default for ScanPolicy {
    /// The baseline: block HIGH, warn MEDIUM.
    fn default() -> Self {
        ScanPolicy {
            block: Some(Severity::High),
            warn: Some(Severity::Medium),
        }
    }
}

/// What to do with a listed tool, given its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanVerdict {
    /// Nothing at or above `warn`.
    Pass,
    /// Keep the tool, audit the findings.
    Warn,
    /// Hide the tool, deny its calls, audit the findings.
    Block,
}

impl ScanPolicy {
    /// The verdict for the most severe of `findings`.
    pub fn verdict(&self, findings: &[Finding]) -> ScanVerdict {
        self.verdict_for(findings.iter().map(|f| f.severity).max())
    }

    /// The verdict for a finding of `severity` (`None`: no finding).
    pub fn verdict_for(&self, severity: Option<Severity>) -> ScanVerdict {
        let Some(s) = severity else { return ScanVerdict::Pass };
        if self.block.is_some_and(|b| s >= b) {
            ScanVerdict::Block
        } else if self.warn.is_some_and(|w| s >= w) {
            ScanVerdict::Warn
        } else {
            ScanVerdict::Pass
        }
    }
}

/// What a drifted tool (its fingerprint differs from its pin) leads to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftAction {
    /// Hide the tool and deny its calls until `steward pins approve` (the default).
    #[default]
    Block,
    /// Keep the tool usable; audit the drift.
    Warn,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(severity: Severity) -> Finding {
        Finding {
            kind: "x",
            severity,
            location: "description".into(),
            message: String::new(),
        }
    }

    #[test]
    fn thresholds() {
        let p = ScanPolicy::default();
        assert_eq!(p.verdict(&[]), ScanVerdict::Pass);
        assert_eq!(p.verdict(&[finding(Severity::Low)]), ScanVerdict::Pass);
        assert_eq!(
            p.verdict(&[finding(Severity::Low), finding(Severity::Medium)]),
            ScanVerdict::Warn
        );
        assert_eq!(p.verdict(&[finding(Severity::High)]), ScanVerdict::Block);
        let lax = ScanPolicy {
            block: None,
            warn: Some(Severity::Low),
        };
        assert_eq!(lax.verdict(&[finding(Severity::High)]), ScanVerdict::Warn);
        let strict = ScanPolicy {
            block: Some(Severity::Medium),
            warn: None,
        };
        assert_eq!(strict.verdict(&[finding(Severity::Medium)]), ScanVerdict::Block);
        assert_eq!(strict.verdict(&[finding(Severity::Low)]), ScanVerdict::Pass);
    }

    #[test]
    fn parses_the_policy_keys() {
        let p: ScanPolicy = serde_json::from_str(r#"{"block": "HIGH", "warn": "MEDIUM"}"#).unwrap();
        assert_eq!(p, ScanPolicy::default());
        let p: ScanPolicy = serde_json::from_str(r#"{"warn": "LOW"}"#).unwrap();
        assert_eq!(
            p,
            ScanPolicy {
                block: Some(Severity::High),
                warn: Some(Severity::Low)
            }
        );
        let p: ScanPolicy = serde_json::from_str(r#"{"block": null}"#).unwrap();
        assert_eq!(p.block, None);
        assert!(serde_json::from_str::<ScanPolicy>(r#"{"blok": "HIGH"}"#).is_err());
        assert!(serde_json::from_str::<ScanPolicy>(r#"{"block": "CRITICAL"}"#).is_err());
        assert_eq!(
            serde_json::from_str::<DriftAction>(r#""warn""#).unwrap(),
            DriftAction::Warn
        );
        assert_eq!(DriftAction::default(), DriftAction::Block);
    }
}
