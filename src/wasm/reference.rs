//! `referenceAttention`: the CPU reference (f64 accumulation), so a page or
//! test can check the GPU's answer in the browser.

use js_sys::Float32Array;
use wasm_bindgen::prelude::*;

use super::config::WasmConfig;
use super::invalid;
use crate::reference;

/// Attention of one sequence on the CPU. `q` is `[positions.length, qHeads,
/// headDim]`, query `t` at position `positions[t]`; `k` is `[kvLen, kvHeads,
/// headDim]` and `v` `[kvLen, kvHeads, vHeadDim]`, key `j` at position `j`.
/// K and V are rounded to the config's storage type first, as the cache
/// stores them. Returns `[positions.length, qHeads, vHeadDim]`.
#[wasm_bindgen(js_name = referenceAttention)]
pub fn reference_attention(
    config: &WasmConfig,
    q: &[f32],
    positions: &[u32],
    k: &[f32],
    v: &[f32],
) -> Result<Float32Array, JsError> {
    let c = &config.cfg;
    let (hq, hkv) = (c.q_heads as usize, c.kv_heads as usize);
    let (d, dv) = (c.head_dim as usize, c.v_head_dim as usize);
    if q.len() != positions.len() * hq * d {
        return Err(invalid(format!(
            "q has {} floats; expected {} (positions {} × qHeads {hq} × headDim {d})",
            q.len(),
            positions.len() * hq * d,
            positions.len()
        )));
    }
    if !k.len().is_multiple_of(hkv * d) {
        return Err(invalid(format!(
            "k has {} floats; expected a multiple of {} (kvHeads {hkv} × headDim {d})",
            k.len(),
            hkv * d
        )));
    }
    let kv_len = k.len() / (hkv * d);
    if v.len() != kv_len * hkv * dv {
        return Err(invalid(format!(
            "v has {} floats; expected {} (kvLen {kv_len} × kvHeads {hkv} × vHeadDim {dv})",
            v.len(),
            kv_len * hkv * dv
        )));
    }
    let (mut k, mut v) = (k.to_vec(), v.to_vec());
    reference::round_to_storage(c.dtype, d, &mut k);
    reference::round_to_storage(c.dtype, dv, &mut v);
    Ok(Float32Array::from(&reference::attention(c, q, positions, &k, &v)[..]))
}
