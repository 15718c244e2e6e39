// Applies RoPE in place to query vectors laid out [tokens, HEADS, DIM4*4],
// each token at the position the plan gives it.

@group(0) @binding(1) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> rope_freqs: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let u = rope_unit(thread_index(wid, nwg, lid));
    if !u.valid {
        return;
    }
    let base = (u.token * HEADS + u.head) * DIM4;
    let ia = base + u.col;
    let ib = base + rope_partner(u.col);
    let r = rope_rotate(u, x[ia], x[ib]);
    x[ia] = r[0];
    if ROPE == 2u {
        x[ib] = r[1];
    }
}
