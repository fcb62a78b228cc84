//! The way back to a door's upstream, for the requests Steward makes itself (a fresh
//! `tools/list` before a tool it has never seen listed is called).

use futures_util::future::BoxFuture;

use super::verdict::UpstreamHeaders;
use crate::upstream::Replies;

/// A door's connection to its upstream, as the relay uses it for its own requests.
pub trait UpstreamLink: Send + Sync {
    /// Sends one message Steward wrote. A connection that answers each request on its own
    /// channel returns it (the relay reads the answer there); a pipe returns `None` and the
    /// answer arrives through [`super::Relay::from_upstream`] like any other.
    fn send(&self, bytes: Vec<u8>, headers: UpstreamHeaders) -> BoxFuture<'_, Result<Option<Replies>, String>>;
}

/// A link over one of the gateway's upstream connections.
pub struct ConnLink(pub crate::upstream::Conn);

impl UpstreamLink for ConnLink {
    fn send(&self, bytes: Vec<u8>, headers: UpstreamHeaders) -> BoxFuture<'_, Result<Option<Replies>, String>> {
        Box::pin(async move {
            self.0
                .request(&bytes, &headers)
                .await
                .map(Some)
                .map_err(|e| e.to_string())
        })
    }
}
