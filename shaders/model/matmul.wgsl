// Prefill matmul: y[t, n] = sum_k x[t, k] * W[n, k] for many tokens.
//
// A workgroup owns MM_ROWS output rows (one per thread) and a tile of MM_TOKS
// tokens. Each thread dequantises its row one block at a time and uses the
// block for every token of the tile, so a weight is dequantised once per
// tile. All threads read the same activations at the same time, which
// caches serve as a broadcast; staging them in workgroup memory instead
// costs two barriers per block, which CPU adapters pay dearly for.

// Output rows (the weight's row count).
override N: u32 = 1u;
// Floats between two tokens' outputs, and the first output's offset: lets
// Q, K and V projections write into one fused buffer.
override Y_STRIDE: u32 = 1u;
override Y_OFFSET: u32 = 0u;

const MM_ROWS: u32 = 64u;
const MM_TOKS: u32 = 16u;

// batch[0]: tokens in this step.
@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = (wid.y * nwg.x + wid.x) * MM_ROWS + lid;
    let tok0 = wid.z * MM_TOKS;
    let tokens = batch[0];
    let ntok = select(0u, min(MM_TOKS, tokens - tok0), tok0 < tokens);
    if row >= N {
        return;
    }
    let blocks = K / 32u;
    let k4 = K / 4u;

    var acc: array<f32, MM_TOKS>;
    for (var blk = 0u; blk < blocks; blk++) {
        var w: array<vec4<f32>, 8>;
        for (var u = 0u; u < 4u; u++) {
            let d = dequant_unit(row * blocks + blk, u);
            w[u] = d[0];
            w[u + 4u] = d[1];
        }
        for (var t = 0u; t < MM_TOKS; t++) {
            if t < ntok {
                let xi = (tok0 + t) * k4 + blk * 8u;
                var s = 0.0;
                for (var c = 0u; c < 8u; c++) {
                    s += dot(w[c], x[xi + c]);
                }
                acc[t] += s;
            }
        }
    }
    for (var t = 0u; t < MM_TOKS; t++) {
        if t < ntok {
            y[(tok0 + t) * Y_STRIDE + Y_OFFSET + row] = acc[t];
        }
    }
}
