//! CPU reference forward pass of a llama or gemma3 model, in f32 on weights
//! dequantised once at load. Slow but plain: the GPU forward pass and the
//! sampler are tested against it.

use super::config::{Activation, LlamaConfig};
use super::gguf::Gguf;
use super::ops::reference::add_bias;
use super::reference_ops::{add_assign, geglu, rms_norm, swiglu, Matrix};
use super::tensors::{bias_tensor, block_tensor, POST_NORMS, QK_NORMS};
use crate::error::{Error, Result};
use crate::reference::{attention, rope_scaled, round_to_storage};

/// One transformer block's weights.
struct Block {
    attn_norm: Vec<f32>,
    wq: Matrix,
    wk: Matrix,
    wv: Matrix,
    wo: Matrix,
    ffn_norm: Vec<f32>,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
    /// Q, K and V biases, when the file has them.
    qkv_bias: Option<[Vec<f32>; 3]>,
    /// Per-head Q and K norms (`head_dim` wide), when the config has them.
    qk_norm: Option<[Vec<f32>; 2]>,
    /// The attention and MLP output norms, when the config has them.
    post_norms: Option<[Vec<f32>; 2]>,
}

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
/// use wgqa::model::{Gguf, ReferenceModel};
/// let gguf = Gguf::open(wgqa::model::DEFAULT_MODEL)?;
/// let mut model = ReferenceModel::load(&gguf)?;
/// let prompt_logits = model.forward(&[504, 3575, 282])?; // one row per token
/// let next_logits = model.forward(&[4649])?; // continues the same sequence
/// # Ok(()) }
/// ```
pub struct ReferenceModel {
    config: LlamaConfig,
    embedding: Matrix,
    blocks: Vec<Block>,
    output_norm: Vec<f32>,
    /// `None` when the head is tied to the embedding.
    output: Option<Matrix>,
    cache: Vec<LayerCache>,
}

impl ReferenceModel {
    /// Reads the config and dequantises every weight, checking each shape.
    pub fn load(gguf: &Gguf) -> Result<ReferenceModel> {
        ReferenceModel::with_config(gguf, LlamaConfig::from_gguf(gguf)?)
    }

