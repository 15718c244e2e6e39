//! The paged KV cache: per-layer page pools on the GPU, page tables and
//! lengths on the host. A contiguous cache is the one-sequence case.

use std::sync::atomic::{AtomicU64, Ordering};

use super::pages::{PageAllocator, PageTable};
use super::plan::{CacheGeometry, Plan, PlanEntry, PlanLayer, Sizes};
use super::sequence::{SeqId, Sequence};
use crate::attention::AttendShape;
use crate::{AttentionConfig, Error, GpuContext, Result};

static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// Shape of a KV cache.
#[derive(Clone, Debug, PartialEq)]
pub struct KvCacheConfig {
    /// One config per layer; they may differ (variable GQA).
    pub layers: Vec<AttentionConfig>,
    /// Tokens per page.
    pub page_size: u32,
    /// Tokens the cache holds over all sequences (rounded up to whole pages).
    pub capacity_tokens: u32,
    /// Most sequences live at once, where known. Causal layers with a
    /// sliding window keep only the window's pages of each sequence; with
    /// this set their pools are sized for that many windows (see
    /// [`KvCache::new`]) rather than for `capacity_tokens`.
    pub max_sequences: Option<u32>,
}

impl KvCacheConfig {
    /// `layers` copies of one config.
    pub fn uniform(cfg: AttentionConfig, layers: usize, page_size: u32, capacity_tokens: u32) -> Self {
        KvCacheConfig { layers: vec![cfg; layers], page_size, capacity_tokens, max_sequences: None }
    }
}

/// The keys a layer's cache keeps of a sequence: all, or only those a
/// causal sliding window of this many tokens can still reach.
fn retention(cfg: &AttentionConfig) -> Option<u32> {
    cfg.window.filter(|_| cfg.causal)
}

/// Layers that keep the same keys share a pool of pages: page `p` of a
/// sequence holds its tokens `p * page_size..` in every layer of the pool.
struct PagePool {
    window: Option<u32>,
    pages: PageAllocator,
    /// K and V bytes of one token over the pool's layers.
    bytes_per_token: u64,
}

impl PagePool {
    /// The first logical page a sequence of `len` tokens must keep so that a
    /// query at position `len` (and a rollback to `len`) still sees every key
    /// of its window.
    fn first_kept(&self, len: u32, page_size: u32) -> u32 {
        self.window.map_or(0, |w| (len + 1).saturating_sub(w) / page_size)
    }
}

pub(crate) struct Layer {
    pub cfg: AttentionConfig,
    /// Its page pool: the page table of the plan's entries it reads.
    pub pool: u32,
    pub shape: AttendShape,
    pub k: wgpu::Buffer,
    pub v: wgpu::Buffer,
    pub sinks: wgpu::Buffer,
}

struct Slot {
    generation: u32,
    seq: Option<Sequence>,
}

/// Paged K/V storage for every layer, and the sequences living in it.
///
/// Page `p` of a sequence holds its tokens `p*page_size..` in the layers of
/// one pool; within a layer's buffers a page is laid out
/// `[kv_head][slot][dim]`. Layers that keep every token share one pool;
/// causal layers with a sliding window of `w` tokens have a pool per `w` and
/// release the pages a window no longer reaches, so their memory stops
/// growing at the window.
pub struct KvCache {
    ctx: GpuContext,
    id: u64,
    /// Bumped by every change of a sequence; plans record it.
    epoch: u64,
    capacity_tokens: u64,
    layers: Vec<Layer>,
    pools: Vec<PagePool>,
    /// The page size, and the pools and layers as plans see them.
    geometry: CacheGeometry,
    slots: Vec<Slot>,
    /// Bound where a kernel takes RoPE frequencies but none apply.
    pub(crate) no_rope: wgpu::Buffer,
}

