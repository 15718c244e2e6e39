//! A plan describes one step's batch to the kernels: which sequences, how
//! many query tokens each, their positions, and their page tables. It lives
//! in one small GPU buffer that is rewritten each step, so pipelines and bind
//! groups stay valid while lengths grow.

use super::pages::PageTable;
use super::plan_layout as pl;
use super::SeqId;
use crate::attention::{AttendShape, KEY_ALIGN, MAX_ROWS};
use crate::gpu::check_buffer_size;
use crate::{AttentionConfig, Error, GpuContext, Result};

/// Largest dispatch dimension WebGPU guarantees.
const MAX_DISPATCH: u64 = 65535;
/// Upper bound on key splits.
const MAX_SPLITS: u32 = 256;

/// How many workgroups share one query row's keys (split-K).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitPolicy {
    /// Split until about `target_workgroups` run, keeping at least
    /// `min_keys_per_split` keys in each split.
    Auto { target_workgroups: u32, min_keys_per_split: u32 },
    /// This many splits (some may be empty for short sequences), fewer only
    /// where the partial results would not fit the adapter's buffer limits,
    /// more where the adapter caps the keys one workgroup may walk
    /// ([`Capabilities::loop_trip_limit`](crate::Capabilities::loop_trip_limit)).
    Fixed(u32),
}

impl Default for SplitPolicy {
    fn default() -> Self {
        SplitPolicy::Auto { target_workgroups: 64, min_keys_per_split: 256 }
    }
}

/// One sequence of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanEntry {
    pub seq: SeqId,
    /// Query (and, for appends, new) tokens.
    pub tokens: u32,
    /// Position of the first query token in the sequence.
    pub first_pos: u32,
    /// Keys visible to the kernels: the sequence length under this plan.
    pub kv_len: u32,
}

/// What plans need of one layer: its heads and its attention geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PlanLayer {
    pub q_heads: u32,
    pub v_head_dim: u32,
    /// Workgroups of one block of query tokens in one split: a KV head's
    /// chunks of rows, over all KV heads.
    pub groups: u32,
    /// Query tokens per block the layer's shape allows.
    pub bq: u32,
    /// Most keys one workgroup may walk.
    pub max_keys: u32,
}

impl PlanLayer {
    pub fn new(cfg: &AttentionConfig, shape: &AttendShape) -> Self {
        PlanLayer {
            q_heads: cfg.q_heads,
            v_head_dim: cfg.v_head_dim,
            groups: cfg.kv_heads * shape.chunks,
            bq: shape.bq,
            max_keys: shape.max_keys,
        }
    }
}

/// A cache as its plans see it. Plans read no cache: the cache hands them
/// this, and each entry's page tables, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CacheGeometry {
    pub page_size: u32,
    /// Page pools: every entry has a page table for each.
    pub pools: u32,
    pub layers: Vec<PlanLayer>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Sizes {
    splits: u32,
    partial_bytes: u64,
    too_long: Option<TooLong>,
}

/// Why attention cannot run from a plan: it needs more key splits than fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TooLong {
    needed: u32,
    most: u32,
    tokens: u64,
    max_kv: u32,
    max_keys: u32,
}

/// Query tokens per block: the layer's `bq`, cut to the longest entry.
fn block_tokens(bq: u32, entries: &[PlanEntry]) -> u32 {
    let longest = entries.iter().map(|e| e.tokens).max().unwrap_or(1);
    bq.min(longest).max(1)
}

/// What a plan's layout depends on besides its entries.
pub(crate) struct LayoutInput<'a> {
    pub page_size: u32,
    pub splits: u32,
    /// Query tokens per block of each layer (repeats allowed).
    pub block_sizes: &'a [u32],
}

