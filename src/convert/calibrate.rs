//! The source model run once on the CPU over a calibration text: each
//! layer's activations (what the calibrated method fits to) and the loss
//! with one layer's K/V replaced (each layer's sensitivity, for Variable GQA).

use crate::error::{Error, Result};
use crate::model::reference_ops::{add_assign, rms_norm, swiglu, Matrix};
use crate::model::{token_nll, Gguf, LlamaConfig};
use crate::reference::{attention, rope_scaled};
use crate::AttentionConfig;

/// One block's weights, f32.
struct Block {
    attn_norm: Vec<f32>,
    wq: Matrix,
    wo: Matrix,
    ffn_norm: Vec<f32>,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
}

/// What one layer saw on the calibration text, `T` tokens.
pub(super) struct LayerActs {
    /// Residual stream entering the layer, `[T, embedding]`.
    x_in: Vec<f32>,
    /// The normed input of attention, `[T, embedding]`.
    pub h: Vec<f32>,
    /// Queries after RoPE, `[T, q_heads, head_dim]`.
    pub q: Vec<f32>,
    /// The original attention output of each query head, `[T, q_heads, v_head_dim]`.
    pub out: Vec<f32>,
}

/// The source model's activations on a calibration text.
pub struct Calibration {
    cfg: LlamaConfig,
    tokens: Vec<u32>,
    blocks: Vec<Block>,
    embedding: Matrix,
    output_norm: Vec<f32>,
    output: Option<Matrix>,
    /// Each layer's source K and V projections.
    source_kv: Vec<(Matrix, Matrix)>,
    pub(super) layers: Vec<LayerActs>,
    /// Tokens scored by [`Calibration::loss_increase`].
    scored: usize,
    /// Mean NLL of the source model over those tokens.
    base_loss: f64,
}

fn matrix(gguf: &Gguf, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
    gguf.tensor_with_dims(name, &[cols as u64, rows as u64])?;
    Ok(Matrix { rows, cols, data: gguf.dequantize(name)? })
}

fn vector(gguf: &Gguf, name: &str, len: usize) -> Result<Vec<f32>> {
    gguf.tensor_with_dims(name, &[len as u64])?;
    gguf.dequantize(name)
}

