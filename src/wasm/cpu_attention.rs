//! `referenceAttention`: the CPU reference (f64 accumulation), so a page or
//! test can check the GPU's answer in the browser, and `referenceTolerance`:
//! how close that answer must be (the bound the Rust tests use).

use js_sys::{Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::config::{parse_dtype, WasmConfig};
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

/// `{ atol, rtol }` for attention with `dtype` ("f32" or "f16") storage: an
/// output passes when |gpu - ref| <= atol + rtol·|ref|.
#[wasm_bindgen(js_name = referenceTolerance, unchecked_return_type = "{ atol: number; rtol: number }")]
pub fn reference_tolerance(dtype: &str) -> Result<Object, JsError> {
    let tol = reference::tolerance::attention(parse_dtype(dtype)?);
    let out = Object::new();
    for (key, value) in [("atol", tol.atol), ("rtol", tol.rtol)] {
        // The shortest decimal of the f32 (5e-4, not 0.0005000000237…).
        let shortest: f64 = value.to_string().parse().unwrap_or(f64::from(value));
        Reflect::set(&out, &key.into(), &shortest.into())
            .map_err(|_| invalid(format!("cannot set {key}")))?;
    }
    Ok(out)
}
