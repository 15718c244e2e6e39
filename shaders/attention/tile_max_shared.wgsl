// Row maxima of a tile of scores, one thread per row scanning its keys; then
// the online-softmax update of the row's max and rescale factor. Used where
// the adapter has no subgroups.

struct Lanes {
    @builtin(local_invocation_index) lid: u32,
}

fn tile_max(lanes: Lanes, rows: u32) {
    workgroupBarrier();
    for (var r = lanes.lid; r < rows; r += WG) {
        var m = MASKED;
        for (var t = 0u; t < WG; t++) {
            m = max(m, probs[r * WG + t]);
        }
        let m_new = max(row_max[r], m);
        row_alpha[r] = exp2(row_max[r] - m_new);
        row_max[r] = m_new;
    }
    workgroupBarrier();
}
