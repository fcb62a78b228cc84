//! Destructive SQL: statements that drop, truncate or delete without a WHERE clause.

use std::sync::LazyLock;

use crate::model::Risk;

static KEYWORDS: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"(?i)\b(drop|truncate|delete|alter|update)\b").expect("a valid constant pattern"));

pub(crate) fn scan(s: &str, out: &mut super::Scan) {
    // Cheap gate: only strings that mention a destructive keyword are split into statements.
    if !KEYWORDS.is_match(s) {
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