/// The words of a plan (see `plan_layout`) for `entries`, whose page tables,
/// one per pool, are `tables`, and the blocks of each block size. Pure: it
/// reads no cache and no GPU.
pub(crate) fn layout(
    input: &LayoutInput,
    entries: &[PlanEntry],
    tables: &[&[PageTable]],
) -> (Vec<u32>, [u32; MAX_ROWS as usize + 1]) {
    let mut w = vec![0u32; pl::ENTRIES as usize + entries.len() * pl::ENTRY_WORDS as usize];
    w[pl::SPLITS as usize] = input.splits;
    w[pl::PAGE_SIZE as usize] = input.page_size;
    w[pl::TOKENS as usize] = entries.iter().map(|e| e.tokens).sum();
    // Token -> entry map.
    w[pl::TOKEN_MAP as usize] = w.len() as u32;
    for (i, e) in entries.iter().enumerate() {
        w.extend(std::iter::repeat_n(i as u32, e.tokens as usize));
    }
    // Block lists for every tokens-per-block some layer uses.
    let mut blocks = [0; MAX_ROWS as usize + 1];
    for &bq in input.block_sizes {
        if blocks[bq as usize] > 0 {
            continue;
        }
        w[(pl::BLOCKS + bq) as usize] = w.len() as u32;
        for (i, e) in entries.iter().enumerate() {
            for t0 in (0..e.tokens).step_by(bq as usize) {
                w.extend([i as u32, t0]);
                blocks[bq as usize] += 1;
            }
        }
    }
    // Entries and their page tables, one per pool; a window's released
    // pages read as page 0, which its kernels never reach.
    let mut first_token = 0;
    for (i, (e, tables)) in entries.iter().zip(tables).enumerate() {
        let pages = e.kv_len.div_ceil(input.page_size);
        let table = w.len() as u32;
        for t in tables.iter() {
            w.extend(t.logical(pages, 0));
        }
        let split_len = e.kv_len.div_ceil(input.splits).next_multiple_of(KEY_ALIGN);
        let at = (pl::ENTRIES + i as u32 * pl::ENTRY_WORDS) as usize;
        let entry = &mut w[at..at + pl::ENTRY_WORDS as usize];
        for (field, value) in [
            (pl::ENTRY_FIRST_TOKEN, first_token),
            (pl::ENTRY_TOKENS, e.tokens),
            (pl::ENTRY_FIRST_POS, e.first_pos),
            (pl::ENTRY_KV_LEN, e.kv_len),
            (pl::ENTRY_TABLE, table),
            (pl::ENTRY_PAGES, pages),
            (pl::ENTRY_SPLIT_LEN, split_len),
        ] {
            entry[field as usize] = value;
        }
        first_token += e.tokens;
    }
    (w, blocks)
}

