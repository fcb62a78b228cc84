//! Precision, recall and false-positive rate of the built-in command detectors on labelled
//! corpora of dangerous commands and benign look-alikes, per class and per form (plain or
//! obfuscated):
//! - `tests/data/commands_tuning.tsv`: the rules may be fitted to it;
//! - `tests/data/commands_held_aside.tsv`: never tuned against; its figures predict how the
//!   detectors do on commands nobody here wrote. The goals are asserted on it.
//!
//! A line counts as detected when a finding raises the call to HIGH or above (what makes the
//! baseline policy hold or deny it). Run with `--nocapture` to see the tables and every miss.

use std::collections::BTreeMap;

use steward_policy::Risk;
use steward_policy::detect::Detectors;

const TUNING: &str = include_str!("data/commands_tuning.tsv");
const HELD_ASIDE: &str = include_str!("data/commands_held_aside.tsv");

/// The goals on the held-aside part (issue 12).
const HELD_MIN_RECALL: f64 = 0.95;
const HELD_MAX_FPR: f64 = 0.05;
/// Floors on the tuning part: lowering them needs a reason in review.
const TUNING_MIN_RECALL: f64 = 0.97;
const TUNING_MAX_FPR: f64 = 0.03;
/// Each corpus part keeps at least this many lines (3 × the 277 of the first corpus, together).
const MIN_LINES: usize = 831;

#[derive(Default, Clone, Copy)]
struct Counts {
    tp: u32,
    fn_: u32,
    fp: u32,
    tn: u32,
}

impl Counts {
    fn add(&mut self, dangerous: bool, detected: bool) {
        match (dangerous, detected) {
            (true, true) => self.tp += 1,
            (true, false) => self.fn_ += 1,
            (false, true) => self.fp += 1,
            (false, false) => self.tn += 1,
        }
    }

    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    fn fpr(&self) -> f64 {
        if self.fp + self.tn == 0 {
            0.0
        } else {
            f64::from(self.fp) / f64::from(self.fp + self.tn)
        }
    }

    fn row(&self) -> String {
        format!(
            "D {:>3} B {:>3}  precision {:.3}  recall {:.3}  FPR {:.3}",
            self.tp + self.fn_,
            self.fp + self.tn,
            self.precision(),
            self.recall(),
            self.fpr()
        )
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 { 1.0 } else { f64::from(a) / f64::from(b) }
}

struct Report {
    total: Counts,
    by_form: BTreeMap<String, Counts>,
    by_class: BTreeMap<String, Counts>,
    lines: usize,
    errors: Vec<String>,
}

fn measure(name: &str, corpus: &str) -> Report {
    let detectors = Detectors::builtin();
    let mut r = Report {
        total: Counts::default(),
        by_form: BTreeMap::new(),
        by_class: BTreeMap::new(),
        lines: 0,
        errors: Vec::new(),
    };
    for (n, line) in corpus.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(4, '\t');
        let (Some(label), Some(class), Some(form), Some(text)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            panic!("{name}:{}: expected LABEL<TAB>CLASS<TAB>FORM<TAB>TEXT: {line:?}", n + 1);
        };
        assert!(matches!(label, "D" | "B"), "{name}:{}: label must be D or B", n + 1);
        assert!(
            matches!(form, "plain" | "obf"),
            "{name}:{}: form must be plain or obf",
            n + 1
        );
        let text = text.replace('\u{2424}', "\n");
        let args = serde_json::json!({ "command": text });
        let found = detectors.scan(&args);
        let top = found.iter().map(|f| f.risk).max();
        let detected = top.is_some_and(|r| r >= Risk::High);
        let dangerous = label == "D";
        r.lines += 1;
        r.total.add(dangerous, detected);
        r.by_form.entry(form.to_string()).or_default().add(dangerous, detected);
        r.by_class
            .entry(class.to_string())
            .or_default()
            .add(dangerous, detected);
        if dangerous != detected {
            let what = if dangerous { "missed" } else { "false alarm" };
            let seen: Vec<String> = found
                .iter()
                .map(|f| format!("{}@{} ({})", f.flag, f.risk, f.detail))
                .collect();
            r.errors
                .push(format!("{what} {name}:{} [{class}/{form}] {text:?} {seen:?}", n + 1));
        }
    }
    println!("== {name}: {} lines: {}", r.lines, r.total.row());
    for (form, c) in &r.by_form {
        println!("   {form:<22} {}", c.row());
    }
    for (class, c) in &r.by_class {
        println!("   {class:<22} {}", c.row());
    }
    r
}

#[test]
fn detectors_meet_their_goals_on_both_corpus_parts() {
    let tuning = measure("tuning", TUNING);
    let held = measure("held-aside", HELD_ASIDE);
    for e in &tuning.errors {
        println!("  {e}");
    }
    // The held-aside lines are not shown by default: whoever tunes the rules must not see them.
    if std::env::var_os("STEWARD_SHOW_HELD_ASIDE").is_some() {
        for e in &held.errors {
            println!("  {e}");
        }
    }
    assert!(
        tuning.lines + held.lines >= MIN_LINES,
        "the corpus must keep {MIN_LINES} lines"
    );
    assert!(
        tuning.total.recall() >= TUNING_MIN_RECALL && tuning.total.fpr() <= TUNING_MAX_FPR,
        "tuning part: {}",
        tuning.total.row()
    );
    assert!(
        held.total.recall() >= HELD_MIN_RECALL && held.total.fpr() <= HELD_MAX_FPR,
        "held-aside part: {}",
        held.total.row()
    );
}
