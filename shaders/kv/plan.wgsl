// The step plan, rewritten by the host each step (src/kv/plan.rs). Its words
// are named once, in src/kv/plan_layout.rs, which the prelude emits as the
// PLAN_* and ENTRY_* constants.
//
// Each entry has one page table per page group of the cache: layers whose
// cache keeps only a sliding window have pages of their own (PAGE_GROUP).

override PAGE_GROUP: u32 = 0u;

@group(0) @binding(0) var<storage, read> plan: array<u32>;

// First word of entry `i`.
fn plan_entry(i: u32) -> u32 {
    return PLAN_ENTRIES + i * ENTRY_WORDS;
}

// The entry that plan token `token` belongs to.
fn entry_of_token(token: u32) -> u32 {
    return plan_entry(plan[plan[PLAN_TOKEN_MAP] + token]);
}

// Offset of entry `e`'s page table for this layer: word `pos / page size`
// of it is the page holding position `pos`.
fn entry_table(e: u32) -> u32 {
    return plan[e + ENTRY_TABLE] + PAGE_GROUP * plan[e + ENTRY_PAGES];
}