/// Key splits and partial-result bytes for `entries` under `policy`, within
/// `limits`; an error where the plan or its partials cannot fit. Pure: it
/// reads no cache and no GPU.
fn sizes(
    limits: &wgpu::Limits,
    policy: SplitPolicy,
    cache: &CacheGeometry,
    entries: &[PlanEntry],
) -> Result<Sizes> {
    let tokens: u64 = entries.iter().map(|e| e.tokens as u64).sum();
    if tokens > MAX_DISPATCH {
        return Err(Error::BatchTooLarge { what: "query tokens", got: tokens, max: MAX_DISPATCH });
    }
    let blocks = |bq: u32| entries.iter().map(|e| e.tokens.div_ceil(bq) as u64).sum::<u64>();
    let base = (cache.layers.iter())
        .map(|l| l.groups as u64 * blocks(block_tokens(l.bq, entries)))
        .min()
        .unwrap_or(1);
    let max_kv = entries.iter().map(|e| e.kv_len).max().unwrap_or(0);
    let splits = match policy {
        SplitPolicy::Fixed(n) => n.clamp(1, MAX_SPLITS),
        SplitPolicy::Auto { target_workgroups, min_keys_per_split } => {
            let want = (target_workgroups as u64).div_ceil(base.max(1)) as u32;
            let most = max_kv.div_ceil(min_keys_per_split.max(1)).max(1);
            want.clamp(1, most.min(MAX_SPLITS))
        }
    };
    let pages: u64 =
        entries.iter().map(|e| e.kv_len.div_ceil(cache.page_size) as u64).sum::<u64>() * cache.pools as u64;
    let all_blocks: u64 = (1..=MAX_ROWS).map(blocks).sum();
    let words =
        pl::ENTRIES as u64 + entries.len() as u64 * pl::ENTRY_WORDS as u64 + 2 * all_blocks + tokens + pages;
    let (heads, v_dim) =
        (cache.layers.iter()).fold((0, 0), |(h, v), l| (h.max(l.q_heads as u64), v.max(l.v_head_dim as u64)));
    // Fewer splits where the partial results would not fit one binding.
    let per_split = tokens * heads * (v_dim + 2) * 4;
    let fit = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) / per_split.max(1);
    let most = fit.clamp(1, MAX_SPLITS as u64) as u32;
    // Where the adapter caps the keys one workgroup may walk, at least
    // enough splits to keep every split under that cap. If they do not
    // fit, the plan can still append; attending from it is the error.
    let max_keys = cache.layers.iter().map(|l| l.max_keys).min().unwrap_or(u32::MAX);
    let needed = max_kv.div_ceil(max_keys).max(1);
    let too_long = (needed > most).then_some(TooLong { needed, most, tokens, max_kv, max_keys });
    let splits = splits.max(needed).min(most);
    // One split writes the output directly and needs no partials.
    let partial_bytes = if splits > 1 { per_split * splits as u64 } else { 0 };
    check_buffer_size(limits, words * 4, "the plan")?;
    check_buffer_size(limits, partial_bytes, "attention partial results")?;
    Ok(Sizes { splits, partial_bytes, too_long })
}

/// The batch of one step; see the module docs. Reuse one plan across steps;
/// the next `plan_*` call rewrites its buffer through the queue, so submit
/// the work encoded with it before planning the next step.
pub struct Plan {
    ctx: GpuContext,
    buffer: wgpu::Buffer,
    partial: wgpu::Buffer,
    pub(crate) cache_id: u64,
    pub(crate) epoch: u64,
    can_append: bool,
    too_long: Option<TooLong>,
    entries: Vec<PlanEntry>,
    tokens: u32,
    splits: u32,
    blocks: [u32; MAX_ROWS as usize + 1],
    policy: SplitPolicy,
}

impl Plan {
    pub fn new(ctx: &GpuContext) -> Self {
        Plan {
            buffer: ctx.storage_buffer("wgqa plan", 1024),
            partial: ctx.storage_buffer("wgqa partials", 1024),
            ctx: ctx.clone(),
            cache_id: 0,
            epoch: 0,
            can_append: false,
            too_long: None,
            entries: Vec::new(),
            tokens: 0,
            splits: 1,
            blocks: [0; MAX_ROWS as usize + 1],
            policy: SplitPolicy::default(),
        }
    }

    /// Applies from the next `plan_*` call.
    pub fn set_split_policy(&mut self, policy: SplitPolicy) {
        self.policy = policy;
    }

    pub fn entries(&self) -> &[PlanEntry] {
        &self.entries
    }

    /// Query tokens over all entries; Q, K, V and outputs hold this many rows,
    /// entry by entry in plan order.
    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    /// Key splits each query row is divided into.
    pub fn splits(&self) -> u32 {
        self.splits
    }

    /// Query tokens per block for a layer whose shape allows `bq`: no more
    /// than the longest entry has, so decode runs one-token blocks.
    pub(crate) fn block_tokens(&self, bq: u32) -> u32 {
        block_tokens(bq, &self.entries)
    }

    pub(crate) fn blocks(&self, bq: u32) -> u32 {
        self.blocks[bq as usize]
    }

    pub(crate) fn buffers(&self) -> (&wgpu::Buffer, &wgpu::Buffer) {
        (&self.buffer, &self.partial)
    }

    pub(crate) fn can_append(&self) -> bool {
        self.can_append
    }

