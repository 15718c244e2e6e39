//! The source model run once on the CPU over a calibration text: each
//! layer's activations (what the calibrated method fits to) and the loss
//! with one layer's K/V replaced (each layer's sensitivity, for Variable GQA).

use crate::error::{Error, Result};
use crate::model::cpu::ops::{add_assign, rms_norm, swiglu, Matrix};
use crate::model::cpu::Weights;
use crate::model::{token_nll, Gguf, LlamaConfig};
use crate::reference::{attention, rope_scaled};
use crate::AttentionConfig;

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
    /// The source model; its K/V projections are what a layer is scored against.
    weights: Weights,
    pub(super) layers: Vec<LayerActs>,
    /// Tokens scored by [`Calibration::loss_increase`].
    scored: usize,
    /// Mean NLL of the source model over those tokens.
    base_loss: f64,
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
        let e = cfg.embedding as usize;
        let mut c = Calibration {
            cfg: cfg.clone(),
            weights: Weights::load(gguf, cfg)?,
            layers: Vec::new(),
            scored: scored.clamp(2, tokens.len()),
            base_loss: 0.0,
            tokens,
        };
        let mut x: Vec<f32> =
            c.tokens.iter().flat_map(|&t| c.weights.embedding.row(t as usize)).copied().collect();
        for layer in 0..cfg.layers.len() {
            let b = &c.weights.blocks[layer];
            let acts = c.block(layer, &mut x, &b.wk, &b.wv, &cfg.layers[layer], true);
            c.layers.extend(acts);
        }
        c.base_loss = c.loss(&x[..c.scored * e]);
        Ok(c)
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
        for later in layer + 1..cfg.layers.len() {
            let b = &self.weights.blocks[later];
            self.block(later, &mut x, &b.wk, &b.wv, &cfg.layers[later], false);
        }
        Ok(self.loss(&x) - self.base_loss)
    }

    /// Mean NLL of the next token over rows of the final residual `x`.
    fn loss(&self, x: &[f32]) -> f64 {
        let h = rms_norm(x, &self.weights.output_norm, self.cfg.rms_eps);
        let logits = self.weights.head().apply(&h);
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
        let (cfg, b) = (&self.cfg, &self.weights.blocks[layer]);
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
