//! The paged KV cache and its per-step plans. The kernels that read and
//! write them are in `kernels/`.

mod cache;
mod pages;
mod plan;
pub(crate) mod plan_layout;
mod sequence;

pub use cache::{KvCache, KvCacheConfig};
pub use plan::{Plan, PlanEntry, SplitPolicy};
pub use sequence::SeqId;