    /// Errors where the adapter cannot run attention from this plan.
    pub(crate) fn check_attend(&self) -> Result<()> {
        let Some(t) = self.too_long else { return Ok(()) };
        Err(Error::AdapterLimit {
            limit: "key splits",
            needed: t.needed as u64,
            available: t.most as u64,
            what: format!(
                "attend from {} query tokens over {} keys (its shader loops stop early, so a \
                 workgroup may walk at most {} keys; attend from fewer tokens at a time)",
                t.tokens, t.max_kv, t.max_keys
            ),
        })
    }

    /// Checks that the entries fit the kernels and the adapter, before the
    /// cache changes anything.
    pub(crate) fn prepare(&self, cache: &CacheGeometry, entries: &[PlanEntry]) -> Result<Sizes> {
        sizes(self.ctx.limits(), self.policy, cache, entries)
    }

    /// Room for `bytes` with headroom, within the adapter's buffer limits.
    fn grown(&self, bytes: u64) -> u64 {
        let l = self.ctx.limits();
        let most = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
        bytes.next_power_of_two().min(most).max(bytes)
    }

    /// Lays the plan out and uploads it; `tables` are the entries' page
    /// tables, and `owner` the id and epoch of the cache they are of.
    /// Infallible: `prepare` checked it.
    pub(crate) fn write(
        &mut self,
        cache: &CacheGeometry,
        owner: (u64, u64),
        entries: Vec<PlanEntry>,
        tables: &[&[PageTable]],
        sizes: Sizes,
        can_append: bool,
    ) {
        let block_sizes: Vec<u32> = cache.layers.iter().map(|l| block_tokens(l.bq, &entries)).collect();
        let input =
            LayoutInput { page_size: cache.page_size, splits: sizes.splits, block_sizes: &block_sizes };
        let (w, blocks) = layout(&input, &entries, tables);
        let first_token = entries.iter().map(|e| e.tokens).sum();
        self.blocks = blocks;
        let bytes = w.len() as u64 * 4;
        if bytes > self.buffer.size() {
            self.buffer = self.ctx.storage_buffer("wgqa plan", self.grown(bytes));
        }
        if sizes.partial_bytes > self.partial.size() {
            self.partial = self.ctx.storage_buffer("wgqa partials", self.grown(sizes.partial_bytes));
        }
        self.ctx.queue().write_buffer(&self.buffer, 0, bytemuck::cast_slice(&w));
        (self.cache_id, self.epoch) = owner;
        self.can_append = can_append;
        self.too_long = sizes.too_long;
        self.tokens = first_token;
        self.splits = sizes.splits;
        self.entries = entries;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_every_word() {
        let entries = [
            PlanEntry { seq: SeqId::for_test(0), tokens: 3, first_pos: 40, kv_len: 43 },
            PlanEntry { seq: SeqId::for_test(1), tokens: 1, first_pos: 7, kv_len: 8 },
        ];
        // Page size 16: the first sequence's window pool released page 0.
        let all = PageTable { first: 0, pages: vec![5, 6, 7] };
        let windowed = PageTable { first: 1, pages: vec![2, 3] };
        let short = PageTable { first: 0, pages: vec![9] };
        let tables: [&[PageTable]; 2] = [&[all, windowed], &[short.clone(), short]];
        let input = LayoutInput { page_size: 16, splits: 2, block_sizes: &[2, 1, 2] };
        let (w, blocks) = layout(&input, &entries, &tables);
        assert_eq!(&w[..4], &[2, 16, 4, pl::ENTRIES + 2 * pl::ENTRY_WORDS]);
        let map = w[pl::TOKEN_MAP as usize] as usize;
        assert_eq!(&w[map..map + 4], &[0, 0, 0, 1]);
        // Blocks of two tokens: (entry, first token) pairs.
        let two = w[(pl::BLOCKS + 2) as usize] as usize;
        assert_eq!(&w[two..two + 6], &[0, 0, 0, 2, 1, 0]);
        assert_eq!((blocks[1], blocks[2], blocks[3]), (4, 3, 0));
        let entry = |i: u32, field: u32| w[(pl::ENTRIES + i * pl::ENTRY_WORDS + field) as usize];
        assert_eq!([0, 1, 2, 3].map(|f| entry(0, f)), [0, 3, 40, 43]);
        assert_eq!([0, 1, 2, 3].map(|f| entry(1, f)), [3, 1, 7, 8]);
        assert_eq!((entry(0, pl::ENTRY_PAGES), entry(0, pl::ENTRY_SPLIT_LEN)), (3, 64));
        // One table per pool, each ENTRY_PAGES long; released pages read 0.
        let t = entry(0, pl::ENTRY_TABLE) as usize;
        assert_eq!(&w[t..t + 6], &[5, 6, 7, 0, 2, 3]);
        let t = entry(1, pl::ENTRY_TABLE) as usize;
        assert_eq!(&w[t..t + 2], &[9, 9]);
        assert_eq!(w.len(), t + 2);
    }

    fn geometry(max_keys: u32) -> CacheGeometry {
        // 32 query heads on 8 KV heads, one chunk each, blocks of 2 tokens.
        let layer = PlanLayer { q_heads: 32, v_head_dim: 64, groups: 8, bq: 2, max_keys };
        CacheGeometry { page_size: 16, pools: 1, layers: vec![layer; 2] }
    }

    fn decode(kv_len: u32) -> [PlanEntry; 1] {
        [PlanEntry { seq: SeqId::for_test(0), tokens: 1, first_pos: kv_len - 1, kv_len }]
    }

    #[test]
    fn splits_follow_the_policy_and_the_limits() {
        let limits = wgpu::Limits::default();
        let auto = SplitPolicy::default();
        let g = geometry(u32::MAX);
        // 8 workgroups per split: 8 splits reach 64, each over 512 >= 256 keys.
        let s = sizes(&limits, auto, &g, &decode(4096)).unwrap();
        assert_eq!((s.splits, s.partial_bytes, s.too_long), (8, 32 * 66 * 4 * 8, None));
        // Short rows keep at least 256 keys per split; one split needs no partials.
        assert_eq!(sizes(&limits, auto, &g, &decode(600)).unwrap().splits, 3);
        let one = sizes(&limits, auto, &g, &decode(100)).unwrap();
        assert_eq!((one.splits, one.partial_bytes), (1, 0));
        assert_eq!(sizes(&limits, SplitPolicy::Fixed(1000), &g, &decode(8)).unwrap().splits, MAX_SPLITS);
        // A cap on keys per workgroup forces splits, beyond a fixed policy.
        let capped = sizes(&limits, SplitPolicy::Fixed(1), &geometry(1024), &decode(4096)).unwrap();
        assert_eq!((capped.splits, capped.too_long), (4, None));
        // Partials that do not fit cap the splits, and attending is the error.
        let small = wgpu::Limits { max_storage_buffer_binding_size: 3 * 32 * 66 * 4, ..limits.clone() };
        let short = sizes(&small, SplitPolicy::Fixed(1), &geometry(1024), &decode(4096)).unwrap();
        assert_eq!(short.splits, 3);
        assert_eq!(short.too_long.map(|t| (t.needed, t.most)), Some((4, 3)));
    }

    #[test]
    fn batches_beyond_the_kernels_or_the_adapter_are_errors() {
        let limits = wgpu::Limits::default();
        let g = geometry(u32::MAX);
        let wide = [PlanEntry { seq: SeqId::for_test(0), tokens: 70000, first_pos: 0, kv_len: 70000 }];
        let err = sizes(&limits, SplitPolicy::default(), &g, &wide).unwrap_err();
        assert!(matches!(err, Error::BatchTooLarge { got: 70000, .. }), "{err}");
        let tiny = wgpu::Limits { max_storage_buffer_binding_size: 256, ..limits };
        let err = sizes(&tiny, SplitPolicy::Fixed(1), &g, &decode(4096)).unwrap_err();
        assert!(matches!(err, Error::AdapterLimit { limit: "maxStorageBufferBindingSize", .. }), "{err}");
    }
}