impl KvCache {
    /// Allocates every layer's pages. Layers that keep every token get
    /// `capacity_tokens` (rounded up to whole pages); a sliding-window pool
    /// as many, or, with `max_sequences` set, fewer: room for that many
    /// sequences appending up to `window` tokens at a time.
    pub fn new(ctx: &GpuContext, config: KvCacheConfig) -> Result<Self> {
        if config.layers.is_empty() {
            return Err(Error::NoLayers);
        }
        if config.page_size == 0 || config.page_size > 65536 {
            return Err(Error::InvalidPageSize(config.page_size));
        }
        if config.capacity_tokens == 0 || config.max_sequences == Some(0) {
            return Err(Error::ZeroCapacity);
        }
        let page_size = config.page_size;
        let n_pages = config.capacity_tokens.div_ceil(page_size);
        let mut pools: Vec<PagePool> = Vec::new();
        let mut layers = Vec::with_capacity(config.layers.len());
        for cfg in config.layers {
            cfg.validate()?;
            let caps = ctx.capabilities();
            let shape = AttendShape::new(&cfg, ctx.limits(), &caps)?;
            let window = retention(&cfg);
            let pool = match pools.iter().position(|p| p.window == window) {
                Some(i) => i,
                None => {
                    let pages = match (window, config.max_sequences) {
                        (Some(w), Some(seqs)) => {
                            // The window before an append, whole pages, and
                            // the append's tokens.
                            let per_seq = (2 * w as u64 - 1) / page_size as u64 + 2;
                            (seqs as u64 * per_seq).min(n_pages as u64) as u32
                        }
                        _ => n_pages,
                    };
                    pools.push(PagePool { window, pages: PageAllocator::new(pages), bytes_per_token: 0 });
                    pools.len() - 1
                }
            };
            pools[pool].bytes_per_token += cfg.kv_bytes_per_token();
            let slots = pools[pool].pages.total() as u64 * page_size as u64;
            let bytes = |dim: u32| slots * cfg.kv_heads as u64 * cfg.dtype.row_bytes(dim);
            let (k_bytes, v_bytes) = (bytes(cfg.head_dim), bytes(cfg.v_head_dim));
            ctx.check_buffer_size(k_bytes.max(v_bytes), "one layer's K or V pages")?;
            let sinks = match &cfg.sinks {
                Some(s) => ctx.upload("wgqa sinks", s),
                None => ctx.storage_buffer("wgqa no sinks", 4),
            };
            layers.push(Layer {
                k: ctx.storage_buffer("wgqa K pages", k_bytes),
                v: ctx.storage_buffer("wgqa V pages", v_bytes),
                sinks,
                shape,
                pool: pool as u32,
                cfg,
            });
        }
        ctx.take_error()?;
        let geometry = CacheGeometry {
            page_size,
            pools: pools.len() as u32,
            layers: layers.iter().map(|l| PlanLayer::new(&l.cfg, &l.shape)).collect(),
        };
        Ok(KvCache {
            id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
            epoch: 0,
            capacity_tokens: n_pages as u64 * page_size as u64,
            layers,
            pools,
            geometry,
            slots: Vec::new(),
            no_rope: ctx.storage_buffer("wgqa no rope", 4),
            ctx: ctx.clone(),
        })
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    pub fn page_size(&self) -> u32 {
        self.geometry.page_size
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    pub fn layer_config(&self, layer: usize) -> Result<&AttentionConfig> {
        Ok(&self.layer(layer)?.cfg)
    }

    /// Bytes of K and V one token takes over all layers.
    pub fn bytes_per_token(&self) -> u64 {
        self.layers.iter().map(|l| l.cfg.kv_bytes_per_token()).sum()
    }

    /// Tokens one sequence, or all of them together, can hold in the layers
    /// that keep every token (`capacity_tokens` rounded up to whole pages).
    /// Sliding-window layers hold only their windows.
    pub fn capacity_tokens(&self) -> u64 {
        self.capacity_tokens
    }

    /// GPU bytes of all K/V pages.
    pub fn capacity_bytes(&self) -> u64 {
        let page = self.page_size() as u64;
        self.pools.iter().map(|p| p.pages.total() as u64 * page * p.bytes_per_token).sum()
    }

    /// GPU bytes of the pages sequences hold now.
    pub fn bytes_in_use(&self) -> u64 {
        let page = self.page_size() as u64;
        self.pools.iter().map(|p| p.pages.used() as u64 * page * p.bytes_per_token).sum()
    }

    /// Pages not held by any sequence in the pool of the first layer.
    pub fn free_pages(&self) -> usize {
        self.pools[0].pages.free()
    }

    /// Pages held by sequences in the pool of `layer`.
    pub fn pages_in_use(&self, layer: usize) -> Result<usize> {
        Ok(self.pools[self.layer(layer)?.pool as usize].pages.used())
    }

    /// Starts an empty sequence.
    pub fn add_sequence(&mut self) -> SeqId {
        let index = match self.slots.iter().position(|s| s.seq.is_none()) {
            Some(i) => i,
            None => {
                self.slots.push(Slot { generation: 0, seq: None });
                self.slots.len() - 1
            }
        };
        let slot = &mut self.slots[index];
        slot.seq = Some(Sequence { tables: vec![PageTable::default(); self.pools.len()], len: 0 });
        SeqId { cache: self.id, index: index as u32, generation: slot.generation }
    }

    /// Tokens cached for `seq`.
    pub fn len(&self, seq: SeqId) -> Result<u32> {
        Ok(self.sequence(seq)?.len)
    }

    /// Live sequences.
    pub fn sequences(&self) -> Vec<SeqId> {
        (self.slots.iter().enumerate())
            .filter(|(_, s)| s.seq.is_some())
            .map(|(i, s)| SeqId { cache: self.id, index: i as u32, generation: s.generation })
            .collect()
    }

    /// Rolls `seq` back to its first `len` tokens, releasing whole pages past
    /// them. An error, changing nothing, where a sliding-window layer has
    /// released keys that a query at `len` would see.
    pub fn truncate(&mut self, seq: SeqId, len: u32) -> Result<()> {
        let page_size = self.page_size();
        let s = self.sequence(seq)?;
        if len > s.len {
            return Err(Error::PositionOutOfRange { seq, position: len, len: s.len });
        }
        if len > 0 {
            self.check_window(seq, len)?;
        }
        let s = self.sequence_mut(seq)?;
        s.len = len;
        let end = len.div_ceil(page_size);
        let released: Vec<Vec<u32>> = s.tables.iter_mut().map(|t| t.keep(t.first, end)).collect();
        for (pool, pages) in self.pools.iter_mut().zip(released) {
            pool.pages.release(pages);
        }
        self.epoch += 1;
        Ok(())
    }

    /// Errors unless every pool of `seq` still holds the keys a query at
    /// `position` sees.
    fn check_window(&self, seq: SeqId, position: u32) -> Result<()> {
        let s = self.sequence(seq)?;
        for (pool, table) in self.pools.iter().zip(&s.tables) {
            let Some(w) = pool.window else { continue };
            let needed = (position + 1).saturating_sub(w);
            let kept = table.first * self.page_size();
            if needed < kept {
                return Err(Error::WindowDropped { seq, position, needed, kept });
            }
        }
        Ok(())
    }

    /// Empties `seq`, keeping its handle.
    pub fn reset(&mut self, seq: SeqId) -> Result<()> {
        self.truncate(seq, 0)
    }

    /// Ends `seq` and releases its pages for reuse.
    pub fn free(&mut self, seq: SeqId) -> Result<()> {
        self.reset(seq)?;
        let slot = &mut self.slots[seq.index as usize];
        slot.seq = None;
        slot.generation = slot.generation.wrapping_add(1);
        Ok(())
    }

    /// Reserves room for `tokens` new tokens at the end of each listed
    /// sequence and fills `plan` for writing them (`append`) and attending
    /// from them (`attend`). All or nothing: on error no sequence changes.
    pub fn plan_append(&mut self, plan: &mut Plan, batch: &[(SeqId, u32)]) -> Result<()> {
        let page_size = self.page_size();
        let mut entries = Vec::with_capacity(batch.len());
        // Per pool: pages to take, and pages the window releases first.
        let mut needed = vec![0usize; self.pools.len()];
        let mut released = vec![0usize; self.pools.len()];
        for &(seq, tokens) in batch {
            let s = self.sequence(seq)?;
            let len = s.len.checked_add(tokens).ok_or(Error::PositionOutOfRange {
                seq,
                position: u32::MAX,
                len: s.len,
            })?;
            for (i, (pool, table)) in self.pools.iter().zip(&s.tables).enumerate() {
                let first = pool.first_kept(s.len, page_size).max(table.first);
                needed[i] += (len.div_ceil(page_size).saturating_sub(table.end().max(first))) as usize;
                released[i] += (first.min(table.end()) - table.first) as usize;
            }
            entries.push(PlanEntry { seq, tokens, first_pos: s.len, kv_len: len });
        }
        self.check_entries(&entries)?;
        for (i, pool) in self.pools.iter().enumerate() {
            let free = pool.pages.free() + released[i];
            if needed[i] > free {
                return Err(Error::CacheFull { needed: needed[i], free, page_size });
            }
        }
        let sizes = plan.prepare(&self.geometry, &entries)?;
        for e in &entries {
            let old_len = self.sequence(e.seq)?.len;
            let index = e.seq.index as usize;
            let s = self.slots[index].seq.as_mut().expect("checked live");
            for (pool, table) in self.pools.iter_mut().zip(&mut s.tables) {
                let first = pool.first_kept(old_len, page_size).max(table.first);
                pool.pages.release(table.keep(first, table.end()));
                if table.pages.is_empty() {
                    table.first = first;
                }
                let want = (e.kv_len.div_ceil(page_size) - table.end()) as usize;
                table.pages.extend(pool.pages.alloc(want).expect("free pages were counted"));
            }
            s.len = e.kv_len;
        }
        self.epoch += 1;
        self.write_plan(plan, entries, sizes, true);
        Ok(())
    }

    /// Undoes the reservation of `plan` (from `plan_append`, and still
    /// current): every sequence returns to its length before it. `append`
    /// does this itself when it fails.
    pub fn rollback(&mut self, plan: &Plan) -> Result<()> {
        self.check_plan(plan)?;
        if !plan.can_append() {
            return Err(Error::PlanCannotAppend);
        }
        for e in plan.entries() {
            self.truncate(e.seq, e.first_pos)?;
        }
        Ok(())
    }

    /// Fills `plan` for attending from queries without appending: each entry
    /// is (sequence, query tokens, position of the first query). For causal
    /// layers the queries must be positions already in the sequence; for
    /// cross-attention positions only matter to a sliding window.
    pub fn plan_queries(&self, plan: &mut Plan, batch: &[(SeqId, u32, u32)]) -> Result<()> {
        let causal = self.layers.iter().any(|l| l.cfg.causal);
        let mut entries = Vec::with_capacity(batch.len());
        for &(seq, tokens, first_pos) in batch {
            let len = self.len(seq)?;
            let end = first_pos.checked_add(tokens).filter(|&end| !causal || end <= len);
            if end.is_none() {
                let position = first_pos.saturating_add(tokens.saturating_sub(1));
                return Err(Error::PositionOutOfRange { seq, position, len });
            }
            if causal {
                self.check_window(seq, first_pos)?;
            }
            entries.push(PlanEntry { seq, tokens, first_pos, kv_len: len });
        }
        self.check_entries(&entries)?;
        let sizes = plan.prepare(&self.geometry, &entries)?;
        self.write_plan(plan, entries, sizes, false);
        Ok(())
    }

    /// Hands `plan` the entries' page tables and this cache's geometry.
    fn write_plan(&self, plan: &mut Plan, entries: Vec<PlanEntry>, sizes: Sizes, can_append: bool) {
        let tables: Vec<&[PageTable]> = (entries.iter())
            .map(|e| &self.sequence(e.seq).expect("plan entries are live").tables[..])
            .collect();
        plan.write(&self.geometry, (self.id, self.epoch), entries, &tables, sizes, can_append);
    }

    fn check_entries(&self, entries: &[PlanEntry]) -> Result<()> {
        if entries.is_empty() || entries.iter().any(|e| e.tokens == 0) {
            return Err(Error::EmptyBatch);
        }
        for (i, e) in entries.iter().enumerate() {
            if entries[..i].iter().any(|o| o.seq == e.seq) {
                return Err(Error::DuplicateSequence(e.seq));
            }
        }
        Ok(())
    }

    /// Errors unless `plan` describes this cache as it is now.
    pub(crate) fn check_plan(&self, plan: &Plan) -> Result<()> {
        if plan.cache_id != self.id {
            return Err(Error::ForeignPlan);
        }
        if plan.epoch != self.epoch {
            return Err(Error::StalePlan);
        }
        Ok(())
    }

    pub(crate) fn layer(&self, layer: usize) -> Result<&Layer> {
        self.layers.get(layer).ok_or(Error::LayerOutOfRange { layer, layers: self.layers.len() })
    }

    pub(crate) fn sequence(&self, seq: SeqId) -> Result<&Sequence> {
        self.slots
            .get(seq.index as usize)
            .filter(|_| seq.cache == self.id)
            .filter(|s| s.generation == seq.generation)
            .and_then(|s| s.seq.as_ref())
            .ok_or(Error::UnknownSequence(seq))
    }

    fn sequence_mut(&mut self, seq: SeqId) -> Result<&mut Sequence> {
        let id = self.id;
        self.slots
            .get_mut(seq.index as usize)
            .filter(|_| seq.cache == id)
            .filter(|s| s.generation == seq.generation)
            .and_then(|s| s.seq.as_mut())
            .ok_or(Error::UnknownSequence(seq))
    }
}
