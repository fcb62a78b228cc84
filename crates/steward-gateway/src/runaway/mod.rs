//! Runaway control, kept at run time: rate and concurrency limits per principal and tool, budgets
//! against denial of wallet, and the repeat breaker for agents stuck in a loop. The policy and
//! steward.yaml configure them; the state lives here.

pub mod breaker;
pub mod budget;
pub mod limits;
pub mod state;

pub use breaker::Breaker;
pub use budget::{BudgetRule, Budgets, Exceeded, Scope};
pub use limits::{Limited, Limiter, Permit};
pub use state::Runaway;
