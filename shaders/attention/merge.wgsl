// Combines the key splits of `attend.wgsl` into the final output: rescale
// each split to the common max, sum, normalise (see finish.wgsl).
// One workgroup per (query head, token); one thread per 4-wide output column.

override Q_HEADS: u32;
override V_DIM4: u32;

const LOG2E: f32 = 1.4426950408889634;

@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read> sinks: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let head = wid.x;
    let row = wid.y * Q_HEADS + head;
    let n_splits = plan[PLAN_SPLITS];
    let stride = V_DIM4 * 4u + 2u;
    let base = row * n_splits * stride;

    var m = MASKED;
    for (var j = 0u; j < n_splits; j++) {
        m = max(m, partial[base + j * stride + V_DIM4 * 4u]);
    }
    var l = 0.0;
    for (var j = 0u; j < n_splits; j++) {
        let at = base + j * stride + V_DIM4 * 4u;
        l += exp2(partial[at] - m) * partial[at + 1u];
    }
    let scale = finish_scale(m, l, head);
    for (var c = lid; c < V_DIM4; c += 64u) {
        var o = vec4<f32>(0.0);
        for (var j = 0u; j < n_splits; j++) {
            let at = base + j * stride;
            let w = exp2(partial[at + V_DIM4 * 4u] - m);
            o += w * vec4<f32>(partial[at + c * 4u], partial[at + c * 4u + 1u], partial[at + c * 4u + 2u], partial[at + c * 4u + 3u]);
        }
        out[row * V_DIM4 + c] = o * scale;
    }
}
