//! The f32 building blocks of the CPU reference forward pass: a row-major
//! weight matrix, a batched matrix-vector product, RMSNorm, SiLU and GELU.

use std::thread;

/// A weight matrix of `rows` rows of `cols` contiguous values. A GGUF 2-D
/// tensor with dims `[cols, rows]` (ggml lists the contiguous dim first) is
/// exactly this, so `y = W x` reads each row once, front to back.
pub(crate) struct Matrix {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f32>,
}

/// Rows per block in [`Matrix::apply`]: 64 rows of a few thousand f32 stay in
/// L2 while every token of the batch passes over them, so prefill reads each
/// weight from memory once rather than once per token.
const ROW_BLOCK: usize = 64;

/// Below this many multiply-adds a thread costs more than it saves.
const MIN_WORK_PER_THREAD: usize = 1 << 20;

impl Matrix {
    /// `y_t = W x_t` for each of the `x.len() / cols` tokens of `x`
    /// (`[tokens, cols]`); returns `[tokens, rows]`. Every output is the same
    /// [`dot`] whatever the batch size, so decoding one token at a time gives
    /// bit-identical results to a batched prefill.
    pub fn apply(&self, x: &[f32]) -> Vec<f32> {
        debug_assert_eq!(x.len() % self.cols, 0);
        let tokens = x.len() / self.cols;
        let threads = thread::available_parallelism().map_or(1, |n| n.get());
        let threads = threads.min((self.rows * self.cols * tokens / MIN_WORK_PER_THREAD).max(1));
        // Each thread computes a band of rows as `[rows_in_band, tokens]`;
        // bands are then scattered into the `[tokens, rows]` result.
        let band = self.rows.div_ceil(threads).next_multiple_of(ROW_BLOCK).min(self.rows);
        let bands: Vec<Vec<f32>> = if threads == 1 {
            vec![self.band(0..self.rows, x, tokens)]
        } else {
            thread::scope(|s| {
                let handles: Vec<_> = (0..self.rows)
                    .step_by(band)
                    .map(|start| {
                        let rows = start..(start + band).min(self.rows);
                        s.spawn(move || self.band(rows, x, tokens))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("matmul worker panicked")).collect()
            })
        };
        let mut y = vec![0f32; tokens * self.rows];
        for (b, part) in bands.iter().enumerate() {
            let first = b * band;
            for (r, row) in part.chunks_exact(tokens).enumerate() {
                for (t, &v) in row.iter().enumerate() {
                    y[t * self.rows + first + r] = v;
                }
            }
        }
        y
    }

    /// Rows `rows` of `W x` for every token, as `[rows.len(), tokens]`.
    fn band(&self, rows: std::ops::Range<usize>, x: &[f32], tokens: usize) -> Vec<f32> {
        let mut out = vec![0f32; rows.len() * tokens];
        let first = rows.start;
        for block in rows.clone().step_by(ROW_BLOCK) {
            let block_rows = block..(block + ROW_BLOCK).min(rows.end);
            for (t, xt) in x.chunks_exact(self.cols).enumerate() {
                for r in block_rows.clone() {
                    let w = &self.data[r * self.cols..][..self.cols];
                    out[(r - first) * tokens + t] = dot(w, xt);
                }
            }
        }
        out
    }

    /// Row `r` (an embedding lookup when the matrix is the embedding table).
    pub fn row(&self, r: usize) -> &[f32] {
        &self.data[r * self.cols..][..self.cols]
    }
}

/// Dot product with eight independent accumulators, so the compiler can keep
/// them in SIMD lanes (a single running sum is a serial dependency chain).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    let mut acc = [0f32; 8];
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// RMSNorm of each `weight.len()`-wide row of `x`, scaled by `weight`; a
/// `head_dim`-wide weight normalises each head of `[tokens, heads, head_dim]`.
pub(crate) fn rms_norm(x: &[f32], weight: &[f32], eps: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(weight.len()) {
        let mean_sq = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / row.len() as f64;
        let inv = (1.0 / (mean_sq + eps as f64).sqrt()) as f32;
        out.extend(row.iter().zip(weight).map(|(&v, &w)| v * inv * w));
    }
    out
}

/// SwiGLU's gate: `silu(gate) * up`, element-wise.
pub(crate) fn swiglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    gate.iter().zip(up).map(|(&g, &u)| g / (1.0 + (-g).exp()) * u).collect()
}

/// GeGLU's gate: `gelu(gate) * up`, element-wise, with GELU's tanh
/// approximation (Gemma's `gelu_pytorch_tanh`).
pub(crate) fn geglu(gate: &[f32], up: &[f32]) -> Vec<f32> {
    gate.iter().zip(up).map(|(&g, &u)| gelu_tanh(g) * u).collect()
}

/// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
pub(crate) fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh())
}

/// `acc += add`, element-wise (the residual connections).
pub(crate) fn add_assign(acc: &mut [f32], add: &[f32]) {
    for (a, &b) in acc.iter_mut().zip(add) {
        *a += b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_matches_naive_product_for_any_batch_and_band() {
        // Enough work for two uneven thread bands on a multi-core machine, and
        // a width that leaves a tail after the 8-wide chunks.
        let (rows, cols, tokens) = (300, 1027, 8);
        let data: Vec<f32> = (0..rows * cols).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let x: Vec<f32> = (0..tokens * cols).map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0).collect();
        let m = Matrix { rows, cols, data };
        let y = m.apply(&x);
        for t in 0..tokens {
            let one = m.apply(&x[t * cols..][..cols]);
            for r in 0..rows {
                let naive: f64 =
                    (0..cols).map(|k| m.data[r * cols + k] as f64 * x[t * cols + k] as f64).sum();
                let got = y[t * rows + r];
                assert!((got as f64 - naive).abs() < 1e-3, "token {t} row {r}: {got} vs {naive}");
                assert_eq!(got, one[r], "batched and single-token results differ at {t},{r}");
            }
        }
    }

    #[test]
    fn rms_norm_gives_unit_rms() {
        let out = rms_norm(&[3.0, 4.0, 0.0, 0.0], &[1.0, 1.0, 2.0, 2.0], 0.0);
        assert_eq!(out, [1.2, 1.6, 0.0, 0.0]);
    }
}
