//! MCP on the wire: JSON-RPC envelopes read without copying, the handful of methods Steward
//! governs, protocol eras, and newline-delimited stdio framing.
//!
//! Messages that are not governed are never re-serialized: doors forward the bytes they read.

pub mod era;
pub mod fingerprint;
pub mod frame;
pub mod json;
pub mod jsonrpc;
pub mod method;
pub mod rewrite;
pub mod sse;
pub mod tools;

pub use era::Era;
pub use frame::{Line, LineReader, LineWriter};
pub use jsonrpc::{ErrorCode, IdKey, Kind, Message, ParseError, steward_id};
pub use method::Method;
