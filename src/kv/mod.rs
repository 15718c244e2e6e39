//! The paged KV cache, its per-step plans, and the append kernel.

mod append;
pub(crate) use append::APPEND;
mod cache;
mod pages;
mod plan;
pub(crate) mod plan_layout;

pub use cache::{KvCache, KvCacheConfig, SeqId};
pub use plan::{Plan, PlanEntry, SplitPolicy};
