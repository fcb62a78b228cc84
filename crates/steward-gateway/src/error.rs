/// Why a door could not run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "no upstream command given; put it after `--`, e.g. `steward proxy -- npx -y @modelcontextprotocol/server-everything`"
    )]
    NoCommand,
    // The OS error is part of the message and not also a `source`: a chain printed with
    // `{:#}` would say it twice.
    #[error("cannot start upstream server `{command}`: {error}")]
    Spawn { command: String, error: std::io::Error },
    #[error("{0}")]
    Config(String),
    /// The message says it all (what is missing, how to relax); it is not chained again.
    #[error("cannot start upstream server `{command}` in its sandbox: {error}")]
    Sandbox {
        command: String,
        error: crate::sandbox::SandboxError,
    },
    #[error("I/O error on {what}: {error}")]
    Io { what: &'static str, error: std::io::Error },
    #[error("cannot listen on {addr}: {error}{}", if error.kind() == std::io::ErrorKind::AddrInUse { " (another process listens there; stop it or pass --listen HOST:PORT)" } else { "" })]
    Bind {
        addr: std::net::SocketAddr,
        error: std::io::Error,
    },
}
