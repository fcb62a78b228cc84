//! Word expansion as a shell does it, statically: what a raw shell word (as the parser hands it
//! over, quotes included) stands for when the command runs.
//!
//! Quotes and escapes are removed (`r"m"`, `r\m`, `$'\x72\x6d'`); parameters are replaced by what
//! earlier assignments in the script gave them, or by what their expansion operators say
//! (`${x:-rm}` is `rm`, `${PATH:0:1}` is `/`), and are kept as `$NAME` otherwise, so that scope
//! rules still see `$HOME`; command substitutions stand for what they print when that can be
//! worked out (`$(printf 'r\x6d')`, `$(echo cm0= | base64 -d)`), and their scripts are scanned
//! on their own; brace expansion gives several words (`{rm,-rf,/}`); unquoted `$IFS` splits
//! words. Brush parses the structure of a script; expanding words is Steward's own job (what
//! would run, not how to run it), so it is written here.

use std::collections::HashMap;

/// At most this many words come out of one word's brace expansion.
const MAX_BRACE_WORDS: usize = 64;
/// Nested command substitutions inside one word are evaluated this deep at most.
const MAX_EVAL_DEPTH: usize = 8;

/// What expanding words needs to know and what it finds along the way.
#[derive(Default)]
pub(crate) struct Env {
    /// Variables assigned earlier in the script.
    pub vars: HashMap<String, String>,
    /// Scripts of command substitutions met while expanding: they run too.
    pub nested: Vec<String>,
    /// A budget was hit (too many words, too deep): the caller reports it.
    pub incomplete: bool,
}

impl Env {
    /// Expands one raw word into the words it stands for (several with brace expansion or an
    /// unquoted `$IFS`; none for an empty unquoted expansion is kept as one empty word).
    pub fn word(&mut self, raw: &str) -> Vec<String> {
        let braced = if has_unquoted_brace(raw) {
            brace_expand(raw, &mut self.incomplete)
        } else {
            vec![raw.to_string()]
        };
        let mut out = Vec::with_capacity(braced.len());
        for w in braced {
            let mut e = Expander {
                env: self,
                out: String::with_capacity(w.len()),
                split: Vec::new(),
                depth: 0,
            };
            e.run(w.as_bytes(), false);
            let Expander { out: last, split, .. } = e;
            out.extend(split);
            out.push(last);
        }
        out
    }

    /// Expands a word and joins what it stands for with spaces (redirection targets, here-strings).
    pub fn joined(&mut self, raw: &str) -> String {
        self.word(raw).join(" ")
    }
}

struct Expander<'e> {
    env: &'e mut Env,
    out: String,
    /// Words already split off by an unquoted `$IFS`.
    split: Vec<String>,
    depth: usize,
}

