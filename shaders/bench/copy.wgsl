// Streaming copy: the bandwidth roof the attention kernels are measured
// against on the same adapter. One vec4 per thread, grid-strided.

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let stride = nwg.x * 256u;
    for (var i = gid.x; i < arrayLength(&dst); i += stride) {
        dst[i] = src[i];
    }
}
