// Embedding lookup: out[t, :] = W[ids[t], :], dequantised from the table as
// it sits in GPU memory. Ids come from a GPU buffer so a decode loop can feed
// the sampled token back without a CPU round trip. An id past the table
// gives a zero row rather than reading out of bounds.

// Rows of the table (the vocabulary size).
override N: u32 = 1u;

// batch[0]: tokens in this step.
@group(0) @binding(0) var<storage, read> batch: array<u32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = wid.y * nwg.x + wid.x;
    if t >= batch[0] {
        return;
    }
    let id = ids[t];
    let base = t * (K / 4u);
    for (var i = lid; i < K / 8u; i += 64u) {
        let blk = i / 4u;
        let u = i % 4u;
        var d = array<vec4<f32>, 2>(vec4<f32>(0.0), vec4<f32>(0.0));
        if id < N {
            d = dequant_unit(id * (K / 32u) + blk, u);
        }
        out[base + blk * 8u + u] = d[0];
        out[base + blk * 8u + 4u + u] = d[1];
    }
}