impl Expander<'_> {
    fn run(&mut self, b: &[u8], quoted: bool) {
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'\'' if !quoted => {
                    let end = find(b, i + 1, b'\'');
                    self.push_bytes(&b[i + 1..end]);
                    i = end + 1;
                }
                b'"' if !quoted => {
                    let end = close_double(b, i + 1);
                    self.run(&b[i + 1..end], true);
                    i = end + 1;
                }
                b'\\' => {
                    match b.get(i + 1) {
                        Some(b'\n') | None => {}
                        Some(&c) if quoted && !matches!(c, b'"' | b'\\' | b'$' | b'`') => {
                            self.out.push('\\');
                            self.push_char_at(b, i + 1);
                        }
                        Some(_) => self.push_char_at(b, i + 1),
                    }
                    i += 1 + char_len(b, i + 1);
                }
                b'$' if b.get(i + 1) == Some(&b'\'') && !quoted => {
                    let end = close_ansi(b, i + 2);
                    let text = ansi_c_unescape(&String::from_utf8_lossy(&b[i + 2..end]));
                    self.out.push_str(&text);
                    i = end + 1;
                }
                b'$' if b.get(i + 1) == Some(&b'(') && b.get(i + 2) == Some(&b'(') => {
                    // Arithmetic: a number, whatever it is.
                    let end = close_paren(b, i + 2);
                    self.out.push('0');
                    i = (end + 2).min(b.len());
                }
                b'$' if b.get(i + 1) == Some(&b'(') => {
                    let end = close_paren(b, i + 2);
                    let inner = String::from_utf8_lossy(&b[i + 2..end.min(b.len())]).into_owned();
                    self.substitution(inner);
                    i = end + 1;
                }
                b'`' => {
                    let end = find(b, i + 1, b'`');
                    let inner = String::from_utf8_lossy(&b[i + 1..end]).replace("\\`", "`");
                    self.substitution(inner);
                    i = end + 1;
                }
                b'$' if b.get(i + 1) == Some(&b'{') => {
                    let end = close_brace(b, i + 2);
                    let inner = String::from_utf8_lossy(&b[i + 2..end.min(b.len())]).into_owned();
                    let value = self.parameter(&inner);
                    self.value(&value, quoted, inner == "IFS");
                    i = end + 1;
                }
                b'$' if b.get(i + 1).is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_') => {
                    let start = i + 1;
                    let mut end = start;
                    while end < b.len() && (b[end].is_ascii_alphanumeric() || b[end] == b'_') {
                        end += 1;
                    }
                    let name = String::from_utf8_lossy(&b[start..end]).into_owned();
                    let value = match self.env.vars.get(&name) {
                        Some(v) => v.clone(),
                        None if name == "IFS" => " ".to_string(),
                        None => format!("${name}"),
                    };
                    self.value(&value, quoted, name == "IFS");
                    i = end;
                }
                b'$' if b
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_digit() || b"@*#?$!-".contains(c)) =>
                {
                    // Positional and special parameters: `$9` in `$IFS$9` is empty.
                    if !b[i + 1].is_ascii_digit() {
                        self.out.push('$');
                        self.out.push(b[i + 1] as char);
                    }
                    i += 2;
                }
                _ => {
                    let n = char_len(b, i);
                    self.push_bytes(&b[i..i + n]);
                    i += n;
                }
            }
        }
    }

    fn push_bytes(&mut self, b: &[u8]) {
        self.out.push_str(&String::from_utf8_lossy(b));
    }

    fn push_char_at(&mut self, b: &[u8], i: usize) {
        let n = char_len(b, i);
        self.push_bytes(&b[i..(i + n).min(b.len())]);
    }

    /// A parameter's value in the word: unquoted white space (an `$IFS`) splits words.
    fn value(&mut self, value: &str, quoted: bool, ifs: bool) {
        if quoted || !(ifs || value.contains([' ', '\t', '\n'])) {
            self.out.push_str(value);
            return;
        }
        let mut parts = value.split([' ', '\t', '\n']);
        if let Some(first) = parts.next() {
            self.out.push_str(first);
        }
        for p in parts {
            let done = std::mem::take(&mut self.out);
            if !done.is_empty() {
                self.split.push(done);
            }
            self.out.push_str(p);
        }
    }

    fn substitution(&mut self, inner: String) {
        let printed = (self.depth < MAX_EVAL_DEPTH).then(|| {
            self.depth += 1;
            let p = printed_by(&inner, self.env);
            self.depth -= 1;
            p
        });
        match printed.flatten() {
            Some(text) => self.out.push_str(text.trim_end_matches('\n')),
            None => {
                self.out.push_str("$(");
                self.out.push_str(&inner);
                self.out.push(')');
            }
        }
        if self.env.nested.len() < 256 {
            self.env.nested.push(inner);
        } else {
            self.env.incomplete = true;
        }
    }

    /// `${…}`: what the parameter expansion gives.
    fn parameter(&mut self, inner: &str) -> String {
        let name_end = inner
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(inner.len());
        let (name, op) = inner.split_at(name_end);
        if let Some(rest) = inner.strip_prefix('#') {
            let len = self.env.vars.get(rest).map_or(0, |v| v.chars().count());
            return len.to_string();
        }
        if let Some(rest) = inner.strip_prefix('!') {
            return format!("${rest}");
        }
        let known = self
            .env
            .vars
            .get(name)
            .cloned()
            .or_else(|| (name == "IFS").then(|| " ".to_string()));
        let shown = || known.clone().unwrap_or_else(|| format!("${name}"));
        let word = |this: &mut Self, w: &str| this.env.joined(w);
        if op.is_empty() {
            return shown();
        }
        for (p, use_default) in [(":-", true), ("-", true), (":=", true), ("=", true)] {
            if let Some(w) = op.strip_prefix(p) {
                return match &known {
                    Some(v) if !v.is_empty() => v.clone(),
                    _ if use_default => word(self, w),
                    _ => String::new(),
                };
            }
        }
        for p in [":+", "+"] {
            if let Some(w) = op.strip_prefix(p) {
                // The alternative applies when the parameter is set; an unknown one may be.
                return word(self, w);
            }
        }
        if op.starts_with(":?") || op.starts_with('?') {
            return shown();
        }
        if let Some(range) = op.strip_prefix(':') {
            // `${x:offset:length}`: `${PATH:0:1}` and `${HOME:0:1}` are `/`.
            let mut nums = range.splitn(2, ':').map(|n| n.trim().parse::<i64>().ok());
            let offset = nums.next().flatten().unwrap_or(0);
            let length = nums.next().flatten();
            let value = match (&known, name) {
                (Some(v), _) => v.clone(),
                (None, "PATH") => "/usr/local/bin:/usr/bin:/bin".to_string(),
                (None, "HOME") => "/home/user".to_string(),
                (None, "PWD") => "/".to_string(),
                (None, _) => return shown(),
            };
            let chars: Vec<char> = value.chars().collect();
            let start = if offset < 0 {
                chars.len().saturating_sub(offset.unsigned_abs() as usize)
            } else {
                (offset as usize).min(chars.len())
            };
            let end = match length {
                Some(l) if l >= 0 => (start + l as usize).min(chars.len()),
                Some(l) => chars.len().saturating_sub(l.unsigned_abs() as usize).max(start),
                None => chars.len(),
            };
            return chars[start..end].iter().collect();
        }
        let Some(value) = known else { return shown() };
        if let Some(rest) = op.strip_prefix("//").or_else(|| op.strip_prefix('/')) {
            let (pat, rep) = rest.split_once('/').unwrap_or((rest, ""));
            return if op.starts_with("//") {
                value.replace(pat, rep)
            } else {
                value.replacen(pat, rep, 1)
            };
        }
        match op {
            "^^" => value.to_uppercase(),
            ",," => value.to_lowercase(),
            _ => {
                for p in ["##", "#", "%%", "%"] {
                    if let Some(pat) = op.strip_prefix(p) {
                        let pat = pat.trim_matches('*');
                        return match p {
                            "##" | "#" => value.strip_prefix(pat).unwrap_or(&value).to_string(),
                            _ => value.strip_suffix(pat).unwrap_or(&value).to_string(),
                        };
                    }
                }
                value
            }
        }
    }
}

