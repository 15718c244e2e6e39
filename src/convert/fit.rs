//! The calibrated method: merged K/V heads fitted to the source model's own
//! activations on a calibration text, layer by layer, in closed form.
//!
//! - **K.** Each RoPE pair of the merged key is a complex combination of
//!   that pair of the group's heads: a rotation and scale per head and pair,
//!   which commutes with RoPE (so it can align the heads before pooling and
//!   undo the flattening a plain mean causes), fitted by weighted least
//!   squares to every query head's original logits on the calibration text.
//!   Rows of a pair keep their RoPE frequency, so the GGUF row permutation
//!   is respected.
//! - **V.** With the merged keys, the original queries and the original
//!   attention inputs `H` fixed, the attention probabilities `P_h` of each
//!   query head are fixed too, and the merged value projection `W` that best
//!   reproduces every head's original output `O_h` solves
//!   `min sum_h |P_h H W^T - O_h|^2`: the normal equations
//!   `(H^T C H + lambda I) W^T = H^T sum_h P_h^T O_h + lambda W_mean^T` with
//!   `C = sum_h P_h^T P_h`, solved by Cholesky; the ridge pulls towards the
//!   mean-pooled head. V thereby also absorbs part of what merging K lost.

use super::calibrate::Calibration;
use super::heads::{head, mean, sources};
use crate::model::cpu::ops::Matrix;
use crate::reference::rope_scaled;

/// Weight of the pull towards the mean-pooled head (K and V fits), relative
/// to the mean diagonal of the normal matrix: directions the calibration
/// text does not excite (it has fewer tokens than the embedding has
/// dimensions) stay at the mean, rather than at whatever fits those few
/// tokens. Of 1e-4, 1e-2 and 1e-1 for the K fit, 1e-2 gave the lowest MQA
/// perplexity (README, "GQA spectrum").
const RIDGE: f64 = 1e-2;

/// Merged K and V projections of `layer` (`[new_heads * dim, embedding]`)
/// from the source ones (`src_heads` heads).
pub(super) fn layer(
    c: &Calibration,
    layer: usize,
    k: &[f32],
    v: &[f32],
    src_heads: u32,
    new_heads: u32,
) -> (Vec<f32>, Vec<f32>) {
    let cfg = c.config();
    let (e, d, dv) = (cfg.embedding as usize, cfg.head_dim as usize, cfg.v_head_dim as usize);
    let (mut k_out, mut v_out) = (Vec::new(), Vec::new());
    for j in 0..new_heads {
        let src = sources(cfg.q_heads, src_heads, new_heads, j);
        if src.iter().all(|&g| g == src[0]) {
            k_out.extend_from_slice(head(k, src[0], d, e));
            v_out.extend_from_slice(head(v, src[0], dv, e));
            continue;
        }
        let q_heads: Vec<usize> = {
            let group = (cfg.q_heads / new_heads) as usize;
            (j as usize * group..(j as usize + 1) * group).collect()
        };
        let kj = merged_key(c, layer, k, &src, &q_heads);
        let vj = fitted_value(c, layer, &kj, &q_heads, &mean(v, &src, dv, e));
        k_out.extend(kj);
        v_out.extend(vj);
    }
    (k_out, v_out)
}

/// Query rows sampled per head for the K fit: every `T_STRIDE`-th token.
const T_STRIDE: usize = 2;
/// Keys per sampled query row: the most probable ones under the source
/// model, and as many spread evenly over the rest of the row.
const TOP_KEYS: usize = 4;
const SPREAD_KEYS: usize = 4;

