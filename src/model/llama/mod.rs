//! The llama (and gemma3) forward pass on the GPU: every op of a step
//! (embedding, the blocks, the output head) is recorded into one command
//! encoder and submitted once; weights stay quantised; K/V live in the paged
//! cache. Gemma 3 adds per-head Q/K norms, norms of the attention and MLP
//! outputs before the residual adds, GeGLU, a scaled embedding and a RoPE
//! table per base (local and global layers); a llama records none of them.
//!
//! A block is few dispatches: Q, K and V are one matmul, gate and up one
//! (with SwiGLU folded in), and the O and down projections add into the
//! residual themselves. Greedy decoding picks the token on the GPU and reads
//! back 4 bytes. RMSNorm stays a dispatch of its own: folded into a matmul,
//! every workgroup would recompute the token's sum of squares and load the
//! norm weight beside every activation, and on lavapipe, where each load at
//! a per-thread address costs a scalar load per lane, that is more loads
//! than the matmul's own (not measured; a first version had it).

mod config;
mod scratch;
pub(crate) mod tensors;
mod weights;

pub use config::{Activation, Architecture, LlamaConfig};

use super::ops::{self, Batch, Fusion, Output, ARGMAX_NONE};
use super::{perplexity, Gguf};
use crate::error::{Error, Result};
use crate::{attend, GpuContext, KvCache, KvCacheConfig, Plan, Rope, SeqId};
use scratch::Scratch;
use weights::Weights;

/// Tokens of one prefill step; longer prompts run in chunks of this many
/// (chunked prefill over the cached past). Sizes the scratch buffers: about
/// 23 KB per token for SmolLM2.
pub const PREFILL_CHUNK: u32 = 256;

/// Tokens per step when every position's logits are read back
/// ([`LlamaModel::forward_all`]): bounds the `[tokens, vocab]` buffer.
const ALL_LOGITS_CHUNK: u32 = 64;

/// Tokens per KV-cache page.
const PAGE_SIZE: u32 = 16;

/// GPU memory a loaded model holds, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GpuMemory {
    /// Quantised matrices and f32 norm scales.
    pub weights: u64,
    /// Every page of the KV cache.
    pub kv_cache: u64,
    /// Activations, token ids, logits and their readback, the attention plan
    /// and RoPE frequencies.
    pub scratch: u64,
}

impl GpuMemory {
    pub fn total(&self) -> u64 {
        self.weights + self.kv_cache + self.scratch
    }
}

/// A llama or gemma3 model on the GPU with its KV cache.
///
/// ```no_run
/// # async fn demo() -> wgqa::Result<()> {
/// use wgqa::model::{argmax, Gguf, LlamaModel};
/// let ctx = wgqa::GpuContext::new().await?;
/// let gguf = Gguf::open(wgqa::model::DEFAULT_MODEL)?;
/// let mut model = LlamaModel::load(&ctx, &gguf, 2048, |_, _| {})?;
/// let seq = model.cache_mut().add_sequence();
/// let logits = model.step_logits(seq, &[504, 3575, 282]).await?; // prefill
/// let next = argmax(&logits)?;
/// let logits = model.step_logits(seq, &[next]).await?; // one decode step
/// # Ok(()) }
/// ```
pub struct LlamaModel {
    ctx: GpuContext,
    config: LlamaConfig,
    weights: Weights,
    cache: KvCache,
    /// One RoPE table per distinct base, and each layer's table.
    ropes: Vec<Rope>,
    layer_rope: Vec<usize>,
    plan: Plan,
    /// The step's token count, for the per-token ops.
    batch: Batch,
    /// Always one token: the output head runs on the last token only.
    one: Batch,
    scratch: Scratch,
    /// Queue submissions so far (the benchmark counts a token's).
    submissions: u64,
}