/// What a command substitution's script prints, when it is a pipeline of commands whose output
/// is known from their words alone (`echo`, `printf`, `base64 -d`, `rev`, `xxd -r -p`, `tr`).
pub(crate) fn printed_by(script: &str, env: &mut Env) -> Option<String> {
    let t = script.trim();
    if t.is_empty() || t.len() > 4096 || t.contains([';', '&', '>', '<', '\n']) {
        return None;
    }
    let mut text: Option<String> = None;
    for stage in split_pipeline(t)? {
        let words: Vec<String> = split_words(stage)?.iter().flat_map(|w| env.word(w)).collect();
        text = Some(filter(&words, text)?);
    }
    text
}

/// What one command prints, given what it reads (`input`), when that is known.
pub(crate) fn filter(words: &[String], input: Option<String>) -> Option<String> {
    let (name, args) = words.split_first()?;
    let name = name.rsplit('/').next().unwrap_or(name);
    match (name, input) {
        ("echo", None) => {
            let mut escapes = false;
            let mut newline = true;
            let mut rest = args;
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "-n" => newline = false,
                    "-e" => escapes = true,
                    "-ne" | "-en" => {
                        newline = false;
                        escapes = true
                    }
                    "-E" => escapes = false,
                    _ => break,
                }
                rest = &rest[1..];
            }
            let mut s = rest.join(" ");
            if escapes {
                s = ansi_c_unescape(&s);
            }
            if newline {
                s.push('\n');
            }
            Some(s)
        }
        ("printf", None) => {
            let (format, rest) = args.split_first()?;
            let format = ansi_c_unescape(format);
            Some(if format.contains("%s") || format.contains("%b") {
                let mut out = String::new();
                let mut rest = rest.iter();
                let mut parts = format.split('%').peekable();
                if let Some(first) = parts.next() {
                    out.push_str(first);
                }
                for p in parts {
                    if let Some(tail) = p.strip_prefix('s') {
                        out.push_str(rest.next().map(String::as_str).unwrap_or(""));
                        out.push_str(tail);
                    } else if let Some(tail) = p.strip_prefix('b') {
                        out.push_str(&ansi_c_unescape(rest.next().map(String::as_str).unwrap_or("")));
                        out.push_str(tail);
                    } else {
                        out.push('%');
                        out.push_str(p);
                    }
                }
                out
            } else {
                format
            })
        }
        ("cat", Some(input)) if args.is_empty() || args.iter().all(|a| a == "-") => Some(input),
        ("base64" | "basenc", input)
            if args
                .iter()
                .any(|a| matches!(a.as_str(), "-d" | "--decode" | "-D" | "-di")) =>
        {
            let data = match input {
                Some(i) => i,
                None => args.iter().rfind(|a| !a.starts_with('-')).cloned()?,
            };
            decode_base64(&data)
        }
        ("xxd", Some(input)) if args.iter().any(|a| a == "-r") && args.iter().any(|a| a == "-p" || a == "-ps") => {
            decode_hex(&input)
        }
        ("rev", Some(input)) => Some(
            input
                .lines()
                .map(|l| l.chars().rev().collect::<String>())
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        ("tr", Some(input)) if args.len() == 2 && args[0].chars().count() == args[1].chars().count() => {
            let from: Vec<char> = args[0].chars().collect();
            let to: Vec<char> = args[1].chars().collect();
            Some(
                input
                    .chars()
                    .map(|c| from.iter().position(|f| *f == c).map_or(c, |i| to[i]))
                    .collect(),
            )
        }
        _ => None,
    }
}

