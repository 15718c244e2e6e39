//! The words of a step plan's buffer, named once. The host writes the plan
//! through these offsets (`plan.rs`), and [`wgsl`] emits the same names as
//! WGSL constants for `shaders/kv/plan.wgsl`, through which every kernel
//! reads it.

use crate::attention::MAX_ROWS;

/// Header: number of key splits.
pub const SPLITS: u32 = 0;
/// Header: tokens per page.
pub const PAGE_SIZE: u32 = 1;
/// Header: query (or appended) tokens in the plan.
pub const TOKENS: u32 = 2;
/// Header: offset of the token -> entry map.
pub const TOKEN_MAP: u32 = 3;
/// Header: `BLOCKS + bq` holds the offset of the block list for `bq` query
/// tokens per block, pairs of (entry, first token).
pub const BLOCKS: u32 = 8;
/// Entries start here, [`ENTRY_WORDS`] each.
pub const ENTRIES: u32 = BLOCKS + MAX_ROWS + 1;

/// Entry field: the entry's first token among the plan's tokens.
pub const ENTRY_FIRST_TOKEN: u32 = 0;
/// Entry field: its query (or appended) tokens.
pub const ENTRY_TOKENS: u32 = 1;
/// Entry field: position of its first token in the sequence.
pub const ENTRY_FIRST_POS: u32 = 2;
/// Entry field: keys visible to the kernels.
pub const ENTRY_KV_LEN: u32 = 3;
/// Entry field: offset of its page tables, one per page group of the cache
/// (see `KvCache`), each [`ENTRY_PAGES`] words long.
pub const ENTRY_TABLE: u32 = 4;
/// Entry field: pages of each table, the pages covering `ENTRY_KV_LEN` keys.
pub const ENTRY_PAGES: u32 = 5;
/// Entry field: keys per split.
pub const ENTRY_SPLIT_LEN: u32 = 6;
pub const ENTRY_WORDS: u32 = 7;

/// Every name above as WGSL sees it.
const NAMES: [(&str, u32); 14] = [
    ("PLAN_SPLITS", SPLITS),
    ("PLAN_PAGE_SIZE", PAGE_SIZE),
    ("PLAN_TOKENS", TOKENS),
    ("PLAN_TOKEN_MAP", TOKEN_MAP),
    ("PLAN_BLOCKS", BLOCKS),
    ("PLAN_ENTRIES", ENTRIES),
    ("ENTRY_FIRST_TOKEN", ENTRY_FIRST_TOKEN),
    ("ENTRY_TOKENS", ENTRY_TOKENS),
    ("ENTRY_FIRST_POS", ENTRY_FIRST_POS),
    ("ENTRY_KV_LEN", ENTRY_KV_LEN),
    ("ENTRY_TABLE", ENTRY_TABLE),
    ("ENTRY_PAGES", ENTRY_PAGES),
    ("ENTRY_SPLIT_LEN", ENTRY_SPLIT_LEN),
    ("ENTRY_WORDS", ENTRY_WORDS),
];

/// The layout as WGSL constants.
pub fn wgsl() -> String {
    NAMES.iter().map(|(name, value)| format!("const {name}: u32 = {value}u;\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_fields_are_distinct_words_of_an_entry() {
        let mut fields: Vec<u32> = NAMES[6..13].iter().map(|&(_, v)| v).collect();
        fields.sort();
        assert_eq!(fields, (0..ENTRY_WORDS).collect::<Vec<_>>());
        assert!(wgsl().contains("const ENTRY_PAGES: u32 = 5u;\n"));
    }
}
