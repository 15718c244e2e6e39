//! The paged KV cache, its per-step plans, and the append kernel.

mod append;
pub(crate) use append::unit_groups;
mod cache;
mod pages;
mod plan;

pub use cache::{KvCache, KvCacheConfig, SeqId};
pub use plan::{Plan, PlanEntry, SplitPolicy};

/// Word offsets of the plan buffer, shared with WGSL through the prelude.
pub(crate) mod plan_layout {
    use crate::gpu::shader::MAX_ROWS;
    /// Number of key splits.
    pub const SPLITS: u32 = 0;
    pub const PAGE_SIZE: u32 = 1;
    /// Query (or appended) tokens in the plan.
    pub const TOKENS: u32 = 2;
    /// Offset of the token -> entry map.
    pub const TOKEN_MAP: u32 = 3;
    /// `BLOCKS + bq` holds the offset of the block list for `bq` tokens per block.
    pub const BLOCKS: u32 = 8;
    /// Entries start here, `ENTRY_WORDS` each: first token, tokens, first
    /// position, KV length, page-table offset, keys per split.
    pub const ENTRIES: u32 = BLOCKS + MAX_ROWS + 1;
    pub const ENTRY_WORDS: u32 = 6;
}
