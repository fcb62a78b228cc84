//! Output protection of any JSON a model or client will read: tool results, `resources/read`
//! contents, `prompts/get` messages, JSON-RPC error objects, notifications and server→client
//! request params.
//!
//! Three passes over the value:
//! 1. every string value and every object key is scanned (ANSI stripped first); base64 and hex
//!    runs that decode to text are scanned too, and a run holding a secret is itself a value
//!    to redact;
//! 2. the text items of each array (`content[]`, `messages[]`, `contents[]`) are joined and
//!    scanned again, so a secret split over two adjacent items is found; the pieces are
//!    redacted where they are;
//! 3. every occurrence of every value to redact is replaced with `[REDACTED:kind]` wherever it
//!    is, keys included, so `structuredContent` and its text copy stay consistent. A string
//!    that is wholly base64 or hex of text (a resource `blob`) is decoded, redacted and encoded
//!    again the same way, so it stays a valid blob.
//!
//! Every limit that stops a pass early sets [`OutputReport::incomplete`]; nothing that was not
//! looked at is reported as clean.

use std::collections::{BTreeMap, BTreeSet};

use aho_corasick::{AhoCorasick, MatchKind};
use serde_json::{Map, Value};

use super::decode::{self, Encoding};
use super::output::{Class, OutputAction, OutputFinding, OutputPolicy, OutputReport, class_of, matches};
use super::text;
use super::walk::{Node, walk};

/// Containers nested deeper than this are not entered (the relay parses about 1024 levels).
pub const MAX_JSON_DEPTH: usize = 2048;
/// Text decoded from base64 or hex is itself searched for encoded runs this many times.
const MAX_DECODE_LEVELS: usize = 3;
/// Locations longer than this are cut (deep JSON makes long paths).
const MAX_LOCATION: usize = 512;

/// Scans and protects `value` in place; see the module documentation.
pub fn redact_json(value: &mut Value, policy: &OutputPolicy) -> OutputReport {
    let mut report = OutputReport::default();
    if !policy.is_active() {
        return report;
    }
    let mut c = Collector {
        policy,
        report: &mut report,
        budget: policy.max_total_bytes,
        values: BTreeMap::new(),
        decoded_secret: false,
        pieces: 0,
    };
    let complete = walk(value, MAX_JSON_DEPTH, &mut |node, loc| match node {
        Node::Str(s) => c.value(s, loc),
        Node::Obj(map) => {
            for k in map.keys() {
                c.key(k, loc);
            }
        }
        Node::Arr(items) => c.adjacent(items, loc),
    });
    if !complete {
        c.incomplete("depth");
    }
    let Collector {
        values, decoded_secret, ..
    } = c;
    replace_everywhere(value, values, decoded_secret, policy, &mut report);
    report.blocked = report.findings.iter().any(|f| f.action == OutputAction::Block);
    report.truncated = report.incomplete;
    report
}

struct Collector<'a> {
    policy: &'a OutputPolicy,
    report: &'a mut OutputReport,
    budget: usize,
    /// value → kind, for the values to redact.
    values: BTreeMap<String, &'static str>,
    /// Some base64 or hex text held a value to redact: pass 3 decodes whole-string blobs.
    decoded_secret: bool,
    /// Pieces of split secrets redacted in place by pass 2.
    pieces: usize,
}

fn location(loc: &str, suffix: &str) -> String {
    let (short, cut) = super::clip(loc, MAX_LOCATION);
    let mut out = String::with_capacity(short.len() + suffix.len() + 3);
    out.push_str(short);
    if cut {
        out.push_str("...");
    }
    out.push_str(suffix);
    out
}

