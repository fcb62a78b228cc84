/// Why a door could not run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "no upstream command given; put it after `--`, e.g. `steward proxy -- npx -y @modelcontextprotocol/server-everything`"
    )]
    NoCommand,
    #[error("cannot start upstream server `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Config(String),
    /// The message says it all (what is missing, how to relax); it is not chained again.
    #[error("cannot start upstream server `{command}` in its sandbox: {error}")]
    Sandbox {
        command: String,
        error: crate::sandbox::SandboxError,
    },
    #[error("I/O error on {what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}
