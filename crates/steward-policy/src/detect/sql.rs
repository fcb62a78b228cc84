//! Destructive SQL, judged on the syntax tree (sqlparser, several dialects): `DROP`, `TRUNCATE`,
//! `ALTER TABLE … DROP`, and `DELETE`/`UPDATE` without a `WHERE` or with one that is always true
//! (`1=1`, `'a'='a'`, `true`, `x=x`, `… OR 1`). Statements no dialect can parse are judged by
//! their keywords, so a parse failure never means "nothing found".

use sqlparser::ast::{BinaryOperator, Expr, ObjectType, Statement, UnaryOperator, Value};
use sqlparser::dialect::{Dialect, GenericDialect, MySqlDialect, PostgreSqlDialect, SQLiteDialect};
use sqlparser::parser::Parser;

use crate::model::Risk;

/// Statements longer than this are judged by keywords only.
const MAX_SQL_BYTES: usize = 64 * 1024;

/// The keywords a destructive statement starts with (or `WITH … DELETE`).
fn starts_destructive(statement: &str) -> bool {
    let first = statement
        .split(|c: char| c.is_whitespace() || c == '(')
        .find(|w| !w.is_empty())
        .unwrap_or("");
    ["drop", "truncate", "delete", "update", "alter", "with", "replace"]
        .iter()
        .any(|k| first.eq_ignore_ascii_case(k))
}

/// Scans `s` as SQL; `out` gets one finding per destructive statement.
pub(crate) fn scan(s: &str, out: &mut super::Scan) {
    if !mentions_keyword(s) {
        return;
    }
    let statements: Vec<String> = split_statements(s)
        .into_iter()
        .map(strip_comments)
        .filter(|st| starts_destructive(st))
        .collect();
    for st in statements {
        match parse(&st) {
            Some(parsed) => {
                for statement in &parsed {
                    if let Some(detail) = destructive(statement) {
                        out.push("destructive-sql", Risk::High, detail);
                    }
                }
            }
            None => {
                if let Some(detail) = by_keywords(&st) {
                    out.push("destructive-sql", Risk::High, detail);
                }
            }
        }
    }
}

fn parse(statement: &str) -> Option<Vec<Statement>> {
    if statement.len() > MAX_SQL_BYTES {
        return None;
    }
    let dialects: [&dyn Dialect; 4] = [
        &GenericDialect {},
        &PostgreSqlDialect {},
        &MySqlDialect {},
        &SQLiteDialect {},
    ];
    dialects.iter().find_map(|d| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Parser::parse_sql(*d, statement).ok()))
            .ok()
            .flatten()
    })
}

