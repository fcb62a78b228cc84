//! Precision, recall and false-positive rate of the description and output scanners, per class
//! and plain vs obfuscated, on the tuning corpora and on the HELD-ASIDE corpora
//! (`tests/data/held_aside/`), which were written once, before the detectors were reworked,
//! and are never used to tune them. The held-aside numbers are the ones asserted:
//! - descriptions: recall >= 0.90 at `block: HIGH`, false-positive rate <= 0.05;
//! - outputs: record recall >= 0.97, false-positive rate <= 0.05.
//!
//! Run with `--nocapture` to see the tables.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Value, json};
use steward_scan::{self as scan, Class, OutputAction, OutputPolicy, Severity};

fn data(file: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Counts for one class: true/false positives and negatives.
#[derive(Default, Clone, Copy)]
struct Counts {
    tp: usize,
    fn_: usize,
    fp: usize,
    tn: usize,
}

impl Counts {
    fn add(&mut self, positive: bool, flagged: bool) {
        match (positive, flagged) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }
    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    fn fpr(&self) -> f64 {
        ratio(self.fp, self.fp + self.tn)
    }
    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    fn merge(&mut self, o: Counts) {
        self.tp += o.tp;
        self.fn_ += o.fn_;
        self.fp += o.fp;
        self.tn += o.tn;
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { f64::NAN } else { a as f64 / b as f64 }
}

struct Table {
    title: String,
    rows: BTreeMap<String, Counts>,
    misses: Vec<String>,
}

impl Table {
    fn new(title: &str) -> Table {
        Table {
            title: title.into(),
            rows: BTreeMap::new(),
            misses: Vec::new(),
        }
    }
    fn add(&mut self, class: &str, obfuscated: bool, positive: bool, flagged: bool, id: &str) {
        let variant = if obfuscated { "obfuscated" } else { "plain" };
        self.rows
            .entry(format!("{class} ({variant})"))
            .or_default()
            .add(positive, flagged);
        self.rows
            .entry(format!("~ all {variant}"))
            .or_default()
            .add(positive, flagged);
        if positive != flagged {
            self.misses
                .push(format!("{} {id}", if positive { "missed" } else { "false alarm" }));
        }
    }
    fn total(&self) -> Counts {
        let mut t = Counts::default();
        for (k, c) in &self.rows {
            if k.starts_with("~ all") {
                t.merge(*c);
            }
        }
        t
    }
    /// Prints the table; the held-aside tables never list their misses, so nobody tunes on them.
    fn print(&self) {
        eprintln!("\n{}", self.title);
        eprintln!(
            "  {:<44} {:>4} {:>4} {:>4} {:>4}  {:>9} {:>6} {:>5}",
            "class", "tp", "fn", "fp", "tn", "precision", "recall", "fpr"
        );
        let t = self.total();
        for (k, c) in self.rows.iter().chain(std::iter::once((&"~ all".to_string(), &t))) {
            eprintln!(
                "  {:<44} {:>4} {:>4} {:>4} {:>4}  {:>9.3} {:>6.3} {:>5.3}",
                k,
                c.tp,
                c.fn_,
                c.fp,
                c.tn,
                c.precision(),
                c.recall(),
                c.fpr()
            );
        }
        if !self.title.contains("HELD-ASIDE") {
            for m in &self.misses {
                eprintln!("    {m}");
            }
        }
    }
}

fn high(tool: &Value) -> bool {
    scan::max_severity(&scan::scan_tool(tool)) == Some(Severity::High)
}

fn describe_table(title: &str, samples: &[Value]) -> Table {
    let mut t = Table::new(title);
    for s in samples {
        let positive = s["label"] == "poisoned";
        t.add(
            s["class"].as_str().unwrap_or("?"),
            s["obfuscated"].as_bool().unwrap_or(false),
            positive,
            high(&s["tool"]),
            s["id"].as_str().unwrap_or("?"),
        );
    }
    t
}

/// The tuning corpora in one list: the original labelled files and the grown one.
fn tuning_descriptions() -> Vec<Value> {
    let mut out = Vec::new();
    for s in data("poisoned_tools.json")["samples"].as_array().unwrap() {
        out.push(json!({"id": s["id"], "label": "poisoned", "class": s["technique"], "obfuscated": false, "tool": s["tool"]}));
    }
    for s in data("benign_tools.json")["samples"].as_array().unwrap() {
        out.push(json!({"id": s["tool"]["name"], "label": "benign", "class": "benign", "obfuscated": false, "tool": s["tool"]}));
    }
    if let Some(grown) = data("describe_tuning.json")["samples"].as_array() {
        out.extend(grown.iter().cloned());
    }
    out
}

/// Whether `text` (as a tool result) loses every one of `secrets` under redaction.
fn redacted_all(text: &str, secrets: &[&str]) -> bool {
    let mut v = json!({"content": [{"type": "text", "text": text}]});
    scan::redact_json(&mut v, &OutputPolicy::all(OutputAction::Redact));
    let out = v["content"][0]["text"].as_str().unwrap_or("").to_string();
    !secrets.is_empty() && secrets.iter().all(|s| !out.contains(s))
}

fn flags_anything(text: &str) -> bool {
    let mut v = json!({"content": [{"type": "text", "text": text}]});
    let r = scan::redact_json(&mut v, &OutputPolicy::all(OutputAction::Redact));
    r.findings.iter().any(|f| f.class != Class::Ansi)
}

fn output_table(title: &str, corpus: &Value) -> Table {
    let mut t = Table::new(title);
    for p in corpus["positives"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        let class = p["class"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| p["kinds"][0].as_str().unwrap_or("?").to_string());
        let found = match p["secrets"].as_array() {
            Some(secrets) => redacted_all(text, &secrets.iter().filter_map(Value::as_str).collect::<Vec<_>>()),
            None => {
                let got: Vec<&str> = scan::scan_text(text).iter().map(|m| m.kind).collect();
                p["kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|k| got.contains(&k.as_str().unwrap()))
            }
        };
        let id = p["id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| text.chars().take(40).collect());
        t.add(&class, p["obfuscated"].as_bool().unwrap_or(false), true, found, &id);
    }
    for n in corpus["negatives"].as_array().unwrap() {
        let text = n["text"].as_str().unwrap();
        let class = n["class"].as_str().unwrap_or("negative");
        let id = n["id"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| text.chars().take(40).collect());
        t.add(class, false, false, flags_anything(text), &id);
    }
    t
}

#[test]
fn descriptions_on_the_tuning_corpus() {
    let t = describe_table("descriptions, tuning corpus (block: HIGH)", &tuning_descriptions());
    t.print();
}

#[test]
fn descriptions_on_the_held_aside_corpus() {
    let corpus = data("held_aside/descriptions.json");
    let t = describe_table(
        "descriptions, HELD-ASIDE corpus (block: HIGH)",
        corpus["samples"].as_array().unwrap(),
    );
    t.print();
    let total = t.total();
    assert!(total.tp + total.fn_ >= 60 && total.fp + total.tn >= 40);
    assert!(
        total.recall() >= 0.90,
        "held-aside description recall {:.3}",
        total.recall()
    );
    assert!(total.fpr() <= 0.05, "held-aside description FPR {:.3}", total.fpr());
}

#[test]
fn outputs_on_the_tuning_corpus() {
    for file in ["output_corpus.json", "output_tuning.json"] {
        output_table(&format!("outputs, tuning corpus {file}"), &data(file)).print();
    }
}

#[test]
fn outputs_on_the_held_aside_corpus() {
    let t = output_table("outputs, HELD-ASIDE corpus", &data("held_aside/outputs.json"));
    t.print();
    let total = t.total();
    assert!(total.tp + total.fn_ >= 50 && total.fp + total.tn >= 40);
    assert!(
        total.recall() >= 0.97,
        "held-aside output record recall {:.3}",
        total.recall()
    );
    assert!(total.fpr() <= 0.05, "held-aside output FPR {:.3}", total.fpr());
}
