//! Destructive SQL: statements that drop, truncate or delete without a WHERE clause.

use std::sync::LazyLock;

use crate::model::Risk;

/// The destructive keywords as whole words, in any case: a gate that keeps most strings from
/// being split into statements (a literal search, so the regex engine's SIMD prefilter runs it).
static KEYWORDS: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b(drop|truncate|delete|alter|update)\b").expect("a valid constant pattern")
});

/// `KEYWORDS` without the regex engine, for short strings.
fn mentions_keyword(s: &str) -> bool {
    let b = s.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    (0..b.len()).any(|i| {
        matches!(b[i] | 0x20, b'd' | b't' | b'a' | b'u')
            && (i == 0 || !word(b[i - 1]))
            && [&b"drop"[..], b"delete", b"truncate", b"alter", b"update"]
                .iter()
                .any(|k| {
                    let end = i + k.len();
                    end <= b.len() && b[i..end].eq_ignore_ascii_case(k) && (end == b.len() || !word(b[end]))
                })
    })
}

pub(crate) fn scan(s: &str, out: &mut super::Scan) {
    // Cheap gate: only strings that mention a destructive keyword are split into statements.
    // Short strings: a plain loop beats the regex engine's per-search setup.
    let mentioned = if s.len() < 64 {
        mentions_keyword(s)
    } else {
        KEYWORDS.is_match(s)
    };
    if !mentioned {
        return;
    }
    let upper = s.to_ascii_uppercase();
    for statement in upper.split(';') {
        let stripped = strip_comments(statement);
        let words: Vec<&str> = stripped.split_whitespace().collect();
        let Some(first) = words.first() else { continue };
        let has_where = words.contains(&"WHERE");
        let destructive = match *first {
            "DROP" => matches!(
                words.get(1).copied(),
                Some("TABLE" | "DATABASE" | "SCHEMA" | "VIEW" | "INDEX" | "USER" | "ROLE" | "COLLECTION")
            ),
            "TRUNCATE" => true,
            "DELETE" => words.get(1) == Some(&"FROM") && !has_where,
            "UPDATE" => words.get(2) == Some(&"SET") && !has_where,
            "ALTER" => words.get(1) == Some(&"TABLE") && words.contains(&"DROP"),
            _ => false,
        };
        if destructive {
            let detail: String = words.iter().take(4).copied().collect::<Vec<_>>().join(" ");
            out.push("destructive-sql", Risk::High, detail);
        }
    }
}

fn strip_comments(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len());
    let mut rest = statement;
    loop {
        let rest_trim = rest.trim_start();
        if let Some(after) = rest_trim.strip_prefix("--") {
            rest = after.split_once('\n').map(|(_, r)| r).unwrap_or("");
        } else if let Some(after) = rest_trim.strip_prefix("/*") {
            rest = after.split_once("*/").map(|(_, r)| r).unwrap_or("");
        } else {
            out.push_str(rest_trim);
            return out;
        }
    }
}
