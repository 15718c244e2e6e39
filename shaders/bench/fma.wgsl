// Compute roof: every thread runs 8 independent vec4 FMA chains for ITERS
// steps (64 FLOPs a step), so nothing waits on a previous result and the
// adapter's FMA rate is the limit. The chains' sum is written out so the
// work cannot be optimised away. ITERS = 0 is the empty dispatch that
// measures dispatch overhead.

override ITERS: u32 = 0u;

// seed[0..2]: a multiplier and an addend near 1 and 0, read at run time so
// the compiler cannot fold the chains.
@group(0) @binding(0) var<storage, read> seed: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let m = seed[0];
    let a = seed[1];
    let start = vec4<f32>(f32(gid.x & 255u)) * 1e-3;
    var c0 = start;
    var c1 = start + 0.1;
    var c2 = start + 0.2;
    var c3 = start + 0.3;
    var c4 = start + 0.4;
    var c5 = start + 0.5;
    var c6 = start + 0.6;
    var c7 = start + 0.7;
    for (var i = 0u; i < ITERS; i++) {
        c0 = fma(c0, m, a);
        c1 = fma(c1, m, a);
        c2 = fma(c2, m, a);
        c3 = fma(c3, m, a);
        c4 = fma(c4, m, a);
        c5 = fma(c5, m, a);
        c6 = fma(c6, m, a);
        c7 = fma(c7, m, a);
    }
    let i = gid.x;
    if i < arrayLength(&out) {
        out[i] = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7));
    }
}
