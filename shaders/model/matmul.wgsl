// Prefill matmul: y[t, n] = sum_k x[t, k] * W[n, k] for many tokens.
//
// A workgroup owns MM_ROWS output rows (one per thread) and a tile of MM_TOKS
// tokens. Each thread dequantises its row one block at a time and uses the
// block for every token of the tile, so a weight is dequantised once per
// tile. All threads read the same activations at the same time, which
// caches serve as a broadcast; staging them in workgroup memory instead
// costs two barriers per block, which CPU adapters pay dearly for. The
// outputs are in `matmul_io.wgsl`, as for the matvec.

const MM_ROWS: u32 = 64u;
const MM_TOKS: u32 = 16u;

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
    let rows = out_rows();
    if row >= rows {
        return;
    }
    let blocks = K / 32u;
    let partner = row + select(0u, rows, OUT == 2u);

    var acc: array<f32, MM_TOKS>;
    var acc_pair: array<f32, MM_TOKS>;
    for (var blk = 0u; blk < blocks; blk++) {
        var w: array<vec4<f32>, 8>;
        var wp: array<vec4<f32>, 8>;
        let b = row * blocks + blk;
        let dm = block_scale(b);
        for (var u = 0u; u < 4u; u++) {
            let d = dequant_unit_scaled(b, u, dm);
            w[u] = d[0];
            w[u + 4u] = d[1];
        }
        if OUT == 2u {
            let bp = partner * blocks + blk;
            let dmp = block_scale(bp);
            for (var u = 0u; u < 4u; u++) {
                let d = dequant_unit_scaled(bp, u, dmp);
                wp[u] = d[0];
                wp[u + 4u] = d[1];
            }
        }
        for (var t = 0u; t < MM_TOKS; t++) {
            if t < ntok {
                var s = 0.0;
                var sp = 0.0;
                for (var c = 0u; c < 8u; c++) {
                    let xc = x[(tok0 + t) * (K / 4u) + blk * 8u + c];
                    s += dot(w[c], xc);
                    if OUT == 2u {
                        sp += dot(wp[c], xc);
                    }
                }
                acc[t] += s;
                acc_pair[t] += sp;
            }
        }
    }
    for (var t = 0u; t < MM_TOKS; t++) {
        if t < ntok {
            store(tok0 + t, row, acc[t], acc_pair[t]);
        }
    }
}