/// The stages of a pipeline, split at unquoted `|`.
fn split_pipeline(s: &str) -> Option<Vec<&str>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\'' => i = find(b, i + 1, b'\''),
            b'"' => i = close_double(b, i + 1),
            b'\\' => i += 1,
            b'$' if b.get(i + 1) == Some(&b'(') => i = close_paren(b, i + 2),
            b'|' => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(s.get(start..)?);
    Some(out)
}

/// A simple command's raw words, split at unquoted white space.
pub(crate) fn split_words(s: &str) -> Option<Vec<&str>> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            if let Some(st) = start.take() {
                out.push(s.get(st..i)?);
            }
            i += 1;
            continue;
        }
        if start.is_none() {
            start = Some(i);
        }
        i = match c {
            b'\'' => find(b, i + 1, b'\''),
            b'"' => close_double(b, i + 1),
            b'\\' => i + 1,
            b'$' if b.get(i + 1) == Some(&b'(') => close_paren(b, i + 2),
            b'$' if b.get(i + 1) == Some(&b'{') => close_brace(b, i + 2),
            b'`' => find(b, i + 1, b'`'),
            _ => i,
        } + 1;
    }
    if let Some(st) = start {
        out.push(s.get(st..)?);
    }
    Some(out)
}

/// The index of `close` at or after `from`, or the end.
fn find(b: &[u8], from: usize, close: u8) -> usize {
    b.get(from..)
        .and_then(|r| r.iter().position(|&c| c == close))
        .map_or(b.len(), |p| from + p)
}

