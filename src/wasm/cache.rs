//! `KvCache`: a paged cache of one or more layers sharing one config, with
//! prefill and decode on `Float32Array`s (upload, encode, submit, read back).

use js_sys::{Float32Array, Promise};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::config::WasmConfig;
use super::context::WasmContext;
use super::{invalid, rejection};
use crate::{attend, AttentionConfig, GpuContext, KvCache, KvCacheConfig, Plan, SeqId};

/// A handle to one sequence of a `KvCache`; stale (an error to use) after `free`.
#[wasm_bindgen]
pub struct Sequence(SeqId);

/// Paged KV cache of `layers` layers with the same config.
#[wasm_bindgen(js_name = KvCache)]
pub struct WasmKvCache {
    ctx: GpuContext,
    cache: KvCache,
    plan: Plan,
    cfg: AttentionConfig,
    layers: usize,
}

#[wasm_bindgen(js_class = KvCache)]
impl WasmKvCache {
    /// Allocates room for `capacityTokens` tokens (over all sequences) in
    /// pages of `pageSize` tokens; throws on invalid sizes or when the pool
    /// exceeds the adapter's limits.
    #[wasm_bindgen(constructor)]
    pub fn new(
        ctx: &WasmContext,
        config: &WasmConfig,
        layers: u32,
        page_size: u32,
        capacity_tokens: u32,
    ) -> Result<WasmKvCache, JsError> {
        let cfg = config.cfg.clone();
        let layers = layers as usize;
        let cache =
            KvCache::new(&ctx.ctx, KvCacheConfig::uniform(cfg.clone(), layers, page_size, capacity_tokens))?;
        Ok(WasmKvCache { ctx: ctx.ctx.clone(), plan: Plan::new(&ctx.ctx), cache, cfg, layers })
    }

    #[wasm_bindgen(js_name = addSequence)]
    pub fn add_sequence(&mut self) -> Sequence {
        Sequence(self.cache.add_sequence())
    }

    /// Tokens cached for `seq`.
    pub fn len(&self, seq: &Sequence) -> Result<u32, JsError> {
        Ok(self.cache.len(seq.0)?)
    }

    /// Rolls `seq` back to its first `len` tokens.
    pub fn truncate(&mut self, seq: &Sequence, len: u32) -> Result<(), JsError> {
        Ok(self.cache.truncate(seq.0, len)?)
    }

    pub fn reset(&mut self, seq: &Sequence) -> Result<(), JsError> {
        Ok(self.cache.reset(seq.0)?)
    }

    /// Frees `seq`'s pages for reuse; the handle becomes stale. (Not `free`:
    /// wasm-bindgen gives every class a `free()` that drops the Rust object.)
    #[wasm_bindgen(js_name = freeSequence)]
    pub fn free_sequence(&mut self, seq: &Sequence) -> Result<(), JsError> {
        Ok(self.cache.free(seq.0)?)
    }

    #[wasm_bindgen(getter, js_name = bytesInUse)]
    pub fn bytes_in_use(&self) -> f64 {
        self.cache.bytes_in_use() as f64
    }

    #[wasm_bindgen(getter, js_name = capacityBytes)]
    pub fn capacity_bytes(&self) -> f64 {
        self.cache.capacity_bytes() as f64
    }

    /// K and V bytes per token over all layers.
    #[wasm_bindgen(getter, js_name = bytesPerToken)]
    pub fn bytes_per_token(&self) -> f64 {
        self.cache.bytes_per_token() as f64
    }

    /// Appends `tokens` new tokens to `seq` and attends from them. `k` is
    /// `[layers, tokens, kvHeads, headDim]`, `v` `[layers, tokens, kvHeads,
    /// vHeadDim]` and `q` `[layers, tokens, qHeads, headDim]` (RoPE already
    /// applied); resolves to `[layers, tokens, qHeads, vHeadDim]`.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn prefill(&mut self, seq: &Sequence, q: &[f32], k: &[f32], v: &[f32]) -> Result<Promise, JsError> {
        self.step(seq.0, q, k, v, None)
    }

    /// `prefill` of exactly one token.
    #[wasm_bindgen(unchecked_return_type = "Promise<Float32Array>")]
    pub fn decode(&mut self, seq: &Sequence, q: &[f32], k: &[f32], v: &[f32]) -> Result<Promise, JsError> {
        self.step(seq.0, q, k, v, Some(1))
    }
}