impl LlamaModel {
    /// Uploads the weights of a llama or gemma3 GGUF (kept quantised) and makes an f16
    /// KV cache of `kv_capacity_tokens` tokens. `progress(done, total)` is
    /// called in bytes of tensor data as weights upload.
    pub fn load(
        ctx: &GpuContext,
        gguf: &Gguf,
        kv_capacity_tokens: u32,
        progress: impl FnMut(u64, u64),
    ) -> Result<LlamaModel> {
        Self::with_config(ctx, gguf, LlamaConfig::from_gguf(gguf)?, kv_capacity_tokens, progress)
    }

    /// Like [`LlamaModel::load`] with a caller's config, e.g. f32 KV storage
    /// from [`LlamaConfig::with_kv_dtype`].
    pub fn with_config(
        ctx: &GpuContext,
        gguf: &Gguf,
        config: LlamaConfig,
        kv_capacity_tokens: u32,
        progress: impl FnMut(u64, u64),
    ) -> Result<LlamaModel> {
        config.check_file(gguf)?;
        let weights = Weights::load(ctx, gguf, &config, progress)?;
        let cache = KvCache::new(
            ctx,
            KvCacheConfig {
                layers: config.layers.clone(),
                page_size: PAGE_SIZE,
                capacity_tokens: kv_capacity_tokens,
                // A model decodes one sequence; `perplexity` runs a second.
                max_sequences: Some(2),
            },
        )?;
        let (mut ropes, mut bases, mut layer_rope) = (Vec::new(), Vec::new(), Vec::new());
        for layer in 0..config.layers.len() {
            let base = config.layer_rope_base(layer);
            let index = match bases.iter().position(|&b| b == base) {
                Some(i) => i,
                None => {
                    ropes.push(Rope::with_scaling(
                        ctx,
                        config.rope_layout,
                        base,
                        config.head_dim,
                        &config.rope_scaling,
                    )?);
                    bases.push(base);
                    bases.len() - 1
                }
            };
            layer_rope.push(index);
        }
        let scratch = Scratch::new(ctx, &config, PREFILL_CHUNK)?;
        ctx.take_error()?;
        Ok(LlamaModel {
            ctx: ctx.clone(),
            weights,
            cache,
            ropes,
            layer_rope,
            plan: Plan::new(ctx),
            batch: Batch::new(ctx, 1)?,
            one: Batch::new(ctx, 1)?,
            scratch,
            config,
            submissions: 0,
        })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    /// The KV cache: sequences are added, reset and freed here.
    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    pub fn cache_mut(&mut self) -> &mut KvCache {
        &mut self.cache
    }

    /// GPU bytes of every buffer the model made.
    pub fn gpu_memory(&self) -> GpuMemory {
        let (plan, partials) = self.plan.buffers();
        let rope = self.ropes.len() as u64 * self.config.head_dim as u64 / 2 * 4;
        GpuMemory {
            weights: self.weights.gpu_bytes(),
            kv_cache: self.cache.capacity_bytes(),
            scratch: self.scratch.gpu_bytes() + plan.size() + partials.size() + rope + 8,
        }
    }

    /// Bytes of weights one decode token reads: every matrix and norm, the
    /// output head, and one row of the embedding table.
    pub fn weight_bytes_per_token(&self) -> u64 {
        self.weights.bytes_read_per_token()
    }

    /// Queue submissions this model has made.
    pub fn submissions(&self) -> u64 {
        self.submissions
    }

    /// Runs `tokens` after those `seq` holds (a prompt, or one sampled token)
    /// in one submission per [`PREFILL_CHUNK`] tokens, leaving the last
    /// token's logits for [`LlamaModel::last_logits`]. Nothing is read back.
    /// Invalid ids, an empty list and overflowing the context or the cache
    /// are errors that leave `seq` as it was.
    pub fn forward(&mut self, seq: SeqId, tokens: &[u32]) -> Result<()> {
        self.forward_with(seq, tokens, Pick::Logits)
    }

    fn forward_with(&mut self, seq: SeqId, tokens: &[u32], pick: Pick) -> Result<()> {
        self.check_tokens(seq, tokens)?;
        let chunks: Vec<&[u32]> = tokens.chunks(PREFILL_CHUNK as usize).collect();
        let start = self.cache.len(seq)?;
        for (i, chunk) in chunks.iter().enumerate() {
            let head = if i + 1 == chunks.len() { Head::Last(pick) } else { Head::None };
            if let Err(e) = self.step(seq, chunk, head) {
                self.cache.truncate(seq, start)?;
                return Err(e);
            }
        }
        Ok(())
    }

    /// The logits after the last token of the latest [`LlamaModel::forward`]
    /// (or [`LlamaModel::forward_greedy`]): the only readback of a sampled
    /// decode step.
    pub async fn last_logits(&self) -> Result<Vec<f32>> {
        let s = &self.scratch;
        if !s.logits_staged.get() {
            let mut enc = self.ctx.device().create_command_encoder(&Default::default());
            enc.copy_buffer_to_buffer(&s.logits, 0, &s.staging, 0, s.logits.size());
            self.ctx.queue().submit([enc.finish()]);
            s.logits_staged.set(true);
        }
        self.ctx.read_staged(&s.staging, self.config.vocab_size as usize).await
    }

    /// [`LlamaModel::forward`], then the last token's logits (for sampling
    /// on the CPU).
    pub async fn step_logits(&mut self, seq: SeqId, tokens: &[u32]) -> Result<Vec<f32>> {
        self.forward(seq, tokens)?;
        self.last_logits().await
    }

    /// Like [`LlamaModel::forward`], but the step ends by picking the most
    /// likely next token on the GPU, for [`LlamaModel::last_greedy`]; the
    /// logits are not copied for reading.
    pub fn forward_greedy(&mut self, seq: SeqId, tokens: &[u32]) -> Result<()> {
        self.forward_with(seq, tokens, Pick::Greedy)
    }

    /// The most likely token after the latest [`LlamaModel::forward_greedy`]
    /// (the lowest id among equals, as [`super::argmax`]): a 4-byte
    /// readback. Non-finite logits are the same error as on the CPU.
    pub async fn last_greedy(&self) -> Result<u32> {
        let token = self.ctx.read_staged::<u32>(&self.scratch.token_staging, 1).await?[0];
        if token == ARGMAX_NONE {
            // Only the logits can say what was wrong with them.
            return super::argmax(&self.last_logits().await?);
        }
        Ok(token)
    }

    /// [`LlamaModel::forward_greedy`], then [`LlamaModel::last_greedy`]: one
    /// greedy decode step.
    pub async fn step_greedy(&mut self, seq: SeqId, tokens: &[u32]) -> Result<u32> {
        self.forward_greedy(seq, tokens)?;
        self.last_greedy().await
    }

    /// Runs `tokens` like [`LlamaModel::forward`] and returns the logits after
    /// each of them (for tests and perplexity; reads back every row).
    pub async fn forward_all(&mut self, seq: SeqId, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        self.check_tokens(seq, tokens)?;
        let start = self.cache.len(seq)?;
        let vocab = self.config.vocab_size as usize;
        let logits = self.ctx.storage_buffer("wgqa all logits", ALL_LOGITS_CHUNK as u64 * vocab as u64 * 4);
        let mut rows = Vec::with_capacity(tokens.len());
        for chunk in tokens.chunks(ALL_LOGITS_CHUNK as usize) {
            let read = match self.step(seq, chunk, Head::All(&logits)) {
                Ok(()) => self.ctx.read_f32(&logits).await,
                Err(e) => Err(e),
            };
            match read {
                Ok(data) => rows.extend(data.chunks_exact(vocab).take(chunk.len()).map(<[f32]>::to_vec)),
                Err(e) => {
                    self.cache.truncate(seq, start)?;
                    return Err(e);
                }
            }
        }
        Ok(rows)
    }

    /// Perplexity of `tokens`: `exp` of the mean negative log-likelihood of
    /// each token after the first. Runs in a sequence of its own, freed after.
    pub async fn perplexity(&mut self, tokens: &[u32]) -> Result<f64> {
        perplexity::check_tokens(tokens, self.config.vocab_size)?;
        let seq = self.cache.add_sequence();
        let logits = self.forward_all(seq, &tokens[..tokens.len() - 1]).await;
        self.cache.free(seq)?;
        Ok(perplexity::from_logits(&logits?, &tokens[1..]))
    }

    /// Errors unless `tokens` can follow what `seq` holds.
    fn check_tokens(&self, seq: SeqId, tokens: &[u32]) -> Result<()> {
        let vocab = self.config.vocab_size;
        if let Some((index, &token)) = tokens.iter().enumerate().find(|(_, &t)| t >= vocab) {
            return Err(Error::TokenOutOfRange { token, index, vocab });
        }
        if tokens.is_empty() {
            return Err(Error::EmptyBatch);
        }
        let len = self.cache.len(seq)?;
        let needed = len as u64 + tokens.len() as u64;
        if needed > self.config.context_length as u64 {
            return Err(Error::ContextExceeded { needed, context: self.config.context_length });
        }
        // Checked before the first chunk runs, not when a later one fails.
        let page_size = self.cache.page_size() as u64;
        let pages = needed.div_ceil(page_size) - (len as u64).div_ceil(page_size);
        let free = self.cache.free_pages();
        if pages > free as u64 {
            return Err(Error::CacheFull { needed: pages as usize, free, page_size: page_size as u32 });
        }
        Ok(())
    }

    /// One submission: `tokens` (at most [`PREFILL_CHUNK`]) through every
    /// block, then the output head as `head` says. On error `seq` may hold
    /// the reserved tokens; the caller truncates it.
    fn step(&mut self, seq: SeqId, tokens: &[u32], head: Head) -> Result<()> {
        let n = tokens.len() as u32;
        // The ops read the count from `batch`, attention and RoPE from the
        // plan: both come from `n`, one sequence per step.
        self.batch.set(n)?;
        self.cache.plan_append(&mut self.plan, &[(seq, n)])?;
        self.ctx.queue().write_buffer(&self.scratch.ids, 0, bytemuck::cast_slice(tokens));
        let mut enc = self
            .ctx
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("wgqa llama step") });
        let s = &self.scratch;
        self.weights.embedding.embed(&mut enc, &self.batch, &s.ids, &s.x, self.config.embedding_scale)?;
        for layer in 0..self.weights.blocks.len() {
            self.encode_block(&mut enc, layer)?;
        }
        let e = self.config.embedding;
        let (w, s) = (&self.weights, &self.scratch);
        s.logits_staged.set(false);
        match head {
            Head::None => {}
            Head::Last(pick) => {
                let row = e as u64 * 4;
                enc.copy_buffer_to_buffer(&s.x, (n as u64 - 1) * row, &s.last_x, 0, row);
                w.output_norm.encode(&mut enc, &self.one, &s.last_x, &s.last_h)?;
                w.head().matmul(&mut enc, &self.one, &s.last_h, &s.logits)?;
                match pick {
                    Pick::Logits => {
                        enc.copy_buffer_to_buffer(&s.logits, 0, &s.staging, 0, s.logits.size());
                        s.logits_staged.set(true);
                    }
                    Pick::Greedy => {
                        ops::argmax(&self.ctx, &mut enc, &s.logits, self.config.vocab_size, &s.token)?;
                        enc.copy_buffer_to_buffer(&s.token, 0, &s.token_staging, 0, 4);
                    }
                }
            }
            Head::All(logits) => {
                w.output_norm.encode(&mut enc, &self.batch, &s.x, &s.h)?;
                w.head().matmul(&mut enc, &self.batch, &s.h, logits)?;
            }
        }
        self.ctx.queue().submit([enc.finish()]);
        self.submissions += 1;
        self.ctx.take_error()
    }

    /// Records one transformer block on the residual stream.
    fn encode_block(&mut self, enc: &mut wgpu::CommandEncoder, layer: usize) -> Result<()> {
        let (b, s, batch) = (&self.weights.blocks[layer], &self.scratch, &self.batch);
        let a = self.cache.layer_config(layer)?;
        let (q_heads, f) = (a.q_heads, self.config.ffn);
        let fused = |output| Fusion { output, ..Default::default() };

        b.attn_norm.encode(enc, batch, &s.x, &s.h)?;
        match &b.qkv[..] {
            [qkv] => {
                let (q, k) = (q_heads * a.head_dim, a.kv_heads * a.head_dim);
                let split = Output::Split { at: [q, q + k], rest: [&s.k, &s.v] };
                qkv.matmul_fused(enc, batch, &s.h, &s.q, &fused(split))?;
            }
            parts => {
                for (m, y) in parts.iter().zip([&s.q, &s.k, &s.v]) {
                    m.matmul(enc, batch, &s.h, y)?;
                }
            }
        }
        if let Some(bias) = &b.qkv_bias {
            let widths = [q_heads * a.head_dim, a.kv_heads * a.head_dim, a.kv_heads * a.v_head_dim];
            for ((y, bias), width) in [&s.q, &s.k, &s.v].into_iter().zip(bias).zip(widths) {
                ops::add_bias(enc, batch, y, bias, width)?;
            }
        }
        if let Some([q_norm, k_norm]) = &b.qk_norm {
            q_norm.encode(enc, batch, &s.q, q_heads)?;
            k_norm.encode(enc, batch, &s.k, a.kv_heads)?;
        }
        let rope = &self.ropes[self.layer_rope[layer]];
        self.cache.append(enc, &self.plan, layer, &s.k, &s.v, Some(rope))?;
        rope.apply(enc, &self.cache, &self.plan, layer, &s.q)?;
        attend(enc, &self.cache, &self.plan, layer, &s.q, &s.attn)?;
        // x += wo attn, or x += post_norm(wo attn) through `h`.
        let add_to_residual =
            |enc: &mut wgpu::CommandEncoder, m: &ops::QuantMatrix, input, which: usize| match &b.post_norms {
                None => m.matmul_fused(enc, batch, input, &s.x, &fused(Output::Add)),
                Some(norms) => {
                    m.matmul(enc, batch, input, &s.h)?;
                    norms[which].encode_add(enc, batch, &s.h, &s.x)
                }
            };
        add_to_residual(enc, &b.wo, &s.attn, 0)?;

        b.ffn_norm.encode(enc, batch, &s.x, &s.h)?;
        let (glu, separate): (_, fn(_, _, _, _, _) -> _) = match self.config.activation {
            Activation::Silu => (Output::Swiglu, ops::swiglu),
            Activation::GeluTanh => (Output::Geglu, ops::geglu),
        };
        match &b.gate_up[..] {
            [gate_up] => gate_up.matmul_fused(enc, batch, &s.h, &s.gate, &fused(glu))?,
            parts => {
                for (m, y) in parts.iter().zip([&s.gate, &s.up]) {
                    m.matmul(enc, batch, &s.h, y)?;
                }
                separate(enc, batch, &s.gate, &s.up, f)?;
            }
        }
        add_to_residual(enc, &b.down, &s.gate, 1)
    }
}

/// How the last token's next token is picked.
#[derive(Clone, Copy)]
enum Pick {
    /// On the CPU: the logits are copied for reading.
    Logits,
    /// Greedily on the GPU: only the token is copied for reading.
    Greedy,
}

/// Which logits a step computes.
enum Head<'a> {
    /// None (a prompt chunk before the last).
    None,
    /// The last token's, into the scratch logits, then picked as this says.
    Last(Pick),
    /// Every token's, `[tokens, vocab]`, into this buffer.
    All(&'a wgpu::Buffer),
}
