// `tile_dots` of `attend.wgsl` through workgroup memory, for any adapter:
// each lane leaves its partial sums there, one lane per (key, row) adds the
// `TX` partials of a key, and each lane reads back the sums of its keys.

struct Lanes {
    @builtin(local_invocation_index) lid: u32,
}

fn lane(lanes: Lanes) -> u32 {
    return lanes.lid;
}

// Partial dot products of the tile: [key][row][dim lane].
var<workgroup> part: array<f32, TILE * ROWS * TX>;
// Full dot products of the tile: [key][row].
var<workgroup> dots: array<f32, TILE * ROWS>;

fn tile_dots(lanes: Lanes, partial_dots: array<f32, DOTS>) -> array<f32, DOTS> {
    var acc = partial_dots;
    let x = lanes.lid % TX;
    let y = lanes.lid / TX;
    for (var kk = 0u; kk < KPT; kk++) {
        for (var r = 0u; r < ROWS; r++) {
            part[((kk * TY + y) * ROWS + r) * TX + x] = acc[kk * MAX_ROWS + r];
        }
    }
    workgroupBarrier();
    for (var i = lanes.lid; i < TILE * ROWS; i += WG) {
        var sum = 0.0;
        for (var t = 0u; t < TX; t++) {
            sum += part[i * TX + t];
        }
        dots[i] = sum;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KPT; kk++) {
        for (var r = 0u; r < ROWS; r++) {
            acc[kk * MAX_ROWS + r] = dots[(kk * TY + y) * ROWS + r];
        }
    }
    return acc;
}
