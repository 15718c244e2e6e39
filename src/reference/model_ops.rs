//! CPU references of the model's ops (`crate::model::ops`), accumulating in f64: what the GPU kernels are
//! tested against. Weights are given dequantised (see
//! [`crate::model::dequantize`]); activations are row-major `[tokens, width]`.

/// `y[t, n] = sum_k x[t, k] * w[n, k]` with `w` `[n, k]` row-major.
pub fn matmul(x: &[f32], w: &[f32], k: usize, n: usize) -> Vec<f32> {
    let tokens = x.len() / k;
    let mut y = Vec::with_capacity(tokens * n);
    for xt in x.chunks_exact(k) {
        y.extend(w.chunks_exact(k).take(n).map(|row| dot(xt, row) as f32));
    }
    y
}

/// Rows `ids` of the `[rows, k]` table, one per token.
pub fn embed(table: &[f32], k: usize, ids: &[u32]) -> Vec<f32> {
    ids.iter().flat_map(|&id| table[id as usize * k..(id as usize + 1) * k].iter().copied()).collect()
}

/// `y = x / sqrt(mean(x^2) + eps) * w` per row of `w.len()` elements: per
/// token, or per head when `w` is one head wide (Gemma's Q/K norms).
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.len());
    for xt in x.chunks_exact(w.len()) {
        let inv = 1.0 / (dot(xt, xt) / w.len() as f64 + eps as f64).sqrt();
        y.extend(xt.iter().zip(w).map(|(&v, &wi)| (v as f64 * inv * wi as f64) as f32));
    }
    y
}

/// `silu(gate) * up`, elementwise.
pub fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    let silu = |g: f64| g / (1.0 + (-g).exp());
    gate.iter().zip(up).map(|(&g, &u)| (silu(g as f64) * u as f64) as f32).collect()
}

/// `gelu(gate) * up`, elementwise, with GELU's tanh approximation.
pub fn geglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    let gelu =
        |g: f64| 0.5 * g * (1.0 + ((2.0 / std::f64::consts::PI).sqrt() * (g + 0.044715 * g * g * g)).tanh());
    gate.iter().zip(up).map(|(&g, &u)| (gelu(g as f64) * u as f64) as f32).collect()
}

/// `x + y`, elementwise.
pub fn add(x: &[f32], y: &[f32]) -> Vec<f32> {
    x.iter().zip(y).map(|(&a, &b)| a + b).collect()
}

/// `x` (`[tokens, bias.len()]`) with `bias` added to every token.
pub fn add_bias(x: &[f32], bias: &[f32]) -> Vec<f32> {
    x.chunks_exact(bias.len()).flat_map(|t| add(t, bias)).collect()
}

/// SwiGLU of each token's two halves: `y` is `[tokens, 2 f]` with the gate
/// projection first and the up projection second, as the fused gate-and-up
/// matmul computes them; the result is `[tokens, f]`.
pub fn swiglu_halves(y: &[f32], f: usize) -> Vec<f32> {
    y.chunks_exact(2 * f).flat_map(|t| swiglu(&t[..f], &t[f..])).collect()
}

/// GeGLU of each token's two halves (gate first, as [`swiglu_halves`]).
pub fn geglu_halves(y: &[f32], f: usize) -> Vec<f32> {
    y.chunks_exact(2 * f).flat_map(|t| geglu(&t[..f], &t[f..])).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&p, &q)| p as f64 * q as f64).sum()
}
