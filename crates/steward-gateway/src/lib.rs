//! Steward's runtime: the relay every door shares (`pipeline`), and the doors themselves.

pub mod approver;
pub mod auth;
pub mod config;
pub mod console;
pub mod error;
pub mod evidence;
pub mod identity;
pub mod metrics;
pub mod notify;
pub mod pipeline;
pub mod proxy;
pub mod reload;
pub mod remote;
pub mod runaway;
pub mod sandbox;
pub mod serve;
pub mod survey;
mod upstream;

pub use error::GatewayError;
pub use pipeline::{Action, CallContext, Decided, Door, Outcome, Relay, RelayParts, ServerInfo, Session};
pub use proxy::{ProxyExit, ProxyOptions, run_proxy, shutdown_signal};
/// The built-in demo server's answer to one message, for in-process tests of the relay.
#[doc(hidden)]
pub use upstream::demo_answer;
