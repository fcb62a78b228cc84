//! Steward's runtime: the enforcement pipeline every door shares, and the doors themselves.

pub mod approval;
pub mod auth;
pub mod config;
pub mod error;
pub mod evidence;
pub mod identity;
pub mod inspect;
pub mod notify;
pub mod pipeline;
pub mod proxy;
pub mod reload;
pub mod remote;
pub mod runaway;
pub mod serve;
mod upstream;

pub use error::GatewayError;
pub use pipeline::{CallContext, Pipeline, Verdict};
pub use proxy::{ProxyExit, ProxyOptions, run_proxy, shutdown_signal};
