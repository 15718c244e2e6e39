// Decode matmul: y[t, n] = sum_k x[t, k] * W[n, k] for a few tokens.
//
// A workgroup owns MV_ROWS output rows and MV_TOKS tokens; MV_LANES threads
// share a row and stride over its 8-element units (consecutive threads read
// consecutive weight words). Each unit is dequantised once and used for
// every token. One barrier, then one thread per (row, token) sums the
// lanes' partials: fewer barriers than a tree, which matters on CPU adapters.

// Output rows (the weight's row count).
override N: u32 = 1u;
// Floats between two tokens' outputs, and the first output's offset: lets
// Q, K and V projections write into one fused buffer.
override Y_STRIDE: u32 = 1u;
override Y_OFFSET: u32 = 0u;

const MV_LANES: u32 = 8u;
const MV_ROWS: u32 = 8u;
const MV_TOKS: u32 = 4u;

// batch[0]: tokens in this step.
@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

var<workgroup> partials: array<f32, MV_ROWS * MV_LANES * MV_TOKS>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row0 = (wid.y * nwg.x + wid.x) * MV_ROWS;
    let row = row0 + lid / MV_LANES;
    let tok0 = wid.z * MV_TOKS;
    let tokens = batch[0];
    let ntok = select(0u, min(MV_TOKS, tokens - tok0), tok0 < tokens);
    let blocks = K / 32u;
    let k4 = K / 4u;

    var acc: array<f32, MV_TOKS>;
    if row < N {
        for (var i = lid % MV_LANES; i < K / 8u; i += MV_LANES) {
            let blk = i / 4u;
            let u = i % 4u;
            let w = dequant_unit(row * blocks + blk, u);
            for (var t = 0u; t < MV_TOKS; t++) {
                if t < ntok {
                    let xi = (tok0 + t) * k4 + blk * 8u + u;
                    acc[t] += dot(w[0], x[xi]) + dot(w[1], x[xi + 4u]);
                }
            }
        }
    }
    for (var t = 0u; t < MV_TOKS; t++) {
        partials[lid * MV_TOKS + t] = acc[t];
    }
    workgroupBarrier();
    if lid < MV_ROWS * MV_TOKS {
        let r = lid / MV_TOKS;
        let t = lid % MV_TOKS;
        var s = 0.0;
        for (var l = 0u; l < MV_LANES; l++) {
            s += partials[((r * MV_LANES) + l) * MV_TOKS + t];
        }
        if row0 + r < N && t < ntok {
            y[(tok0 + t) * Y_STRIDE + Y_OFFSET + row0 + r] = s;
        }
    }
}
