// Outputs shared by `matvec.wgsl` and `matmul.wgsl`: how the matmul writes
// (store, residual add, SwiGLU of row pairs, or rows split over three
// buffers). Folding these into the matmul saves a dispatch and a round trip
// through memory each.

// Output rows (the weight's row count).
override N: u32 = 1u;
// Floats between two tokens' outputs in `y`, and the first output's offset:
// lets several matmuls write into one fused buffer.
override Y_STRIDE: u32 = 1u;
override Y_OFFSET: u32 = 0u;
// 0: y = s. 1: y += s (the residual add). 2: a gated unit: the weight is
// [gate; up], N/2 rows each; y[t, n] = act(s[n]) * s[n + N/2].
override OUT: u32 = 0u;
// The gated unit's activation: 0 SiLU (SwiGLU), 1 GELU's tanh approximation
// (GeGLU).
override ACT: u32 = 0u;
// Rows [0, N0) go to y, [N0, N1) to y1 and [N1, N) to y2, each dense
// [tokens, its rows] (y as Y_STRIDE/Y_OFFSET say): Q, K and V from one
// matmul. N0 = N1 = N without a split.
override N0: u32 = 1u;
override N1: u32 = 1u;

// batch[0]: tokens in this step.
@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> y1: array<f32>;
@group(0) @binding(6) var<storage, read_write> y2: array<f32>;

// Rows a thread owns: N, or N/2 pairs under SwiGLU.
fn out_rows() -> u32 {
    return select(N, N / 2u, OUT == 2u);
}

// Writes token t's output for `row`: `s` its sum, `pair` the sum of its
// SwiGLU partner row (unused otherwise).
fn store(t: u32, row: u32, s: f32, pair: f32) {
    if OUT == 2u {
        y[t * Y_STRIDE + Y_OFFSET + row] = gate_act(ACT, s) * pair;
        return;
    }
    if row < N0 {
        let i = t * Y_STRIDE + Y_OFFSET + row;
        if OUT == 1u {
            y[i] += s;
        } else {
            y[i] = s;
        }
    } else if row < N1 {
        y1[t * (N1 - N0) + row - N0] = s;
    } else {
        y2[t * (N - N1) + row - N1] = s;
    }
}
