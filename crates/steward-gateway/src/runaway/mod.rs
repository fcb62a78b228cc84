//! Runaway control: counters kept at run time against denial of wallet (budgets) and agents
//! stuck in a loop (the repeat breaker). Configured by the policy; the state lives here.

pub mod breaker;
pub mod budget;

pub use breaker::{Breaker, Tripped};
pub use budget::{BudgetRule, Budgets, Exceeded, Scope};
