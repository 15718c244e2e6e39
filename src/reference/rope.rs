//! Reference RoPE.

use crate::{RopeLayout, RopeScaling};

/// Rotates `x` (`[positions.len(), heads, head_dim]`) in place, token `t` at
/// `positions[t]`.
pub fn rope(layout: RopeLayout, base: f32, x: &mut [f32], heads: usize, head_dim: usize, positions: &[u32]) {
    rope_scaled(layout, base, &RopeScaling::default(), x, heads, head_dim, positions)
}

/// [`rope`] with the frequencies `scaling` stretches.
pub fn rope_scaled(
    layout: RopeLayout,
    base: f32,
    scaling: &RopeScaling,
    x: &mut [f32],
    heads: usize,
    head_dim: usize,
    positions: &[u32],
) {
    let freqs = scaling.frequencies(base, head_dim as u32);
    let half = head_dim / 2;
    for (t, &pos) in positions.iter().enumerate() {
        for h in 0..heads {
            let v = &mut x[(t * heads + h) * head_dim..][..head_dim];
            for (i, f) in freqs.iter().enumerate() {
                let (a, b) = match layout {
                    RopeLayout::Adjacent => (2 * i, 2 * i + 1),
                    RopeLayout::HalfSplit => (i, i + half),
                };
                let (sin, cos) = (pos as f64 * f).sin_cos();
                let (xa, xb) = (v[a] as f64, v[b] as f64);
                v[a] = (xa * cos - xb * sin) as f32;
                v[b] = (xa * sin + xb * cos) as f32;
            }
        }
    }
}