fn close_double(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'"' => return i,
            b'$' if b.get(i + 1) == Some(&b'(') => i = close_paren(b, i + 2),
            _ => {}
        }
        i += 1;
    }
    b.len()
}

fn close_ansi(b: &[u8], mut i: usize) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'\'' => return i,
            _ => {}
        }
        i += 1;
    }
    b.len()
}

/// The `)` closing a `(` whose contents start at `i`, quote-aware.
fn close_paren(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1usize;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'\'' => i = find(b, i + 1, b'\''),
            b'"' => i = close_double(b, i + 1),
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

fn close_brace(b: &[u8], mut i: usize) -> usize {
    let mut depth = 1usize;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

fn char_len(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        None => 0,
        Some(&c) if c < 0x80 => 1,
        Some(&c) if c >= 0xF0 => 4,
        Some(&c) if c >= 0xE0 => 3,
        Some(_) => 2,
    }
    .min(b.len().saturating_sub(i))
}

/// Whether the word has a `{` outside quotes and `${`, with a `,` or `..` inside: brace expansion.
fn has_unquoted_brace(raw: &str) -> bool {
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => i = find(b, i + 1, b'\''),
            b'"' => i = close_double(b, i + 1),
            b'\\' => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => i = close_brace(b, i + 2),
            b'{' => {
                let end = close_brace(b, i + 1);
                if end < b.len() && (b[i + 1..end].contains(&b',') || raw[i + 1..end].contains("..")) {
                    return true;
                }
            }
            _ => {}
        }
        i += 1;
    }
    false
}