impl Calibration {
    /// Runs the model over the first `context_length` of `tokens`; the
    /// first `scored` of them (at least 2) are the sensitivity text.
    pub fn run(gguf: &Gguf, cfg: &LlamaConfig, tokens: &[u32], scored: usize) -> Result<Calibration> {
        let tokens: Vec<u32> = tokens.iter().take(cfg.context_length as usize).copied().collect();
        let vocab = cfg.vocab_size;
        if let Some((index, &token)) = tokens.iter().enumerate().find(|(_, &t)| t >= vocab) {
            return Err(Error::TokenOutOfRange { token, index, vocab });
        }
        if tokens.len() < 2 {
            return Err(Error::TooFewTokens { what: "calibration", needed: 2, got: tokens.len() });
        }
        let (e, f, v) = (cfg.embedding as usize, cfg.ffn as usize, cfg.vocab_size as usize);
        let (q_rows, o_cols) =
            ((cfg.q_heads * cfg.head_dim) as usize, (cfg.q_heads * cfg.v_head_dim) as usize);
        let blocks = (0..cfg.n_layers as usize)
            .map(|i| {
                let name = |t: &str| format!("blk.{i}.{t}.weight");
                Ok(Block {
                    attn_norm: vector(gguf, &name("attn_norm"), e)?,
                    wq: matrix(gguf, &name("attn_q"), q_rows, e)?,
                    wo: matrix(gguf, &name("attn_output"), e, o_cols)?,
                    ffn_norm: vector(gguf, &name("ffn_norm"), e)?,
                    gate: matrix(gguf, &name("ffn_gate"), f, e)?,
                    up: matrix(gguf, &name("ffn_up"), f, e)?,
                    down: matrix(gguf, &name("ffn_down"), e, f)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut c = Calibration {
            cfg: cfg.clone(),
            embedding: matrix(gguf, "token_embd.weight", v, e)?,
            output_norm: vector(gguf, "output_norm.weight", e)?,
            output: match cfg.tied_output {
                true => None,
                false => Some(matrix(gguf, "output.weight", v, e)?),
            },
            blocks,
            source_kv: Vec::new(),
            layers: Vec::new(),
            scored: scored.clamp(2, tokens.len()),
            base_loss: 0.0,
            tokens,
        };
        let mut x: Vec<f32> = c.tokens.iter().flat_map(|&t| c.embedding.row(t as usize)).copied().collect();
        for layer in 0..c.blocks.len() {
            let k = matrix(gguf, &format!("blk.{layer}.attn_k.weight"), c.kv_rows(layer, cfg.head_dim), e)?;
            let v = matrix(gguf, &format!("blk.{layer}.attn_v.weight"), c.kv_rows(layer, cfg.v_head_dim), e)?;
            let acts = c.block(layer, &mut x, &k, &v, &cfg.layers[layer], true);
            c.layers.extend(acts);
            c.source_kv.push((k, v));
        }
        c.base_loss = c.loss(&x[..c.scored * e]);
        Ok(c)
    }

    fn kv_rows(&self, layer: usize, dim: u32) -> usize {
        (self.cfg.layers[layer].kv_heads * dim) as usize
    }

    /// Calibration tokens (the first `context_length` of those given).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    pub(super) fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Mean NLL of the source model over the scored tokens.
    pub fn base_loss(&self) -> f64 {
        self.base_loss
    }

    /// How much the mean NLL over the scored tokens rises when only layer
    /// `layer` has `kv_heads` KV heads with projections `k` and `v` (f32,
    /// `[kv_heads * dim, embedding]`).
    pub fn loss_increase(&self, layer: usize, kv_heads: u32, k: &[f32], v: &[f32]) -> Result<f64> {
        let (cfg, e) = (&self.cfg, self.cfg.embedding as usize);
        let attn = AttentionConfig::new(cfg.q_heads, kv_heads, cfg.head_dim)?.with_v_head_dim(cfg.v_head_dim);
        let k = Matrix { rows: (kv_heads * cfg.head_dim) as usize, cols: e, data: k.to_vec() };
        let v = Matrix { rows: (kv_heads * cfg.v_head_dim) as usize, cols: e, data: v.to_vec() };
        let mut x = self.layers[layer].x_in[..self.scored * e].to_vec();
        self.block(layer, &mut x, &k, &v, &attn, false);
        for later in layer + 1..self.blocks.len() {
            let (k, v) = &self.source_kv[later];
            self.block(later, &mut x, k, v, &cfg.layers[later], false);
        }
        Ok(self.loss(&x) - self.base_loss)
    }

    /// Mean NLL of the next token over rows of the final residual `x`.
    fn loss(&self, x: &[f32]) -> f64 {
        let h = rms_norm(x, &self.output_norm, self.cfg.rms_eps);
        let logits = self.output.as_ref().unwrap_or(&self.embedding).apply(&h);
        let vocab = self.cfg.vocab_size as usize;
        let rows = x.len() / self.cfg.embedding as usize - 1;
        let nll: f64 =
            (0..rows).filter_map(|t| token_nll(&logits[t * vocab..][..vocab], self.tokens[t + 1])).sum();
        nll / rows as f64
    }

    /// Block `layer` on `x` (`[tokens, embedding]`, positions from 0) with
    /// the given K/V projections; returns its activations when `keep`.
    fn block(
        &self,
        layer: usize,
        x: &mut [f32],
        wk: &Matrix,
        wv: &Matrix,
        attn: &AttentionConfig,
        keep: bool,
    ) -> Option<LayerActs> {
        let (cfg, b) = (&self.cfg, &self.blocks[layer]);
        let (hq, hkv, d) = (attn.q_heads as usize, attn.kv_heads as usize, attn.head_dim as usize);
        let tokens = x.len() / cfg.embedding as usize;
        let positions: Vec<u32> = (0..tokens as u32).collect();
        let x_in = keep.then(|| x.to_vec());
        let h = rms_norm(x, &b.attn_norm, cfg.rms_eps);
        let mut q = b.wq.apply(&h);
        let mut k = wk.apply(&h);
        let v = wv.apply(&h);
        rope_scaled(cfg.rope_layout, cfg.rope_base, &cfg.rope_scaling, &mut q, hq, d, &positions);
        rope_scaled(cfg.rope_layout, cfg.rope_base, &cfg.rope_scaling, &mut k, hkv, d, &positions);
        let out = attention(attn, &q, &positions, &k, &v);
        add_assign(x, &b.wo.apply(&out));
        let h2 = rms_norm(x, &b.ffn_norm, cfg.rms_eps);
        add_assign(x, &b.down.apply(&swiglu(&b.gate.apply(&h2), &b.up.apply(&h2))));
        x_in.map(|x_in| LayerActs { x_in, h, q, out })
    }
}
