// The workgroup reduction both RMSNorms share (rms_norm.wgsl, head_norm.wgsl):
// each of the NORM_WG threads passes its partial sum of squares of a row of
// `count` elements and gets the row's 1 / sqrt(mean + eps). Called in uniform
// control flow: it holds the barriers.

const NORM_WG: u32 = 64u;

var<workgroup> sums: array<f32, NORM_WG>;

fn inverse_rms(lid: u32, partial: f32, count: u32, eps: f32) -> f32 {
    sums[lid] = partial;
    for (var h = NORM_WG / 2u; h > 0u; h >>= 1u) {
        workgroupBarrier();
        if lid < h {
            sums[lid] += sums[lid + h];
        }
    }
    workgroupBarrier();
    return inverseSqrt(sums[0] / f32(count) + eps);
}