impl WasmKvCache {
    fn step(
        &mut self,
        seq: SeqId,
        q: &[f32],
        k: &[f32],
        v: &[f32],
        want: Option<usize>,
    ) -> Result<Promise, JsError> {
        let tokens = self.tokens(q, k, v, want)?;
        self.cache.plan_append(&mut self.plan, &[(seq, tokens as u32)])?;
        match self.encode(tokens, q, k, v) {
            Ok(out) => {
                let ctx = self.ctx.clone();
                Ok(future_to_promise(async move {
                    let data = ctx.read_f32(&out).await.map_err(rejection)?;
                    Ok(Float32Array::from(&data[..]).into())
                }))
            }
            Err(e) => {
                // Leave the sequence as it was before this call.
                self.cache.rollback(&self.plan)?;
                Err(e.into())
            }
        }
    }

    /// The token count the arrays describe; every array must agree with it.
    fn tokens(&self, q: &[f32], k: &[f32], v: &[f32], want: Option<usize>) -> Result<usize, JsError> {
        let c = &self.cfg;
        let per_token = |heads: u32, dim: u32| self.layers * heads as usize * dim as usize;
        let k_row = per_token(c.kv_heads, c.head_dim);
        let tokens = k.len() / k_row;
        if k.is_empty() || !k.len().is_multiple_of(k_row) || want.is_some_and(|w| w != tokens) {
            let count = want.map_or("a positive multiple of".to_string(), |w| format!("{w} ×"));
            return Err(invalid(format!(
                "k has {} floats; expected {count} {k_row} (layers {} × kvHeads {} × headDim {})",
                k.len(),
                self.layers,
                c.kv_heads,
                c.head_dim
            )));
        }
        for (name, got, row, shape) in [
            ("q", q.len(), per_token(c.q_heads, c.head_dim), "qHeads × headDim"),
            ("v", v.len(), per_token(c.kv_heads, c.v_head_dim), "kvHeads × vHeadDim"),
        ] {
            if got != tokens * row {
                return Err(invalid(format!(
                    "{name} has {got} floats; expected {} ({tokens} tokens × layers {} × {shape})",
                    tokens * row,
                    self.layers
                )));
            }
        }
        u32::try_from(tokens).map_err(|_| invalid(format!("{tokens} tokens do not fit one call")))?;
        Ok(tokens)
    }

    /// Records and submits append + attention for every layer; returns the
    /// buffer holding all layers' outputs.
    fn encode(&mut self, tokens: usize, q: &[f32], k: &[f32], v: &[f32]) -> crate::Result<wgpu::Buffer> {
        let c = &self.cfg;
        let rows = |heads: u32, dim: u32| tokens * heads as usize * dim as usize;
        let (q_len, k_len, v_len) =
            (rows(c.q_heads, c.head_dim), rows(c.kv_heads, c.head_dim), rows(c.kv_heads, c.v_head_dim));
        let out_bytes = (rows(c.q_heads, c.v_head_dim) * 4) as u64;
        let ctx = &self.ctx;
        let all = ctx.storage_buffer("wgqa out", out_bytes * self.layers as u64);
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        for layer in 0..self.layers {
            let kb = ctx.upload("wgqa k", &k[layer * k_len..][..k_len]);
            let vb = ctx.upload("wgqa v", &v[layer * v_len..][..v_len]);
            let qb = ctx.upload("wgqa q", &q[layer * q_len..][..q_len]);
            let out = ctx.storage_buffer("wgqa layer out", out_bytes);
            self.cache.append(&mut enc, &self.plan, layer, &kb, &vb, None)?;
            attend(&mut enc, &self.cache, &self.plan, layer, &qb, &out)?;
            // Attention writes a whole buffer; gather the layers into one readback.
            enc.copy_buffer_to_buffer(&out, 0, &all, layer as u64 * out_bytes, out_bytes);
        }
        ctx.queue().submit([enc.finish()]);
        Ok(all)
    }
}
