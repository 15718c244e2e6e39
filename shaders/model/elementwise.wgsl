// In-place elementwise ops over `batch[0]` tokens of WIDTH floats:
// OP 0 is the residual add x += y; OP 1 is SwiGLU x = silu(x) * y (x the
// gate, y the up projection); OP 2 adds the WIDTH floats of y to every token
// (a bias); OP 3 is GeGLU x = gelu(x) * y (GELU's tanh approximation).

override OP: u32 = 0u;
override WIDTH: u32 = 1u;

// batch[0]: tokens in this step.
@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lid;
    if i >= batch[0] * WIDTH {
        return;
    }
    if OP == 1u || OP == 3u {
        x[i] = gate_act(select(0u, 1u, OP == 3u), x[i]) * y[i];
    } else if OP == 2u {
        x[i] += y[i % WIDTH];
    } else {
        x[i] += y[i];
    }
}