fn destructive(s: &Statement) -> Option<String> {
    match s {
        Statement::Drop { object_type, names, .. } => {
            let what = match object_type {
                ObjectType::Table => "TABLE",
                ObjectType::View | ObjectType::MaterializedView => "VIEW",
                ObjectType::Schema => "SCHEMA",
                ObjectType::Database => "DATABASE",
                ObjectType::Index => "INDEX",
                ObjectType::Role => "ROLE",
                ObjectType::User => "USER",
                _ => "object",
            };
            Some(format!(
                "DROP {what} {}",
                names.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(", ")
            ))
        }
        Statement::Truncate(t) => Some(format!(
            "TRUNCATE {}",
            t.table_names
                .iter()
                .map(|n| n.name.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Statement::Delete(d) => match &d.selection {
            None => Some("DELETE without WHERE".into()),
            Some(w) if truth(w) == Some(true) => Some(format!("DELETE with an always-true WHERE ({w})")),
            _ => None,
        },
        Statement::Update(u) => match &u.selection {
            None => Some(format!("UPDATE {} without WHERE", u.table)),
            Some(w) if truth(w) == Some(true) => Some(format!("UPDATE {} with an always-true WHERE ({w})", u.table)),
            _ => None,
        },
        Statement::AlterTable(a) => {
            let drops = a.operations.iter().any(|op| {
                let text = op.to_string().to_ascii_uppercase();
                text.starts_with("DROP")
            });
            drops.then(|| format!("ALTER TABLE {} DROP", a.name))
        }
        _ => None,
    }
}

/// The truth value of a WHERE clause when it does not depend on the rows: `Some(true)` for a
/// tautology, `Some(false)` for a contradiction, `None` when the rows decide.
fn truth(e: &Expr) -> Option<bool> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Boolean(b) => Some(*b),
            Value::Number(n, _) => n.parse::<f64>().ok().map(|n| n != 0.0),
            _ => None,
        },
        Expr::Nested(x) => truth(x),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => truth(expr).map(|b| !b),
        Expr::IsTrue(x) | Expr::IsNotFalse(x) => truth(x),
        Expr::IsNotNull(x) => constant(x).map(|_| true),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And => match (truth(left), truth(right)) {
                (Some(false), _) | (_, Some(false)) => Some(false),
                (Some(true), Some(true)) => Some(true),
                _ => None,
            },
            BinaryOperator::Or | BinaryOperator::Xor if *op == BinaryOperator::Or => {
                match (truth(left), truth(right)) {
                    (Some(true), _) | (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                }
            }
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Gt
            | BinaryOperator::Lt
            | BinaryOperator::GtEq
            | BinaryOperator::LtEq => {
                // The same column (or expression) on both sides: `x = x` holds for every row.
                if left.to_string() == right.to_string() && constant(left).is_none() {
                    return matches!(op, BinaryOperator::Eq | BinaryOperator::GtEq | BinaryOperator::LtEq)
                        .then_some(true);
                }
                let (a, b) = (constant(left)?, constant(right)?);
                let ord = match (&a, &b) {
                    (Const::Num(x), Const::Num(y)) => x.partial_cmp(y)?,
                    (Const::Str(x), Const::Str(y)) => x.cmp(y),
                    _ => return None,
                };
                Some(match op {
                    BinaryOperator::Eq => ord.is_eq(),
                    BinaryOperator::NotEq => ord.is_ne(),
                    BinaryOperator::Gt => ord.is_gt(),
                    BinaryOperator::Lt => ord.is_lt(),
                    BinaryOperator::GtEq => ord.is_ge(),
                    _ => ord.is_le(),
                })
            }
            _ => None,
        },
        Expr::Like {
            negated: false,
            expr,
            pattern,
            ..
        } => match (constant(expr), constant(pattern)) {
            (Some(_), Some(Const::Str(p))) if p == "%" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

enum Const {
    Num(f64),
    Str(String),
}

fn constant(e: &Expr) -> Option<Const> {
    match e {
        Expr::Nested(x) => constant(x),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok().map(Const::Num),
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(Const::Str(s.clone())),
            Value::Boolean(b) => Some(Const::Num(f64::from(u8::from(*b)))),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match constant(expr)? {
            Const::Num(n) => Some(Const::Num(-n)),
            Const::Str(_) => None,
        },
        _ => None,
    }
}

/// The keyword fallback, for statements no dialect parses.
fn by_keywords(statement: &str) -> Option<String> {
    let upper = statement.to_ascii_uppercase();
    let words: Vec<&str> = upper.split_whitespace().collect();
    let first = *words.first()?;
    let has_where = words.contains(&"WHERE");
    let destructive = match first {
        "DROP" => matches!(
            words.get(1).copied(),
            Some("TABLE" | "DATABASE" | "SCHEMA" | "VIEW" | "INDEX" | "USER" | "ROLE" | "COLLECTION" | "KEYSPACE")
        ),
        // `truncate -s 0 file` is coreutils, not SQL.
        "TRUNCATE" => words.iter().skip(1).find(|w| **w != "TABLE").is_some_and(|w| {
            w.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '"' || c == '`')
        }),
        "DELETE" => {
            words.get(1) == Some(&"FROM")
                && (!has_where || upper.contains(" OR 1") || upper.contains("1=1") || upper.contains("1 = 1"))
        }
        "UPDATE" => words.get(2) == Some(&"SET") && (!has_where || upper.contains("1=1") || upper.contains("1 = 1")),
        "ALTER" => words.get(1) == Some(&"TABLE") && words.contains(&"DROP"),
        _ => false,
    };
    destructive.then(|| words.iter().take(4).copied().collect::<Vec<_>>().join(" "))
}

/// The destructive keywords as whole words, in any case: a gate before any splitting.
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

/// Statements split at `;` outside quotes.
fn split_statements(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    let mut quote: Option<u8> = None;
    while i < b.len() {
        match (quote, b[i]) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, c @ (b'\'' | b'"' | b'`')) => quote = Some(c),
            (None, b';') => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

fn strip_comments(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len());
    let mut rest = statement;
    loop {
        let t = rest.trim_start();
        if let Some(after) = t.strip_prefix("--") {
            rest = after.split_once('\n').map(|(_, r)| r).unwrap_or("");
        } else if let Some(after) = t.strip_prefix("/*") {
            rest = after.split_once("*/").map(|(_, r)| r).unwrap_or("");
        } else {
            out.push_str(t);
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flagged(s: &str) -> bool {
        let mut found = super::super::Scan::default();
        scan(s, &mut found);
        !found.out.is_empty()
    }

    #[test]
    fn tautologies_are_judged_on_the_tree() {
        for s in [
            "DELETE FROM users",
            "DELETE FROM users WHERE 1=1",
            "delete from users where true",
            "DELETE FROM users WHERE 'a' = 'a'",
            "DELETE FROM users WHERE id = id",
            "DELETE FROM users WHERE name = 'x' OR 1",
            "DELETE FROM t WHERE 2 > 1",
            "UPDATE users SET role = 'admin'",
            "UPDATE accounts SET balance = 0 WHERE (1 = 1)",
            "DROP TABLE users",
            "TRUNCATE orders",
            "ALTER TABLE users DROP COLUMN password_hash",
            "DeLeTe   FrOm  users  /* all */",
        ] {
            assert!(flagged(s), "{s}");
        }
        for s in [
            "DELETE FROM users WHERE id = 3",
            "DELETE FROM cart WHERE cart_id = 'abc' AND 1 = 1",
            "UPDATE users SET x = 1 WHERE id IN (1, 2)",
            "SELECT * FROM users WHERE 1 = 1",
            "EXPLAIN DELETE FROM orders WHERE id = 3",
            "please update the docs and delete the old page",
        ] {
            assert!(!flagged(s), "{s}");
        }
    }
}
