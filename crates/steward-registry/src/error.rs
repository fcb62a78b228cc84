use steward_policy::{Diagnostic, Severity};

/// Why a registry could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("cannot read registry file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", render_all(.file, .diagnostics))]
    Invalid { file: String, diagnostics: Vec<Diagnostic> },
}

impl RegistryError {
    /// The findings behind an invalid registry; empty for IO errors.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            RegistryError::Io { .. } => &[],
            RegistryError::Invalid { diagnostics, .. } => diagnostics,
        }
    }
}

fn render_all(file: &str, diagnostics: &[Diagnostic]) -> String {
    let errors = diagnostics.iter().filter(|d| d.severity == Severity::Error).count();
    let mut out = String::new();
    for d in diagnostics.iter().filter(|d| d.severity == Severity::Error) {
        out.push_str(&d.render(file));
        out.push('\n');
    }
    out.push_str(&format!("registry {file} is invalid: {errors} error(s)"));
    out
}

pub(crate) fn error(line: u64, column: u64, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        line,
        column,
        message: message.into(),
        hint: None,
    }
}

pub(crate) fn warning(line: u64, column: u64, message: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Warning,
        line,
        column,
        message: message.into(),
        hint: None,
    }
}

pub(crate) fn with_hint(mut d: Diagnostic, hint: impl Into<String>) -> Diagnostic {
    d.hint = Some(hint.into());
    d
}