/// Brace expansion of one word: `{a,b}c` is `ac bc`, `{1..3}` is `1 2 3`.
fn brace_expand(raw: &str, incomplete: &mut bool) -> Vec<String> {
    let mut out = vec![String::new()];
    let b = raw.as_bytes();
    let mut i = 0;
    let mut literal_start = 0;
    while i < b.len() {
        match b[i] {
            b'\'' => i = find(b, i + 1, b'\''),
            b'"' => i = close_double(b, i + 1),
            b'\\' => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => i = close_brace(b, i + 2),
            b'{' => {
                let end = close_brace(b, i + 1);
                if end >= b.len() {
                    i += 1;
                    continue;
                }
                let body = &raw[i + 1..end];
                let alternatives: Vec<String> = if let Some((a, z)) = body.split_once("..") {
                    match (a.parse::<i64>(), z.parse::<i64>()) {
                        (Ok(a), Ok(z)) if (a - z).abs() < MAX_BRACE_WORDS as i64 => {
                            let (lo, hi) = (a.min(z), a.max(z));
                            (lo..=hi).map(|n| n.to_string()).collect()
                        }
                        _ => vec![format!("{{{body}}}")],
                    }
                } else if body.contains(',') {
                    split_top_commas(body)
                        .into_iter()
                        .flat_map(|alt| brace_expand(alt, incomplete))
                        .collect()
                } else {
                    vec![format!("{{{body}}}")]
                };
                let prefix = &raw[literal_start..i];
                let mut next = Vec::new();
                for o in &out {
                    for a in &alternatives {
                        if next.len() >= MAX_BRACE_WORDS {
                            *incomplete = true;
                            break;
                        }
                        next.push(format!("{o}{prefix}{a}"));
                    }
                }
                out = next;
                i = end + 1;
                literal_start = i;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let tail = raw.get(literal_start..).unwrap_or("");
    for o in &mut out {
        o.push_str(tail);
    }
    out
}

fn split_top_commas(body: &str) -> Vec<&str> {
    let b = body.as_bytes();
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                out.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&body[start..]);
    out
}

/// ANSI-C escapes (`$'…'`, `echo -e`, `printf`): `\x72`, octal `\162`, `\u0072`, `\n`, `\t`.
pub(crate) fn ansi_c_unescape(raw: &str) -> String {
    if !raw.contains('\\') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let digits = |chars: &mut std::iter::Peekable<std::str::Chars<'_>>, radix: u32, max: usize| {
            let mut s = String::new();
            while s.len() < max {
                match chars.next_if(|c| c.is_digit(radix)) {
                    Some(c) => s.push(c),
                    None => break,
                }
            }
            u32::from_str_radix(&s, radix).ok().and_then(char::from_u32)
        };
        match chars.next() {
            Some('x') => out.extend(digits(&mut chars, 16, 2)),
            Some('u') => out.extend(digits(&mut chars, 16, 4)),
            Some('U') => out.extend(digits(&mut chars, 16, 8)),
            Some('0') => out.extend(digits(&mut chars, 8, 3).or(Some('\0'))),
            Some(d @ '1'..='7') => {
                let mut s = String::from(d);
                while s.len() < 3 {
                    match chars.next_if(|c| ('0'..='7').contains(c)) {
                        Some(c) => s.push(c),
                        None => break,
                    }
                }
                out.extend(u32::from_str_radix(&s, 8).ok().and_then(char::from_u32));
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('e' | 'E') => out.push('\u{1b}'),
            Some('a') => out.push('\u{7}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// Base64 (standard or URL-safe, padding optional) that decodes to text.
pub(crate) fn decode_base64(s: &str) -> Option<String> {
    let clean: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if clean.len() < 4 {
        return None;
    }
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in clean {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).ok()
}

fn decode_hex(s: &str) -> Option<String> {
    let clean: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !clean.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = clean
        .chunks(2)
        .map(|p| std::str::from_utf8(p).ok().and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(raw: &str) -> Vec<String> {
        Env::default().word(raw)
    }

    #[test]
    fn quotes_escapes_and_ansi_c() {
        assert_eq!(words(r#"r"m""#), ["rm"]);
        assert_eq!(words(r"r\m"), ["rm"]);
        assert_eq!(words("'r'm"), ["rm"]);
        assert_eq!(words(r"$'\x72\x6d'"), ["rm"]);
        assert_eq!(words(r"$'\162\155'"), ["rm"]);
        assert_eq!(words(r#""a b""#), ["a b"]);
        assert_eq!(words(r#""\$HOME""#), ["$HOME"]);
    }

    #[test]
    fn parameters() {
        let mut env = Env::default();
        env.vars.insert("c".into(), "rm".into());
        assert_eq!(env.word("${c}"), ["rm"]);
        assert_eq!(env.word("$c"), ["rm"]);
        assert_eq!(words("${x:-rm}"), ["rm"]);
        assert_eq!(words("${PATH:0:1}"), ["/"]);
        assert_eq!(words("${HOME}"), ["$HOME"]);
        assert_eq!(words("${HOME:?}"), ["$HOME"]);
        assert_eq!(words("$HOME/x"), ["$HOME/x"]);
        assert_eq!(words("rm${IFS}-rf${IFS}/"), ["rm", "-rf", "/"]);
        assert_eq!(words("rm$IFS$9-rf"), ["rm", "-rf"]);
    }

    #[test]
    fn substitutions_and_braces() {
        assert_eq!(words("$(echo rm)"), ["rm"]);
        assert_eq!(words(r"$(printf 'r\x6d')"), ["rm"]);
        assert_eq!(words("$(echo cm0= | base64 -d)"), ["rm"]);
        assert_eq!(words("`echo rm`"), ["rm"]);
        assert_eq!(words("$(whoami).x"), ["$(whoami).x"]);
        assert_eq!(words("{rm,-rf,/}"), ["rm", "-rf", "/"]);
        assert_eq!(words("/{etc,usr}"), ["/etc", "/usr"]);
        assert_eq!(words("r{m,}"), ["rm", "r"]);
        assert_eq!(words("${x}"), ["$x"]);
        let mut env = Env::default();
        env.word("a$(rm -rf ~)b");
        assert_eq!(env.nested, ["rm -rf ~"]);
    }

    #[test]
    fn hostile_words_do_not_panic() {
        for w in [
            "$(",
            "${",
            "'",
            "\"",
            "\\",
            "$'\\x",
            "{,",
            "{1..100000000}",
            "${x:9999999999}",
            "`",
            "ü\\",
            "${#}",
        ] {
            let _ = words(w);
        }
    }
}
