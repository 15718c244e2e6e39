// `tile_dots` of `attend.wgsl` with subgroup shuffles, where the host made
// the workgroup exactly one subgroup (a fixed subgroup size of `WG`): the
// `TX` dim lanes of a key differ only in the low bits of their subgroup
// lane, so a subgroup sum (one key per subgroup) or a butterfly of xor
// shuffles adds up their partial sums in registers, with no workgroup memory
// and no barrier.

struct Lanes {
    @builtin(subgroup_invocation_id) sg_lane: u32,
}

fn lane(lanes: Lanes) -> u32 {
    return lanes.sg_lane;
}

fn tile_dots(lanes: Lanes, partial_dots: array<f32, DOTS>) -> array<f32, DOTS> {
    var acc = partial_dots;
    // Four rows at a time; the whole subgroup when it is one key's lanes.
    for (var kk = 0u; kk < KPT; kk++) {
        for (var r = 0u; r < ROWS; r += 4u) {
            let b = kk * MAX_ROWS + r;
            var v = vec4<f32>(acc[b], acc[b + 1u], acc[b + 2u], acc[b + 3u]);
            if TX == WG {
                v = subgroupAdd(v);
            } else {
                for (var step = 1u; step < TX; step *= 2u) {
                    v += subgroupShuffleXor(v, step);
                }
            }
            acc[b] = v.x;
            acc[b + 1u] = v.y;
            acc[b + 2u] = v.z;
            acc[b + 3u] = v.w;
        }
    }
    return acc;
}