impl Collector<'_> {
    fn scanning(&self) -> bool {
        self.policy.secrets || !self.policy.pii.is_empty()
    }

    fn incomplete(&mut self, why: &'static str) {
        self.report.incomplete = true;
        self.report.incomplete_reasons.insert(why);
    }

    fn value(&mut self, s: &mut String, loc: &str) {
        if self.policy.strip_ansi {
            let n = text::ansi_ranges(s).len();
            if n > 0 {
                *s = text::strip_ansi(s).into_owned();
                self.report.ansi_stripped += n;
                self.report.findings.push(OutputFinding {
                    kind: "ansi_escape",
                    class: Class::Ansi,
                    location: location(loc, ""),
                    action: OutputAction::Redact,
                });
            }
        }
        if self.scanning() {
            self.text(s, &location(loc, ""), 0);
        }
    }

    fn key(&mut self, k: &str, loc: &str) {
        if !self.scanning() {
            return;
        }
        let mut at = String::from(loc);
        if !at.is_empty() {
            at.push('.');
        }
        super::walk::push_segment(&mut at, k);
        let at = location(&at, "#key");
        let stripped = text::strip_ansi(k);
        self.text(&stripped, &at, 0);
    }

    /// Scans one text (a string, a key, or decoded text at `level` > 0); returns whether it
    /// held a value to redact.
    fn text(&mut self, s: &str, loc: &str, level: usize) -> bool {
        if s.is_empty() {
            return false;
        }
        if self.budget == 0 {
            self.incomplete("size");
            return false;
        }
        let (scanned, clipped) = super::clip(s, self.policy.max_string_bytes.min(self.budget));
        if clipped {
            self.incomplete("size");
        }
        self.budget -= scanned.len();
        let (found, capped) = matches(scanned, self.policy.secrets, &self.policy.pii);
        if capped {
            self.incomplete("count");
        }
        let mut any = false;
        let mut kinds_here: BTreeSet<&'static str> = BTreeSet::new();
        for m in found {
            let action = self.policy.action_for(m.kind, m.class);
            if action == OutputAction::Redact && !m.range.is_empty() {
                self.values
                    .entry(scanned[m.range.clone()].to_string())
                    .or_insert(m.kind);
                any = true;
            }
            if kinds_here.insert(m.kind) {
                self.report.findings.push(OutputFinding {
                    kind: m.kind,
                    class: m.class,
                    location: loc.to_string(),
                    action,
                });
            }
        }
        // Text hidden in an encoding: a whole blob, or runs inside the text.
        let whole = decode::whole(scanned);
        let runs = if whole.is_some() {
            Vec::new()
        } else {
            decode::runs(scanned)
        };
        if (whole.is_some() || !runs.is_empty()) && level >= MAX_DECODE_LEVELS {
            self.incomplete("decode depth");
            return any;
        }
        if let Some((encoding, decoded)) = whole {
            let at = format!("{loc}#{}", encoding_name(encoding));
            if self.text(&decoded, &at, level + 1) {
                self.decoded_secret = true;
                any = true;
            }
        }
        for run in runs {
            let at = format!("{loc}#{}", encoding_name(run.encoding));
            let before = self.values.len();
            if self.text(&run.text, &at, level + 1) {
                let kind = self
                    .values
                    .iter()
                    .find(|(v, _)| run.text.contains(v.as_str()))
                    .map(|(_, k)| *k)
                    .unwrap_or("encoded_secret");
                self.values
                    .entry(scanned[run.range.clone()].to_string())
                    .or_insert(kind);
                self.decoded_secret = true;
                any = true;
            }
            let _ = before;
        }
        any
    }

    /// Joins the text of adjacent items of one array and redacts secrets that only exist
    /// across an item boundary.
    fn adjacent(&mut self, items: &mut [Value], loc: &str) {
        if !self.scanning() || items.len() < 2 {
            return;
        }
        // Runs of consecutive items that carry text.
        let mut start = 0;
        while start < items.len() {
            if item_text(&items[start]).is_none() {
                start += 1;
                continue;
            }
            let mut end = start;
            while end < items.len() && item_text(&items[end]).is_some() {
                end += 1;
            }
            if end - start >= 2 {
                self.join_run(&mut items[start..end], start, loc);
            }
            start = end;
        }
    }

    fn join_run(&mut self, run: &mut [Value], first_index: usize, loc: &str) {
        let mut joined = String::new();
        let mut bounds = Vec::with_capacity(run.len());
        for item in run.iter() {
            let t = item_text(item).unwrap_or("");
            bounds.push(joined.len()..joined.len() + t.len());
            joined.push_str(t);
        }
        if joined.len() > self.policy.max_total_bytes {
            self.incomplete("size");
            return;
        }
        let (found, capped) = matches(&joined, self.policy.secrets, &self.policy.pii);
        if capped {
            self.incomplete("count");
        }
        // item index → (range in its text, kind), for the pieces to redact in place.
        let mut cuts: BTreeMap<usize, Vec<(std::ops::Range<usize>, &'static str)>> = BTreeMap::new();
        for m in found {
            let touched: Vec<usize> = (0..bounds.len())
                .filter(|&i| bounds[i].start < m.range.end && m.range.start < bounds[i].end)
                .collect();
            if touched.len() < 2 {
                continue;
            }
            let action = self.policy.action_for(m.kind, m.class);
            for &i in &touched {
                let b = &bounds[i];
                let piece = m.range.start.max(b.start) - b.start..m.range.end.min(b.end) - b.start;
                self.report.findings.push(OutputFinding {
                    kind: m.kind,
                    class: m.class,
                    location: location(&format!("{loc}[{}]", first_index + i), ".text#split"),
                    action,
                });
                if action == OutputAction::Redact {
                    cuts.entry(i).or_default().push((piece, m.kind));
                }
            }
            if action == OutputAction::Redact {
                self.values.entry(joined[m.range.clone()].to_string()).or_insert(m.kind);
            }
        }
        for (i, mut pieces) in cuts {
            let Some(s) = item_text_mut(&mut run[i]) else { continue };
            pieces.sort_by_key(|(r, _)| std::cmp::Reverse(r.start));
            for (r, kind) in pieces {
                if r.end <= s.len() && s.is_char_boundary(r.start) && s.is_char_boundary(r.end) {
                    s.replace_range(r, &format!("[REDACTED:{kind}]"));
                    self.pieces += 1;
                    self.report.redacted += 1;
                }
            }
        }
    }
}

fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Base64 | Encoding::Base64Url => "base64",
        Encoding::Hex => "hex",
    }
}

