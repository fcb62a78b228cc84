//! `server/tool` patterns: `*` matches any run of characters, `?` one character.
//! A pattern without `/` names a tool on any server.

/// A compiled `server/tool` glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolPattern {
    server: String,
    tool: String,
    source: String,
}

impl ToolPattern {
    pub fn parse(pattern: &str) -> Result<ToolPattern, String> {
        let pattern = pattern.trim();
        if pattern.is_empty() {
            return Err("empty pattern".into());
        }
        let (server, tool) = match pattern.split_once('/') {
            Some((s, t)) => (s, t),
            None => ("*", pattern),
        };
        if server.is_empty() || tool.is_empty() {
            return Err(format!(
                "'{pattern}' has an empty server or tool part; write \"server/tool\", \"*/tool\" or \"server/*\""
            ));
        }
        Ok(ToolPattern {
            server: server.to_string(),
            tool: tool.to_string(),
            source: pattern.to_string(),
        })
    }

    /// `*/*`: every tool of every server.
    pub fn any() -> ToolPattern {
        ToolPattern {
            server: "*".into(),
            tool: "*".into(),
            source: "*/*".into(),
        }
    }

    pub fn matches_server(&self, server: &str) -> bool {
        glob_match(self.server.as_bytes(), server.as_bytes())
    }

    pub fn server_part(&self) -> &str {
        &self.server
    }

    pub fn matches(&self, server: &str, tool: &str) -> bool {
        glob_match(self.server.as_bytes(), server.as_bytes()) && glob_match(self.tool.as_bytes(), tool.as_bytes())
    }

    /// Whether the server part is a literal name (no wildcard).
    pub fn literal_server(&self) -> Option<&str> {
        (!self.server.contains(['*', '?'])).then_some(self.server.as_str())
    }

    pub fn tool_part(&self) -> &str {
        &self.tool
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// Iterative glob matching with single-star backtracking: linear in practice, never exponential.
pub(crate) fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while p < pattern.len() && pattern[p] == b'*' {
        p += 1;
    }
    p == pattern.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        let p = ToolPattern::parse("*/echo").unwrap();
        assert!(p.matches("everything", "echo"));
        assert!(!p.matches("everything", "echo2"));
        let p = ToolPattern::parse("it-ops/ssh-*").unwrap();
        assert!(p.matches("it-ops", "ssh-exec"));
        assert!(!p.matches("other", "ssh-exec"));
        let p = ToolPattern::parse("get_?").unwrap();
        assert!(p.matches("x", "get_a"));
        assert!(!p.matches("x", "get_ab"));
        assert!(ToolPattern::parse("/x").is_err());
        assert!(ToolPattern::parse("").is_err());
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
        assert!(glob_match(b"*", b""));
    }

    #[test]
    fn names_with_slashes_and_colons() {
        // The server is what comes before the first `/`; the rest, `/` and `:` included, is the
        // name (a resource URI), and `*` runs across `/`.
        let p = ToolPattern::parse("everything/demo://resource/static/document/*").unwrap();
        assert_eq!(
            (p.server_part(), p.tool_part()),
            ("everything", "demo://resource/static/document/*")
        );
        assert!(p.matches("everything", "demo://resource/static/document/architecture.md"));
        assert!(p.matches("everything", "demo://resource/static/document/a/b/c.md"));
        assert!(!p.matches("everything", "demo://resource/static/documents/x"));
        assert!(!p.matches("everything", "demo://resource/dynamic/text/1"));
        let p = ToolPattern::parse("*/file:///etc/*").unwrap();
        assert!(p.matches("fs", "file:///etc/shadow"));
        assert!(!p.matches("fs", "file:///home/etc/x"));
        let p = ToolPattern::parse("db/postgres://*:5432/?").unwrap();
        assert!(p.matches("db", "postgres://host:5432/a"));
        assert!(!p.matches("db", "postgres://host:5433/a"));
        let p = ToolPattern::parse("everything/simple-prompt").unwrap();
        assert!(p.matches("everything", "simple-prompt"));
        assert!(!p.matches("everything", "simple-prompt-2"));
        // A URI written without its server reads as server `demo:` (load warns about it).
        assert_eq!(ToolPattern::parse("demo://x").unwrap().server_part(), "demo:");
    }
}
