// Greedy decoding on the GPU: out[0] = the index of the largest of N logits
// (the lowest index among equals), so a decode step reads back 4 bytes, not
// the logits. out[0] = NONE when no logit can be chosen the way the CPU's
// `argmax` would: one is NaN or +inf, or every one is -inf; the host then
// reads the logits to report which.

override N: u32 = 1u;

const ARG_WG: u32 = 256u;
const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;

var<workgroup> best_v: array<f32, ARG_WG>;
var<workgroup> best_i: array<u32, ARG_WG>;
var<workgroup> bad: array<u32, ARG_WG>;

// Whether (v, i) beats (bv, bi): larger, or equal at a lower index. An
// index of NONE holds nothing yet.
fn beats(v: f32, i: u32, bv: f32, bi: u32) -> bool {
    return i != NONE && (bi == NONE || v > bv || (v == bv && i < bi));
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
    var bv = 0.0;
    var bi = NONE;
    var nonfinite = 0u;
    for (var i = lid; i < N; i += ARG_WG) {
        let v = logits[i];
        let bits = bitcast<u32>(v);
        // NaN (any payload) or +inf, tested on the bits: compilers may fold v != v.
        if (bits & 0x7fffffffu) > 0x7f800000u || bits == 0x7f800000u {
            nonfinite = 1u;
        } else if bits != 0xff800000u && beats(v, i, bv, bi) {
            bv = v;
            bi = i;
        }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    bad[lid] = nonfinite;
    for (var h = ARG_WG / 2u; h > 0u; h >>= 1u) {
        workgroupBarrier();
        if lid < h {
            if beats(best_v[lid + h], best_i[lid + h], best_v[lid], best_i[lid]) {
                best_v[lid] = best_v[lid + h];
                best_i[lid] = best_i[lid + h];
            }
            bad[lid] |= bad[lid + h];
        }
    }
    if lid == 0u {
        out[0] = select(best_i[0], NONE, bad[0] != 0u);
    }
}
