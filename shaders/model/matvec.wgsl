// Decode matmul: y[t, n] = sum_k x[t, k] * W[n, k], one token a workgroup
// row (tokens along z).
//
// MV_WG threads, each owning MV_R output rows (row, row + MV_WG, ...), walk
// their rows along K block by block; each activation a thread loads serves
// all MV_R rows. On CPU adapters every load at a per-thread address costs a
// scalar load per lane, so the activation loads, not the weights, would
// dominate with one row a thread. Under SwiGLU a thread owns MV_R / 2 rows
// and their partner rows. No barriers. Outputs are in `matmul_io.wgsl`.

const MV_WG: u32 = 16u;
const MV_R: u32 = 4u;

@compute @workgroup_size(16)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = wid.z;
    if t >= batch[0] {
        return;
    }
    let rows = out_rows();
    let glu = OUT == 2u;
    // Rows a thread owns, before SwiGLU partners.
    let own = select(MV_R, MV_R / 2u, glu);
    let first = (wid.y * nwg.x + wid.x) * MV_WG * own + lid;
    if first >= rows {
        return;
    }
    var row: array<u32, MV_R>;
    for (var j = 0u; j < MV_R; j++) {
        let r = select(first + j * MV_WG, first + (j - own) * MV_WG + rows, j >= own);
        // Rows past the end compute a copy of the last one and are not stored.
        row[j] = min(r, N - 1u);
    }
    let blocks = K / 32u;
    let xt = t * (K / 4u);

    var acc: array<f32, MV_R>;
    for (var blk = 0u; blk < blocks; blk++) {
        var dm: array<vec4<f32>, MV_R>;
        for (var j = 0u; j < MV_R; j++) {
            dm[j] = block_scale(row[j] * blocks + blk);
        }
        for (var u = 0u; u < 4u; u++) {
            let xa = x[xt + blk * 8u + u];
            let xb = x[xt + blk * 8u + u + 4u];
            for (var j = 0u; j < MV_R; j++) {
                let w = dequant_unit_scaled(row[j] * blocks + blk, u, dm[j]);
                acc[j] += dot(w[0], xa) + dot(w[1], xb);
            }
        }
    }
    for (var j = 0u; j < own; j++) {
        let r = first + j * MV_WG;
        if r < rows {
            store(t, r, acc[j], acc[(j + own) % MV_R]);
        }
    }
}
