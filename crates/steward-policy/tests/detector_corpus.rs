//! Precision and recall of the built-in detectors on a labelled corpus of dangerous commands
//! (obfuscated ones included) and benign look-alikes: `tests/data/detector_corpus.tsv`.

use steward_policy::detect::Detectors;

const CORPUS: &str = include_str!("data/detector_corpus.tsv");

/// Floors the detectors must keep: lowering them needs a reason in review.
const MIN_PRECISION: f64 = 0.97;
const MIN_RECALL: f64 = 0.95;

#[test]
fn detectors_meet_their_precision_and_recall_floors() {
    let detectors = Detectors::builtin();
    let (mut tp, mut fp, mut tn, mut fn_) = (0u32, 0u32, 0u32, 0u32);
    let mut wrong_flag = Vec::new();
    let mut misses = Vec::new();
    for (n, line) in CORPUS.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, '\t');
        let (Some(label), Some(flag), Some(text)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("line {}: expected LABEL<TAB>FLAG<TAB>TEXT: {line:?}", n + 1);
        };
        let found = detectors.scan_str(text);
        let flagged = !found.is_empty();
        match (label, flagged) {
            ("D", true) => {
                tp += 1;
                if !found.iter().any(|f| f.flag == flag) {
                    wrong_flag.push(format!(
                        "line {}: {text:?} expected {flag}, got {:?}",
                        n + 1,
                        found.iter().map(|f| f.flag.as_ref()).collect::<Vec<_>>()
                    ));
                }
            }
            ("D", false) => {
                fn_ += 1;
                misses.push(format!("missed (line {}): {text:?} ({flag})", n + 1));
            }
            ("B", true) => {
                fp += 1;
                misses.push(format!("false alarm (line {}): {text:?}: {:?}", n + 1, found));
            }
            ("B", false) => tn += 1,
            _ => panic!("line {}: label must be D or B", n + 1),
        }
    }
    let precision = f64::from(tp) / f64::from(tp + fp);
    let recall = f64::from(tp) / f64::from(tp + fn_);
    println!("detector corpus: {} dangerous, {} benign", tp + fn_, tn + fp);
    println!("  true positives {tp}, false negatives {fn_}, false positives {fp}, true negatives {tn}");
    println!(
        "  precision {precision:.3}, recall {recall:.3}, right flag on {} of {tp} detections",
        tp as usize - wrong_flag.len()
    );
    for m in &misses {
        println!("  {m}");
    }
    for w in &wrong_flag {
        println!("  wrong flag: {w}");
    }
    assert!(
        tp + fn_ + tn + fp >= 150,
        "the corpus must keep at least 150 labelled lines"
    );
    assert!(precision >= MIN_PRECISION, "precision {precision:.3} < {MIN_PRECISION}");
    assert!(recall >= MIN_RECALL, "recall {recall:.3} < {MIN_RECALL}");
    assert!(
        wrong_flag.is_empty(),
        "detections under the wrong flag: {wrong_flag:#?}"
    );
}
