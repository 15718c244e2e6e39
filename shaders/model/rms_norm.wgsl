// RMSNorm, one workgroup per token: y = x / sqrt(mean(x^2) + EPS) * w, or
// y += that when ADD is 1 (Gemma's post-norms, added into the residual).

// vec4s per token (the model width / 4).
override D4: u32 = 1u;
override EPS: f32 = 1e-5;
override ADD: u32 = 0u;

// batch[0]: tokens in this step.
@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(NORM_WG)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = wid.y * nwg.x + wid.x;
    let valid = t < batch[0];
    let base = t * D4;
    var s = 0.0;
    if valid {
        for (var i = lid; i < D4; i += NORM_WG) {
            let v = x[base + i];
            s += dot(v, v);
        }
    }
    let inv = inverse_rms(lid, s, D4 * 4u, EPS);
    if valid {
        for (var i = lid; i < D4; i += NORM_WG) {
            let v = x[base + i] * inv * w[i];
            if ADD == 1u {
                y[base + i] += v;
            } else {
                y[base + i] = v;
            }
        }
    }
}
