//! `AttentionConfig`: one layer's heads, dims and options, validated on
//! every change so an invalid config never exists on the JS side.

use wasm_bindgen::prelude::*;

use super::invalid;
use crate::{AttentionConfig, DType};

/// Query heads, KV heads, head dim and options of one attention layer.
#[wasm_bindgen(js_name = AttentionConfig)]
pub struct WasmConfig {
    pub(super) cfg: AttentionConfig,
}

#[wasm_bindgen(js_class = AttentionConfig)]
impl WasmConfig {
    /// A causal f32 config; throws unless `qHeads` is a multiple of
    /// `kvHeads` and `headDim` a multiple of 4 up to 1024.
    #[wasm_bindgen(constructor)]
    pub fn new(q_heads: u32, kv_heads: u32, head_dim: u32) -> Result<WasmConfig, JsError> {
        Ok(WasmConfig { cfg: AttentionConfig::new(q_heads, kv_heads, head_dim)? })
    }

    #[wasm_bindgen(getter, js_name = qHeads)]
    pub fn q_heads(&self) -> u32 {
        self.cfg.q_heads
    }

    #[wasm_bindgen(getter, js_name = kvHeads)]
    pub fn kv_heads(&self) -> u32 {
        self.cfg.kv_heads
    }

    #[wasm_bindgen(getter, js_name = headDim)]
    pub fn head_dim(&self) -> u32 {
        self.cfg.head_dim
    }

    #[wasm_bindgen(getter, js_name = vHeadDim)]
    pub fn v_head_dim(&self) -> u32 {
        self.cfg.v_head_dim
    }

    /// KV-cache storage type: "f32", "f16" or "int8".
    #[wasm_bindgen(getter)]
    pub fn dtype(&self) -> String {
        self.cfg.dtype.name().into()
    }

    /// K and V bytes one token takes in one layer of the cache.
    #[wasm_bindgen(getter, js_name = kvBytesPerToken)]
    pub fn kv_bytes_per_token(&self) -> f64 {
        self.cfg.kv_bytes_per_token() as f64
    }

    #[wasm_bindgen(js_name = setDtype)]
    pub fn set_dtype(&mut self, dtype: &str) -> Result<(), JsError> {
        let dtype = parse_dtype(dtype)?;
        self.update(|c| c.with_dtype(dtype))
    }

    #[wasm_bindgen(js_name = setVHeadDim)]
    pub fn set_v_head_dim(&mut self, v_head_dim: u32) -> Result<(), JsError> {
        self.update(|c| c.with_v_head_dim(v_head_dim))
    }

    /// Multiplier of q·k (default 1/sqrt(headDim)).
    #[wasm_bindgen(js_name = setScale)]
    pub fn set_scale(&mut self, scale: f32) -> Result<(), JsError> {
        self.update(|c| c.with_scale(scale))
    }

    /// `false` for cross-attention.
    #[wasm_bindgen(js_name = setCausal)]
    pub fn set_causal(&mut self, causal: bool) -> Result<(), JsError> {
        self.update(|c| c.with_causal(causal))
    }

    /// Sliding window: a query sees keys less than this many positions away.
    #[wasm_bindgen(js_name = setWindow)]
    pub fn set_window(&mut self, window: u32) -> Result<(), JsError> {
        self.update(|c| c.with_window(window))
    }

    #[wasm_bindgen(js_name = setSoftcap)]
    pub fn set_softcap(&mut self, softcap: f32) -> Result<(), JsError> {
        self.update(|c| c.with_softcap(softcap))
    }

    /// One sink logit per query head.
    #[wasm_bindgen(js_name = setSinks)]
    pub fn set_sinks(&mut self, sinks: &[f32]) -> Result<(), JsError> {
        self.update(|c| c.with_sinks(sinks.to_vec()))
    }
}

impl WasmConfig {
    /// Applies `change` only if the result validates.
    fn update(&mut self, change: impl FnOnce(AttentionConfig) -> AttentionConfig) -> Result<(), JsError> {
        let next = change(self.cfg.clone());
        next.validate()?;
        self.cfg = next;
        Ok(())
    }
}

/// A storage type's JS name ("f32" or "f16") as a `DType`.
pub(super) fn parse_dtype(dtype: &str) -> Result<DType, JsError> {
    DType::from_name(dtype)
        .ok_or_else(|| invalid(format!("dtype must be \"f32\", \"f16\" or \"int8\", got {dtype:?}")))
}