/// The text an array item carries: a string, a text content block, a prompt message's text
/// content, an embedded resource's text.
fn item_text(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => o
            .get("text")
            .and_then(Value::as_str)
            .or_else(|| o.get("content").and_then(|c| c.get("text")).and_then(Value::as_str))
            .or_else(|| o.get("resource").and_then(|c| c.get("text")).and_then(Value::as_str)),
        _ => None,
    }
}

fn item_text_mut(v: &mut Value) -> Option<&mut String> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(o) => {
            let key = if o.get("text").is_some_and(Value::is_string) {
                return match o.get_mut("text") {
                    Some(Value::String(s)) => Some(s),
                    _ => None,
                };
            } else if o
                .get("content")
                .and_then(|c| c.get("text"))
                .is_some_and(Value::is_string)
            {
                "content"
            } else {
                "resource"
            };
            match o.get_mut(key).and_then(|c| c.get_mut("text")) {
                Some(Value::String(s)) => Some(s),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Pass 3: every occurrence of every value to redact, in values and keys; blobs re-encoded.
fn replace_everywhere(
    value: &mut Value,
    values: BTreeMap<String, &'static str>,
    decoded_secret: bool,
    policy: &OutputPolicy,
    report: &mut OutputReport,
) {
    let strip_keys = policy.strip_ansi;
    if values.is_empty() && !strip_keys {
        return;
    }
    let (needles, kinds): (Vec<String>, Vec<&'static str>) = values.into_iter().unzip();
    let ac = if needles.is_empty() {
        None
    } else {
        match AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&needles)
        {
            Ok(ac) => Some(ac),
            Err(_) => {
                // Too many or too large values for one automaton: say so rather than leave them.
                report.incomplete = true;
                report.incomplete_reasons.insert("size");
                None
            }
        }
    };
    let mut seen: BTreeSet<(&'static str, String)> =
        report.findings.iter().map(|f| (f.kind, f.location.clone())).collect();
    let mut extra = Vec::new();
    let mut redacted = 0usize;
    let mut ansi = 0usize;
    let replace = |s: &str, redacted: &mut usize, found: &mut Vec<&'static str>| -> Option<String> {
        let ac = ac.as_ref()?;
        if !ac.is_match(s) {
            return None;
        }
        let mut out = String::with_capacity(s.len());
        let mut last = 0;
        for m in ac.find_iter(s) {
            let kind = kinds[m.pattern().as_usize()];
            out.push_str(&s[last..m.start()]);
            out.push_str("[REDACTED:");
            out.push_str(kind);
            out.push(']');
            last = m.end();
            *redacted += 1;
            found.push(kind);
        }
        out.push_str(&s[last..]);
        Some(out)
    };
    walk(value, MAX_JSON_DEPTH, &mut |node, loc| match node {
        Node::Str(s) => {
            let mut found = Vec::new();
            if decoded_secret
                && let Some((encoding, text)) = decode::whole(s)
                && let Some(clean) = replace(&text, &mut redacted, &mut found)
            {
                let padded = s.trim_end().ends_with('=');
                *s = decode::encode(encoding, padded, &clean);
            } else if let Some(clean) = replace(s, &mut redacted, &mut found) {
                *s = clean;
            }
            for kind in found {
                let at = location(loc, "");
                if seen.insert((kind, at.clone())) {
                    extra.push(OutputFinding {
                        kind,
                        class: class_of(kind),
                        location: at,
                        action: OutputAction::Redact,
                    });
                }
            }
        }
        Node::Obj(map) => {
            let needs = map.keys().any(|k| {
                (strip_keys && !text::ansi_ranges(k).is_empty()) || ac.as_ref().is_some_and(|ac| ac.is_match(k))
            });
            if !needs {
                return;
            }
            let old = std::mem::take(map);
            let mut renamed = Map::new();
            for (k, v) in old {
                let mut key = k;
                if strip_keys {
                    let n = text::ansi_ranges(&key).len();
                    if n > 0 {
                        ansi += n;
                        key = text::strip_ansi(&key).into_owned();
                    }
                }
                let mut found = Vec::new();
                if let Some(clean) = replace(&key, &mut redacted, &mut found) {
                    key = clean;
                }
                for kind in found {
                    let mut at = String::from(loc);
                    if !at.is_empty() {
                        at.push('.');
                    }
                    super::walk::push_segment(&mut at, &key);
                    let at = location(&at, "#key");
                    if seen.insert((kind, at.clone())) {
                        extra.push(OutputFinding {
                            kind,
                            class: class_of(kind),
                            location: at,
                            action: OutputAction::Redact,
                        });
                    }
                }
                // Two keys redacted to the same text stay two entries.
                let mut unique = key.clone();
                let mut n = 2;
                while renamed.contains_key(&unique) {
                    unique = format!("{key}#{n}");
                    n += 1;
                }
                renamed.insert(unique, v);
            }
            *map = renamed;
        }
        Node::Arr(_) => {}
    });
    report.redacted += redacted;
    report.ansi_stripped += ansi;
    report.findings.extend(extra);
}
