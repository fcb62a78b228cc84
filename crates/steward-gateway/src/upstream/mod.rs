//! Connections to upstream MCP servers: stdio children, streamable-HTTP servers, and the
//! built-in demo server. A connection relays bytes; governance happens in the caller.

mod demo;
mod http;
mod pool;
mod stdio;

use std::sync::Arc;

use tokio::sync::mpsc;

pub use demo::answer as demo_answer;
pub use pool::Upstreams;

/// The routing headers an HTTP upstream gets: derived from the body by the relay, never copied
/// from the client (and never `Authorization`).
pub use crate::pipeline::UpstreamHeaders as Forward;

/// Why an upstream could not take a message.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream server '{0}' is not running")]
    Gone(String),
    #[error("cannot start upstream server '{server}': {message}")]
    Start { server: String, message: String },
    #[error("upstream server '{server}' failed: {message}")]
    Failed { server: String, message: String },
}

/// Messages belonging to one forwarded request: related server messages first (progress,
/// server-to-client requests), then the response; the channel closes after the response.
pub type Replies = mpsc::Receiver<Vec<u8>>;

/// A live connection to an upstream server.
#[derive(Clone)]
pub enum Conn {
    Stdio(Arc<stdio::StdioConn>),
    Http(Arc<http::HttpConn>),
    Demo(Arc<demo::DemoConn>),
}

impl Conn {
    /// Forwards a request (`line` is the client's message; `id` its raw id) and returns its replies.
    pub async fn request(&self, line: &[u8], forward: &Forward) -> Result<Replies, UpstreamError> {
        match self {
            Conn::Stdio(c) => c.request(line),
            Conn::Http(c) => c.request(line, forward).await,
            Conn::Demo(c) => Ok(c.request(line)),
        }
    }

    /// Forwards a notification or a response to a server-to-client request.
    pub async fn send(&self, line: &[u8], forward: &Forward) -> Result<(), UpstreamError> {
        match self {
            Conn::Stdio(c) => c.send(line),
            Conn::Http(c) => c.send(line, forward).await,
            Conn::Demo(_) => Ok(()),
        }
    }

    /// The stream of server-initiated messages not tied to a request (the session's GET stream).
    pub fn server_messages(&self) -> Option<mpsc::Receiver<Vec<u8>>> {
        match self {
            Conn::Stdio(c) => c.server_messages(),
            Conn::Http(c) => c.server_messages(),
            Conn::Demo(_) => None,
        }
    }

    /// Whether two handles are the same connection.
    pub fn same(&self, other: &Conn) -> bool {
        match (self, other) {
            (Conn::Stdio(a), Conn::Stdio(b)) => Arc::ptr_eq(a, b),
            (Conn::Http(a), Conn::Http(b)) => Arc::ptr_eq(a, b),
            (Conn::Demo(a), Conn::Demo(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    pub fn alive(&self) -> bool {
        match self {
            Conn::Stdio(c) => c.alive(),
            Conn::Http(_) | Conn::Demo(_) => true,
        }
    }

    /// Ends the connection: a child is stopped, an HTTP session deleted.
    pub async fn close(&self) {
        match self {
            Conn::Stdio(c) => c.close().await,
            Conn::Http(c) => c.close().await,
            Conn::Demo(_) => {}
        }
    }
}
