//! What commands print: tables that fit the terminal, one JSON object per line for `--json`,
//! and a closed stdout (`steward audit query | head -1`) that ends the command quietly.

use std::io::{IsTerminal, Write};

use comfy_table::{ContentArrangement, Table, presets};

/// Lets a closed stdout end the command the conventional way: killed by SIGPIPE (status 141 in
/// the shell), silently, like `cat` or `grep`. Rust ignores SIGPIPE, which turns every write to
/// a closed pipe into an error that `println!` panics on. Only for commands that print and
/// exit: the proxy, the gateway and the hook handle a closed pipe themselves (and must flush
/// the audit log first).
pub fn exit_quietly_on_closed_stdout() {
    // SAFETY: restoring a signal's default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The width tables may take: `COLUMNS` when set, else the terminal's; `None` when stdout is
/// not a terminal (a file or a pipe gets whole lines, for grep).
pub fn width() -> Option<u16> {
    if let Some(cols) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|c| *c >= 20)
    {
        return Some(cols);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    terminal_size::terminal_size_of(std::io::stdout()).map(|(w, _)| w.0)
}

/// A table with `headers`, without borders (columns two spaces apart), wrapped to [`width`].
pub fn table<const N: usize>(headers: [&str; N]) -> Table {
    let mut t = Table::new();
    t.load_style(presets::NOTHING);
    t.set_header(headers);
    match width() {
        Some(w) => {
            t.set_content_arrangement(ContentArrangement::Dynamic);
            t.set_width(w);
        }
        None => {
            t.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    // NOTHING pads every cell with a space on each side: the first column starts at 0.
    if let Some(first) = t.column_mut(0) {
        first.set_padding((0, 1));
    }
    t
}

/// Prints a table, without the trailing spaces of its padding.
pub fn print_table(t: &Table) {
    let mut out = std::io::stdout().lock();
    for line in t.lines() {
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// Prints one value as one line of JSON: every `--json` prints JSON lines.
pub fn json_line(value: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Cuts `s` to `n` characters, marking the cut (for free text a table should not wrap at).
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n.saturating_sub(1)).collect::<String>())
    }
}
