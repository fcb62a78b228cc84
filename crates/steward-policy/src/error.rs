use std::fmt;

/// How serious a finding about a policy file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding about a policy file, pointing at a place in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// 1-based line; 0 when the place is unknown.
    pub line: u64,
    /// 1-based column; 0 when the place is unknown.
    pub column: u64,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub(crate) fn error(line: u64, column: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn warning(line: u64, column: u64, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(line, column, message)
        }
    }

    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Renders as `file:line:col: error: message` with the hint on the next line.
    pub fn render(&self, file: &str) -> String {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = format!("{file}:{}:{}: {level}: {}", self.line, self.column, self.message);
        if let Some(hint) = &self.hint {
            out.push_str("\n  hint: ");
            out.push_str(hint);
        }
        out
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_all(.file, .diagnostics))]
    Invalid { file: String, diagnostics: Vec<Diagnostic> },
}

impl PolicyError {
    /// The findings (errors and warnings) behind an invalid policy; empty for IO errors.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Io { .. } => &[],
            PolicyError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

fn render_all(file: &str, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let mut out = String::new();
    for d in diagnostics {
        out.push_str(&d.render(file));
        out.push('\n');
    }
    out.push_str(&format!("policy {file} is invalid: {errors} error(s)"));
    out
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}