/// The merged key: pair `i` of it is `sum_u c[u][i] * k_u,i` over the source
/// heads `u`, each pair read as a complex number and `c` complex. A complex
/// factor is a rotation and a scale in the pair's plane, so it commutes with
/// RoPE: it can align the group's heads and restore the logits' scale.
/// `c` is the least-squares fit of every query head's logits to its
/// original ones, over keys sampled by their original attention weight,
/// pulled towards the mean.
fn merged_key(c: &Calibration, layer: usize, k: &[f32], src: &[u32], q_heads: &[usize]) -> Vec<f32> {
    let cfg = c.config();
    let acts = &c.layers[layer];
    let (e, d, hq) = (cfg.embedding as usize, cfg.head_dim as usize, cfg.q_heads as usize);
    let t_len = acts.h.len() / e;
    let pairs = d / 2;
    let scale = cfg.layers[layer].scale();
    let mut heads: Vec<u32> = src.to_vec();
    heads.dedup();
    let positions: Vec<u32> = (0..t_len as u32).collect();
    // Each source head's keys after RoPE, [T, d].
    let keys: Vec<Vec<f32>> = heads
        .iter()
        .map(|&g| {
            let mut kr = Matrix { rows: d, cols: e, data: head(k, g, d, e).to_vec() }.apply(&acts.h);
            rope_scaled(cfg.rope_layout, cfg.rope_base, &cfg.rope_scaling, &mut kr, 1, d, &positions);
            kr
        })
        .collect();
    let n = 2 * heads.len() * pairs; // unknowns: (re, im) per head per pair
    let mut m = vec![0f64; n * n];
    let mut b = vec![0f64; n];
    let mut f = vec![0f64; n];
    let mut logits = vec![0f32; t_len];
    for (&h, &g) in q_heads.iter().zip(src) {
        let own = &keys[heads.iter().position(|&x| x == g).unwrap_or(0)];
        for t in (0..t_len).step_by(T_STRIDE) {
            let q = &acts.q[(t * hq + h) * d..][..d];
            let row = &mut logits[..=t];
            for (s, l) in row.iter_mut().enumerate() {
                *l = scale * q.iter().zip(&own[s * d..][..d]).map(|(a, b)| a * b).sum::<f32>();
            }
            for (s, w) in sampled_keys(row) {
                // Features: for source head u and pair i, Re(conj(q_i) k_u,i)
                // and -Im(conj(q_i) k_u,i) (the logit is linear in c).
                for (u, key) in keys.iter().enumerate() {
                    let kv = &key[s * d..][..d];
                    for i in 0..pairs {
                        let (qr, qi, kr, ki) = (q[2 * i], q[2 * i + 1], kv[2 * i], kv[2 * i + 1]);
                        f[2 * (u * pairs + i)] = (scale * (qr * kr + qi * ki)) as f64;
                        f[2 * (u * pairs + i) + 1] = (-scale * (qr * ki - qi * kr)) as f64;
                    }
                }
                let y = row[s] as f64;
                for a in 0..n {
                    let fa = w * f[a];
                    b[a] += fa * y;
                    for (mv, &fb) in m[a * n + a..(a + 1) * n].iter_mut().zip(&f[a..]) {
                        *mv += fa * fb;
                    }
                }
            }
        }
    }
    // Only the upper triangle was summed.
    for a in 0..n {
        for b2 in 0..a {
            m[a * n + b2] = m[b2 * n + a];
        }
    }
    // Prior: the plain mean over the group's query heads (c = share, real).
    let mut prior = vec![0f64; n];
    for (u, &g) in heads.iter().enumerate() {
        let share = src.iter().filter(|&&x| x == g).count() as f64 / src.len() as f64;
        (0..pairs).for_each(|i| prior[2 * (u * pairs + i)] = share);
    }
    let ridge = (RIDGE * (0..n).map(|i| m[i * n + i]).sum::<f64>() / n as f64).max(f64::MIN_POSITIVE);
    for a in 0..n {
        m[a * n + a] += ridge;
        b[a] += ridge * prior[a];
    }
    let coef = cholesky_solve(m, b, n, 1);
    let mut out = vec![0f32; d * e];
    for (u, &g) in heads.iter().enumerate() {
        let w = head(k, g, d, e);
        for i in 0..pairs {
            let (a, bi) = (coef[2 * (u * pairs + i)] as f32, coef[2 * (u * pairs + i) + 1] as f32);
            let (re, im) = (&w[2 * i * e..][..e], &w[(2 * i + 1) * e..][..e]);
            for col in 0..e {
                out[2 * i * e + col] += a * re[col] - bi * im[col];
                out[(2 * i + 1) * e + col] += bi * re[col] + a * im[col];
            }
        }
    }
    out
}

/// Keys of one logit row to fit, with weights: the `TOP_KEYS` most probable
/// (weighted by probability) and `SPREAD_KEYS` spread over the row (sharing
/// an equal weight), so that keys that should stay unlikely are seen too.
fn sampled_keys(logits: &[f32]) -> Vec<(usize, f64)> {
    let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let p: Vec<f64> = logits.iter().map(|&l| ((l - max) as f64).exp()).collect();
    let sum: f64 = p.iter().sum();
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut keys: Vec<(usize, f64)> = order.iter().take(TOP_KEYS).map(|&s| (s, p[s] / sum)).collect();
    let spread = SPREAD_KEYS.min(logits.len());
    for j in 0..spread {
        let s = j * logits.len() / spread;
        keys.push((s, 1.0 / spread as f64));
    }
    keys
}

