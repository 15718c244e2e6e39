//! CPU reference forward pass of a llama or gemma3 model, in f32 on weights
//! dequantised once at load. Slow but plain: the GPU forward pass and the
//! sampler are tested against it.

pub(crate) mod ops;
mod weights;

use crate::error::{Error, Result};
use crate::model::{perplexity, Activation, Gguf, LlamaConfig};
use crate::reference::{add_bias, attention, rope_scaled, round_to_storage};
use ops::{add_assign, geglu, rms_norm, swiglu};
pub(crate) use weights::Weights;

/// One layer's cached keys and values, `[tokens, kv_heads, head_dim]`, with
/// RoPE applied and rounded to the layer's KV storage type, as the GPU cache
/// holds them.
#[derive(Default)]
struct LayerCache {
    k: Vec<f32>,
    v: Vec<f32>,
}

/// A llama or gemma3 model on the CPU with its own KV cache for one sequence.
///
/// ```no_run
/// # fn demo() -> wgqa::Result<()> {
/// use wgqa::model::{Gguf, CpuModel};
/// let gguf = Gguf::open(wgqa::model::DEFAULT_MODEL)?;
/// let mut model = CpuModel::load(&gguf)?;
/// let prompt_logits = model.forward(&[504, 3575, 282])?; // one row per token
/// let next_logits = model.forward(&[4649])?; // continues the same sequence
/// # Ok(()) }
/// ```
pub struct CpuModel {
    config: LlamaConfig,
    weights: Weights,
    cache: Vec<LayerCache>,
}

impl CpuModel {
    /// Reads the config and dequantises every weight, checking each shape.
    pub fn load(gguf: &Gguf) -> Result<CpuModel> {
        CpuModel::with_config(gguf, LlamaConfig::from_gguf(gguf)?)
    }

    /// Like [`CpuModel::load`] with a caller's config, e.g. one with
    /// f32 KV storage from [`LlamaConfig::with_kv_dtype`].
    pub fn with_config(gguf: &Gguf, config: LlamaConfig) -> Result<CpuModel> {
        config.check_file(gguf)?;
        let weights = Weights::load(gguf, &config)?;
        let cache = config.layers.iter().map(|_| LayerCache::default()).collect();
        Ok(CpuModel { config, weights, cache })
    }

    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Tokens in the KV cache: the position the next token gets.
    pub fn len(&self) -> usize {
        let a = &self.config.layers[0];
        self.cache[0].k.len() / (a.kv_heads * a.head_dim) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Perplexity of `tokens`: `exp` of the mean negative log-likelihood of
    /// each token after the first, given those before it. Resets the model
    /// first and leaves the sequence in its cache.
    pub fn perplexity(&mut self, tokens: &[u32]) -> Result<f64> {
        perplexity::check_tokens(tokens, self.config.vocab_size)?;
        self.reset();
        let logits = self.forward(&tokens[..tokens.len() - 1])?;
        Ok(perplexity::from_logits(&logits, &tokens[1..]))
    }

    /// Forgets the sequence: the next `forward` starts at position 0.
    pub fn reset(&mut self) {
        self.cache.iter_mut().for_each(|c| *c = LayerCache::default());
    }

    /// Runs `tokens` after those already in the cache (a prompt, then one
    /// token per decode step: both give the same logits) and returns the
    /// logits after each of them, `vocab_size` values per token. Out-of-range
    /// ids and overflowing the context are errors that leave the cache as it was.
    pub fn forward(&mut self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        let vocab = self.config.vocab_size;
        if let Some((index, &token)) = tokens.iter().enumerate().find(|(_, &t)| t >= vocab) {
            return Err(Error::TokenOutOfRange { token, index, vocab });
        }
        let start = self.len();
        let needed = (start + tokens.len()) as u64;
        if needed > self.config.context_length as u64 {
            return Err(Error::ContextExceeded { needed, context: self.config.context_length });
        }
        if tokens.is_empty() {
            return Ok(Vec::new());
        }
        let positions: Vec<u32> = (start as u32..needed as u32).collect();
        let scale = self.config.embedding_scale;
        let mut x: Vec<f32> =
            tokens.iter().flat_map(|&t| self.weights.embedding.row(t as usize)).map(|&v| v * scale).collect();
        for layer in 0..self.weights.blocks.len() {
            self.block(layer, &mut x, &positions);
        }
        let h = rms_norm(&x, &self.weights.output_norm, self.config.rms_eps);
        let logits = self.weights.head().apply(&h);
        Ok(logits.chunks_exact(vocab as usize).map(<[f32]>::to_vec).collect())
    }

    /// One transformer block on the residual stream `x` (`[tokens, embedding]`).
    fn block(&mut self, layer: usize, x: &mut [f32], positions: &[u32]) {
        let (cfg, b) = (&self.config.layers[layer], &self.weights.blocks[layer]);
        let (base, layout, eps) =
            (self.config.layer_rope_base(layer), self.config.rope_layout, self.config.rms_eps);
        let (hq, hkv, d) = (cfg.q_heads as usize, cfg.kv_heads as usize, cfg.head_dim as usize);

        let h = rms_norm(x, &b.attn_norm, eps);
        let (mut q, mut k, mut v) = (b.wq.apply(&h), b.wk.apply(&h), b.wv.apply(&h));
        if let Some([bq, bk, bv]) = &b.qkv_bias {
            (q, k, v) = (add_bias(&q, bq), add_bias(&k, bk), add_bias(&v, bv));
        }
        if let Some([qn, kn]) = &b.qk_norm {
            (q, k) = (rms_norm(&q, qn, eps), rms_norm(&k, kn, eps));
        }
        let scaling = &self.config.rope_scaling;
        rope_scaled(layout, base, scaling, &mut q, hq, d, positions);
        rope_scaled(layout, base, scaling, &mut k, hkv, d, positions);
        round_to_storage(cfg.dtype, d, &mut k);
        round_to_storage(cfg.dtype, cfg.v_head_dim as usize, &mut v);
        let cache = &mut self.cache[layer];
        cache.k.extend_from_slice(&k);
        cache.v.extend_from_slice(&v);
        let attn = attention(cfg, &q, positions, &cache.k, &cache.v);
        let post = |out: Vec<f32>, which: usize| match &b.post_norms {
            Some(norms) => rms_norm(&out, &norms[which], eps),
            None => out,
        };
        add_assign(x, &post(b.wo.apply(&attn), 0));

        let h = rms_norm(x, &b.ffn_norm, eps);
        let (gate, up) = (b.gate.apply(&h), b.up.apply(&h));
        let act = match self.config.activation {
            Activation::Silu => swiglu(&gate, &up),
            Activation::GeluTanh => geglu(&gate, &up),
        };
        add_assign(x, &post(b.down.apply(&act), 1));
    }
}
