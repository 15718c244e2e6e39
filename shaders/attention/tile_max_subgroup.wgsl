// Row maxima of a tile of scores: a subgroup max over each subgroup's keys,
// then one atomic per subgroup on order-preserving bits (correct for any
// subgroup size or layout); then the online-softmax update of the row's max
// and rescale factor.

struct Lanes {
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
}

// Zero (below every finite score's bits) between tiles; workgroup memory
// starts zeroed.
var<workgroup> tile_max_bits: array<atomic<u32>, ROWS>;

// Maps f32 to u32 so that unsigned order equals float order.
fn order_bits(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn unorder_bits(u: u32) -> f32 {
    return bitcast<f32>(select(~u, u & 0x7fffffffu, (u & 0x80000000u) != 0u));
}

fn tile_max(lanes: Lanes, rows: u32) {
    for (var r = 0u; r < rows; r++) {
        let mx = subgroupMax(probs[r * WG + lanes.lid]);
        if lanes.sg_lane == 0u {
            atomicMax(&tile_max_bits[r], order_bits(mx));
        }
    }
    workgroupBarrier();
    for (var r = lanes.lid; r < rows; r += WG) {
        let m_new = max(row_max[r], unorder_bits(atomicExchange(&tile_max_bits[r], 0u)));
        row_alpha[r] = exp2(row_max[r] - m_new);
        row_max[r] = m_new;
    }
    workgroupBarrier();
}