/// The least-squares value projection (`[v_head_dim, embedding]`) for the
/// query heads `q_heads` reading the merged key `key`.
fn fitted_value(c: &Calibration, layer: usize, key: &[f32], q_heads: &[usize], prior: &[f32]) -> Vec<f32> {
    let cfg = c.config();
    let acts = &c.layers[layer];
    let (e, d, dv, hq) =
        (cfg.embedding as usize, cfg.head_dim as usize, cfg.v_head_dim as usize, cfg.q_heads as usize);
    let t_len = acts.h.len() / e;
    let scale = cfg.layers[layer].scale();
    // The merged key of every token, after RoPE.
    let mut kr = Matrix { rows: d, cols: e, data: key.to_vec() }.apply(&acts.h);
    let positions: Vec<u32> = (0..t_len as u32).collect();
    rope_scaled(cfg.rope_layout, cfg.rope_base, &cfg.rope_scaling, &mut kr, 1, d, &positions);

    // C = sum_h P_h^T P_h and R = sum_h P_h^T O_h, one probability row at a time.
    let mut cm = vec![0f32; t_len * t_len];
    let mut r = vec![0f32; t_len * dv];
    let mut p = vec![0f32; t_len];
    for &h in q_heads {
        for t in 0..t_len {
            let qv = &acts.q[(t * hq + h) * d..][..d];
            let row = &mut p[..=t];
            for (s, l) in row.iter_mut().enumerate() {
                *l = scale * qv.iter().zip(&kr[s * d..][..d]).map(|(a, b)| a * b).sum::<f32>();
            }
            softmax(row);
            let o = &acts.out[(t * hq + h) * dv..][..dv];
            for (s, &a) in row.iter().enumerate() {
                for (cv, &b) in cm[s * t_len..][..=t].iter_mut().zip(row.iter()) {
                    *cv += a * b;
                }
                for (rv, &ov) in r[s * dv..][..dv].iter_mut().zip(o) {
                    *rv += a * ov;
                }
            }
        }
    }
    // CH = C H, then the normal equations M = H^T C H, B = H^T R.
    let h = &acts.h;
    let mut ch = vec![0f32; t_len * e];
    for s in 0..t_len {
        let out = &mut ch[s * e..][..e];
        for (s2, &w) in cm[s * t_len..][..t_len].iter().enumerate() {
            if w != 0.0 {
                for (o, &x) in out.iter_mut().zip(&h[s2 * e..][..e]) {
                    *o += w * x;
                }
            }
        }
    }
    let mut m = vec![0f64; e * e];
    let mut b = vec![0f64; e * dv];
    for s in 0..t_len {
        let (hs, chs, rs) = (&h[s * e..][..e], &ch[s * e..][..e], &r[s * dv..][..dv]);
        for (a, &ha) in hs.iter().enumerate() {
            let ha = ha as f64;
            for (mv, &x) in m[a * e..][..e].iter_mut().zip(chs) {
                *mv += ha * x as f64;
            }
            for (bv, &x) in b[a * dv..][..dv].iter_mut().zip(rs) {
                *bv += ha * x as f64;
            }
        }
    }
    // (M + ridge I) W^T = B + ridge W_prior^T.
    let ridge = (RIDGE * (0..e).map(|i| m[i * e + i]).sum::<f64>() / e as f64).max(f64::MIN_POSITIVE);
    for a in 0..e {
        m[a * e + a] += ridge;
        for i in 0..dv {
            b[a * dv + i] += ridge * prior[i * e + a] as f64;
        }
    }
    let x = cholesky_solve(m, b, e, dv);
    // W = X^T: row i of the value head is column i of X.
    (0..dv).flat_map(|i| (0..e).map(move |a| (a, i))).map(|(a, i)| x[a * dv + i] as f32).collect()
}

fn softmax(row: &mut [f32]) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    let mut sum = 0f32;
    row.iter_mut().for_each(|x| {
        *x = (*x - max).exp();
        sum += *x;
    });
    row.iter_mut().for_each(|x| *x /= sum);
}

/// Solves `M X = B` for a symmetric positive-definite `n x n` `M` (row-major)
/// and `n x k` `B`. A pivot that rounding made non-positive is clamped, so
/// the result is always finite.
fn cholesky_solve(mut m: Vec<f64>, mut b: Vec<f64>, n: usize, k: usize) -> Vec<f64> {
    // In place: the lower triangle of m becomes L with M = L L^T.
    for j in 0..n {
        let mut diag = m[j * n + j];
        for p in 0..j {
            diag -= m[j * n + p] * m[j * n + p];
        }
        let diag = diag.max(1e-12).sqrt();
        m[j * n + j] = diag;
        for i in j + 1..n {
            let mut v = m[i * n + j];
            for p in 0..j {
                v -= m[i * n + p] * m[j * n + p];
            }
            m[i * n + j] = v / diag;
        }
    }
    // L Y = B, then L^T X = Y.
    for i in 0..n {
        for p in 0..i {
            let l = m[i * n + p];
            for c in 0..k {
                b[i * k + c] -= l * b[p * k + c];
            }
        }
        for c in 0..k {
            b[i * k + c] /= m[i * n + i];
        }
    }
    for i in (0..n).rev() {
        for p in i + 1..n {
            let l = m[p * n + i];
            for c in 0..k {
                b[i * k + c] -= l * b[p * k + c];
            }
        }
        for c in 0..k {
            b[i * k + c] /= m[i * n + i];
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_solves_a_small_system() {
        // M = [[4, 2], [2, 3]], X = [[1, 2], [-1, 0.5]] -> B = M X.
        let m = vec![4.0, 2.0, 2.0, 3.0];
        let b = vec![2.0, 9.0, -1.0, 5.5];
        let x = cholesky_solve(m, b, 2, 2);
        for (got, want) in x.iter().zip([1.0, 2.0, -1.0, 0.5]) {
            assert!((got - want).abs() < 1e-12, "{x:?}");
        }
    }

    #[test]
    fn softmax_sums_to_one() {
        let mut row = [1.0f32, 2.0, 3.0];
        softmax(&mut row);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!(row[2] > row[1] && row[1] > row[0]);
    }
}
