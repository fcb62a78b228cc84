//! JSON with comments and trailing commas (VS Code and Gemini CLI settings).

/// Parses JSONC: `//` and `/* */` comments and trailing commas are blanked out (keeping every
/// line and column where it was, so errors point at the right place) before strict parsing.
pub fn parse(text: &str) -> serde_json::Result<serde_json::Value> {
    serde_json::from_str(&strip(text))
}

/// Replaces comments and trailing commas with spaces, outside strings.
pub fn strip(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let mut i = 0;
    let mut in_string = false;
    // The position of the last comma outside strings, cleared by any other significant byte.
    let mut pending_comma: Option<usize> = None;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => {
                in_string = true;
                pending_comma = None;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    out[i] = b' ';
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                out[i] = b' ';
                out[i + 1] = b' ';
                i += 2;
                while i < bytes.len() && !(bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/')) {
                    if bytes[i] != b'\n' {
                        out[i] = b' ';
                    }
                    i += 1;
                }
                let end = (i + 2).min(bytes.len());
                out[i.min(end)..end].fill(b' ');
                i += 2;
                continue;
            }
            b',' => pending_comma = Some(i),
            b'}' | b']' => {
                if let Some(c) = pending_comma.take() {
                    out[c] = b' ';
                }
            }
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => pending_comma = None,
        }
        i += 1;
    }
    // Only ASCII bytes were replaced by ASCII spaces, so the text is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn strips_comments_and_trailing_commas() {
        let text =
            "{\n // servers\n \"servers\": { \"a\": {\"command\": \"x//y\", /* c */ \"args\": [\"1\",],},\n },\n}";
        let v = super::parse(text).unwrap();
        assert_eq!(v["servers"]["a"]["command"], "x//y");
        assert_eq!(v["servers"]["a"]["args"][0], "1");
        assert!(super::parse("{\"a\": }").is_err());
    }
}
