//! Reference attention for one sequence, straight from the definition.

use crate::{AttentionConfig, DType};

/// Attention of one sequence's queries over its keys.
///
/// `q` is `[q_positions.len(), q_heads, head_dim]`, query `t` at position
/// `q_positions[t]`; `k` is `[kv_len, kv_heads, head_dim]` and `v` is
/// `[kv_len, kv_heads, v_head_dim]`, key `j` at position `j`, both as stored
/// (RoPE applied, rounded to the storage type). Returns
/// `[q_positions.len(), q_heads, v_head_dim]`. Every option of `cfg` applies;
/// a row that sees no key is zeros.
pub fn attention(cfg: &AttentionConfig, q: &[f32], q_positions: &[u32], k: &[f32], v: &[f32]) -> Vec<f32> {
    let (hq, hkv) = (cfg.q_heads as usize, cfg.kv_heads as usize);
    let (d, dv) = (cfg.head_dim as usize, cfg.v_head_dim as usize);
    let kv_len = k.len() / (hkv * d);
    let group = hq / hkv;
    let scale = cfg.scale() as f64;
    let mut out = vec![0f32; q_positions.len() * hq * dv];
    let mut logits = vec![0f64; kv_len];
    for (t, &pos) in q_positions.iter().enumerate() {
        for h in 0..hq {
            let kh = h / group;
            let qv = &q[(t * hq + h) * d..][..d];
            let mut max = cfg.sinks.as_ref().map_or(f64::NEG_INFINITY, |s| s[h] as f64);
            let mut any = false;
            for (j, l) in logits.iter_mut().enumerate() {
                if !cfg.visible(pos, j as u32) {
                    *l = f64::NEG_INFINITY;
                    continue;
                }
                let kv = &k[(j * hkv + kh) * d..][..d];
                let mut s = qv.iter().zip(kv).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() * scale;
                if let Some(cap) = cfg.softcap {
                    s = cap as f64 * (s / cap as f64).tanh();
                }
                *l = s;
                max = max.max(s);
                any = true;
            }
            if !any {
                continue;
            }
            let mut denom = cfg.sinks.as_ref().map_or(0.0, |s| (s[h] as f64 - max).exp());
            let mut acc = vec![0f64; dv];
            for (j, &l) in logits.iter().enumerate() {
                if l == f64::NEG_INFINITY {
                    continue;
                }
                let p = (l - max).exp();
                denom += p;
                for (a, &x) in acc.iter_mut().zip(&v[(j * hkv + kh) * dv..][..dv]) {
                    *a += p * x as f64;
                }
            }
            for (o, a) in out[(t * hq + h) * dv..][..dv].iter_mut().zip(acc) {
                *o = (a / denom) as f32;
            }
        }
    }
    out
}

/// The same result the way libraries without GQA kernels get it: repeat each
/// KV head for its query heads, then run plain multi-head attention.
pub fn attention_repeat_kv(
    cfg: &AttentionConfig,
    q: &[f32],
    q_positions: &[u32],
    k: &[f32],
    v: &[f32],
) -> Vec<f32> {
    let group = cfg.group_size() as usize;
    let repeat = |x: &[f32], dim: usize| -> Vec<f32> {
        x.chunks(dim).flat_map(|head| std::iter::repeat_n(head, group).flatten().copied()).collect()
    };
    let mha = AttentionConfig { kv_heads: cfg.q_heads, ..cfg.clone() };
    attention(&mha, q, q_positions, &repeat(k, cfg.head_dim as usize), &repeat(v, cfg.v_head_dim as usize))
}

/// Rounds values the way the KV cache stores them. `x` is whole rows of
/// `row_len` elements (one token's K or V of one KV head, after RoPE): int8
/// storage quantises each row by its own scale.
pub fn round_to_storage(dtype: DType, row_len: usize, x: &mut [f32]) {
    match dtype {
        DType::F32 => {}
        DType::F16 => x.iter_mut().for_each(|v| *v = half::f16::from_f32(*v).to_f32()),
        DType::Int8 => x.chunks_mut(row_len.max(1)).for_each(quantise_int8_row),
    }
}

/// What `kv/append.wgsl` stores for an int8 row, dequantised: with
/// `s = max |x|`, `round(x / s * 127)` (ties to even) times `s / 127`, where
/// the kernel's `pack4x8snorm` of `x / s` and `unpack4x8snorm` give the same
/// in f32. A zero row stays zero.
fn quantise_int8_row(row: &mut [f32]) {
    let scale = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    for v in row {
        *v = match scale > 0.0 {
            true => (*v / scale * 127.0).round_ties_even().clamp(-127.0, 127.0) / 127.0 * scale,
            false => 0.0,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_key_returns_its_value_and_masked_rows_are_zero() {
        let cfg = AttentionConfig::new(2, 1, 4).unwrap();
        let q = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
        let k = [0.5, 0.5, 0.5, 0.5];
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(attention(&cfg, &q, &[0], &k, &v), [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0]);
        // A key at position 0 is invisible to... nothing causal before it; use a window.
        let windowed = cfg.clone().with_window(1);
        let two_k = [k, k].concat();
        let two_v = [v, [0.0; 4]].concat();
        let out = attention(&windowed, &q, &[1], &two_k, &two_v);
        assert_eq!(out, [0.0; 8]);
        let cross = cfg.with_causal(false).with_window(1);
        assert!(attention(&cross, &q, &[5], &k, &v).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn sinks_only_shrink_the_weights() {
        let cfg = AttentionConfig::new(1, 1, 4).unwrap();
        let q = [0.0; 4];
        let k = [0.0; 4];
        let v = [2.0; 4];
        // One key with logit 0 and a sink of logit 0: weight 1/2.
        let out = attention(&cfg.with_sinks(vec![0.0]), &q, &[0], &k, &v);
        assert_eq!(out, [1.0; 4]);
    }
}
