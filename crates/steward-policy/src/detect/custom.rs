//! Detectors a policy defines: regular expressions or word lists, each raising a flag and a
//! risk floor.

use std::borrow::Cow;

use super::Scan;
use super::tree::Cmd;
use crate::model::Risk;

/// Compiled regular expressions larger than this are refused (a policy must not make every
/// decision slow, nor loading take unbounded memory).
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A policy-defined detector, compiled.
#[derive(Debug, Clone)]
pub struct CustomDetector {
    name: String,
    flag: String,
    risk: Risk,
    regexes: Vec<regex::Regex>,
    /// Phrases, each a sequence of lowercase words.
    words: Vec<Vec<String>>,
}

/// A custom detector that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomError {
    /// Which `regex` entry failed.
    pub index: usize,
    pub message: String,
}

impl CustomDetector {
    /// Compiles a detector. `regexes` match the raw string and each command of it after quote
    /// removal (words joined by one space); `words` are phrases matched against consecutive shell
    /// words, ignoring ASCII case (a program also matches by its base name: `/sbin/reboot`).
    pub fn new(
        name: &str,
        flag: &str,
        risk: Risk,
        regexes: &[String],
        words: &[String],
    ) -> Result<CustomDetector, CustomError> {
        let regexes = regexes
            .iter()
            .enumerate()
            .map(|(index, r)| {
                regex::RegexBuilder::new(r)
                    .size_limit(REGEX_SIZE_LIMIT)
                    .build()
                    .map_err(|e| CustomError {
                        index,
                        message: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let words = words
            .iter()
            .map(|p| p.split_whitespace().map(str::to_ascii_lowercase).collect::<Vec<_>>())
            .filter(|p| !p.is_empty())
            .collect();
        Ok(CustomDetector {
            name: name.to_string(),
            flag: flag.to_string(),
            risk,
            regexes,
            words,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn flag(&self) -> &str {
        &self.flag
    }

    pub fn risk(&self) -> Risk {
        self.risk
    }

    /// `text`: the string after quote removal: each command's words joined by one space.
    pub(crate) fn scan(&self, raw: &str, text: &str, commands: &[Cmd], scan: &mut Scan) {
        if let Some(detail) = self.find(raw, text, commands) {
            scan.push_flag(Cow::Owned(self.flag.clone()), self.risk, detail);
        }
    }

    fn find(&self, raw: &str, text: &str, commands: &[Cmd]) -> Option<String> {
        if let Some(re) = self.regexes.iter().find(|re| re.is_match(raw) || re.is_match(text)) {
            return Some(format!("{}: /{}/", self.name, re.as_str()));
        }
        for phrase in &self.words {
            for cmd in commands {
                if cmd
                    .words
                    .windows(phrase.len())
                    .any(|w| w.iter().zip(phrase).all(|(word, p)| same_word(word, p)))
                {
                    return Some(format!("{}: {}", self.name, phrase.join(" ")));
                }
            }
        }
        None
    }
}

/// `word` is `lower` ignoring ASCII case, or a path whose last component is.
fn same_word(word: &str, lower: &str) -> bool {
    if word.len() < lower.len() {
        return false;
    }
    let tail = &word.as_bytes()[word.len() - lower.len()..];
    tail.eq_ignore_ascii_case(lower.as_bytes())
        && (word.len() == lower.len() || word.as_bytes()[word.len() - lower.len() - 1] == b'/')
}