    /// Like [`ReferenceModel::load`] with a caller's config, e.g. one with
    /// f32 KV storage from [`LlamaConfig::with_kv_dtype`].
    pub fn with_config(gguf: &Gguf, config: LlamaConfig) -> Result<ReferenceModel> {
        config.check_file(gguf)?;
        let (e, f, vocab) = (config.embedding as usize, config.ffn as usize, config.vocab_size as usize);
        let embedding = matrix(gguf, "token_embd.weight", vocab, e)?;
        let blocks = config
            .layers
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let name = |t: &str| format!("blk.{i}.{t}.weight");
                let (q, k, v) = (
                    (a.q_heads * a.head_dim) as usize,
                    (a.kv_heads * a.head_dim) as usize,
                    (a.kv_heads * a.v_head_dim) as usize,
                );
                let o_in = (a.q_heads * a.v_head_dim) as usize;
                let d = a.head_dim as usize;
                let pair = |names: [&str; 2], len: usize| -> Result<[Vec<f32>; 2]> {
                    Ok([
                        vector(gguf, &block_tensor(i, names[0]), len)?,
                        vector(gguf, &block_tensor(i, names[1]), len)?,
                    ])
                };
                let qk_norm = config.qk_norm.then(|| pair(QK_NORMS, d)).transpose()?;
                let post_norms = config.post_norms.then(|| pair(POST_NORMS, e)).transpose()?;
                let qkv_bias = match config.qkv_bias {
                    true => Some([
                        vector(gguf, &bias_tensor(i, "attn_q"), q)?,
                        vector(gguf, &bias_tensor(i, "attn_k"), k)?,
                        vector(gguf, &bias_tensor(i, "attn_v"), v)?,
                    ]),
                    false => None,
                };
                Ok(Block {
                    qkv_bias,
                    qk_norm,
                    post_norms,
                    attn_norm: vector(gguf, &name("attn_norm"), e)?,
                    wq: matrix(gguf, &name("attn_q"), q, e)?,
                    wk: matrix(gguf, &name("attn_k"), k, e)?,
                    wv: matrix(gguf, &name("attn_v"), v, e)?,
                    wo: matrix(gguf, &name("attn_output"), e, o_in)?,
                    ffn_norm: vector(gguf, &name("ffn_norm"), e)?,
                    gate: matrix(gguf, &name("ffn_gate"), f, e)?,
                    up: matrix(gguf, &name("ffn_up"), f, e)?,
                    down: matrix(gguf, &name("ffn_down"), e, f)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output_norm = vector(gguf, "output_norm.weight", e)?;
        let output = match config.tied_output {
            true => None,
            false => Some(matrix(gguf, "output.weight", vocab, e)?),
        };
        let cache = config.layers.iter().map(|_| LayerCache::default()).collect();
        Ok(ReferenceModel { config, embedding, blocks, output_norm, output, cache })
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
            tokens.iter().flat_map(|&t| self.embedding.row(t as usize)).map(|&v| v * scale).collect();
        for layer in 0..self.blocks.len() {
            self.block(layer, &mut x, &positions);
        }
        let h = rms_norm(&x, &self.output_norm, self.config.rms_eps);
        let logits = self.output.as_ref().unwrap_or(&self.embedding).apply(&h);
        Ok(logits.chunks_exact(vocab as usize).map(<[f32]>::to_vec).collect())
    }

    /// One transformer block on the residual stream `x` (`[tokens, embedding]`).
    fn block(&mut self, layer: usize, x: &mut [f32], positions: &[u32]) {
        let (cfg, b) = (&self.config.layers[layer], &self.blocks[layer]);
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

/// Negative log-likelihood (natural log) of `target` under `logits`, via a
/// log-sum-exp in f64; `None` when `target` is not an index of `logits`.
pub fn token_nll(logits: &[f32], target: u32) -> Option<f64> {
    let chosen = *logits.get(target as usize)? as f64;
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &l| m.max(l as f64));
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    Some(max + sum.ln() - chosen)
}

/// Perplexity of `tokens` under the model: `exp` of the mean negative
/// log-likelihood of each token after the first, given those before it.
/// Resets the model first and leaves the sequence in its cache.
pub fn perplexity(model: &mut ReferenceModel, tokens: &[u32]) -> Result<f64> {
    if tokens.len() < 2 {
        return Err(Error::TooFewTokens { what: "perplexity", needed: 2, got: tokens.len() });
    }
    // The last token is only a target, never fed: check it here like `forward` checks the rest.
    let (last, vocab) = (tokens[tokens.len() - 1], model.config.vocab_size);
    if last >= vocab {
        return Err(Error::TokenOutOfRange { token: last, index: tokens.len() - 1, vocab });
    }
    model.reset();
    let logits = model.forward(&tokens[..tokens.len() - 1])?;
    let nll: f64 = logits.iter().zip(&tokens[1..]).filter_map(|(l, &t)| token_nll(l, t)).sum();
    Ok((nll / logits.len() as f64).exp())
}

/// A `rows x cols` weight, checked against the tensor's dims (`[cols, rows]`
/// in ggml order).
fn matrix(gguf: &Gguf, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
    gguf.tensor_with_dims(name, &[cols as u64, rows as u64])?;
    Ok(Matrix { rows, cols, data: gguf.dequantize(name)? })
}

/// A 1-D weight (a norm's scale) of `len` values.
fn vector(gguf: &Gguf, name: &str, len: usize) -> Result<Vec<f32>> {
    gguf.tensor_with_dims(name, &[len as u64])?;
    gguf.dequantize(name)
}
