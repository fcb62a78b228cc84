//! Inspecting what servers send, not what clients ask: tool definitions at `tools/list` time
//! ([`describe`]), tool results, resources and prompts on their way back ([`output`]), and the
//! redaction of secrets from arguments before they are audited ([`redact`]), on the same rules.
//!
//! Everything here is pure and synchronous: callers pass the JSON and enforce what comes back.
//! Findings name a kind and a location, never the text that matched, so they can go to the
//! audit log as they are.

mod decode;
pub mod describe;
mod instructions;
pub mod output;
mod pii;
mod policy;
pub mod redact;
mod redact_json;
mod secrets;
mod text;
mod urls;
mod views;
mod walk;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use describe::{
    ANALYSIS_INCOMPLETE, Finding, ServerTools, ShadowFinding, max_severity, scan_prompt, scan_prompt_result,
    scan_resource, scan_tool, scan_tools_list, shadowing,
};
pub use output::{
    Class, MAX_RESULT_BYTES, OutputAction, OutputFinding, OutputPolicy, OutputReport, PiiKind, SECRET_KINDS, TextMatch,
    redact_result, scan_text, strip_ansi,
};
pub use policy::{DriftAction, ScanPolicy, ScanVerdict};
pub use redact_json::{MAX_JSON_DEPTH, redact_json};

/// Strings longer than this are scanned up to this many bytes only (the report says so).
pub const MAX_SCAN_BYTES: usize = 1024 * 1024;

/// How serious a finding is. Ordered from least to most serious; written `LOW`, `MEDIUM`,
/// `HIGH` in policy files and audit events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Severity {
    Low,
    Medium,
    High,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Low, Severity::Medium, Severity::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "LOW",
            Severity::Medium => "MEDIUM",
            Severity::High => "HIGH",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "LOW" => Ok(Severity::Low),
            "MEDIUM" => Ok(Severity::Medium),
            "HIGH" => Ok(Severity::High),
            _ => Err(format!("unknown severity '{s}' (expected LOW, MEDIUM or HIGH)")),
        }
    }
}

/// The longest prefix of `s` that is at most `max` bytes and ends on a character boundary.
pub(crate) fn clip(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_orders_and_parses() {
        assert!(Severity::Low < Severity::Medium && Severity::Medium < Severity::High);
        assert_eq!("high".parse::<Severity>().unwrap(), Severity::High);
        assert!("CRITICAL".parse::<Severity>().is_err());
        assert_eq!(serde_json::to_string(&Severity::Medium).unwrap(), "\"MEDIUM\"");
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("héllo", 2), ("h", true));
        assert_eq!(clip("héllo", 3), ("hé", true));
        assert_eq!(clip("abc", 3), ("abc", false));
    }
}
