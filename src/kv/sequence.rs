//! A sequence of a cache: its handle, and what the cache holds of it.

use super::pages::PageTable;

/// A sequence handle of one cache. Stale after `free`: using it then, or
/// with another cache, is an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SeqId {
    pub(super) cache: u64,
    pub(super) index: u32,
    pub(super) generation: u32,
}

#[cfg(test)]
impl SeqId {
    /// A handle for layout tests, of no cache.
    pub(crate) fn for_test(index: u32) -> SeqId {
        SeqId { cache: 0, index, generation: 0 }
    }
}

pub(crate) struct Sequence {
    /// One page table per pool.
    pub tables: Vec<PageTable>,
    pub len: u32,
}
