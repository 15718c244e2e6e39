// RMSNorm of every head in place, one workgroup per (token, head):
// x[t, h, :] = x[t, h, :] / sqrt(mean(x[t, h, :]^2) + EPS) * w, with one
// head_dim-wide weight shared by all heads (Gemma's Q and K norms).

// vec4s per head (head_dim / 4), and heads per token.
override D4: u32 = 1u;
override HEADS: u32 = 1u;
override EPS: f32 = 1e-6;

// batch[0]: tokens in this step.
@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;

@compute @workgroup_size(NORM_WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = wid.y * nwg.x + wid.x;
    let valid = row < batch[0] * HEADS;
    let base = row * D4;
    var s = 0.0;
    if valid {
        for (var i = lid; i < D4; i += NORM_WG) {
            let v = x[base + i];
            s += dot(v, v);
        }
    }
    let inv = inverse_rms(lid, s, D4 * 4u, EPS);
    // Each thread writes only what it read, after every read of the sum.
    if valid {
        for (var i = lid; i < D4; i += NORM_WG) {
            x[base + i] = x[base + i] * inv * w[i];
        }
    }
}
