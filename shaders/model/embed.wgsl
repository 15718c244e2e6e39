// Embedding lookup: out[t, :] = W[ids[t], :], dequantised from the table as
// it sits in GPU memory. Ids come from a GPU buffer so a decode loop can feed
// the sampled token back without a CPU round trip. An id past the table
// gives a zero row rather than reading out of bounds.
//
// A table too large for one binding is split into row chunks, each its own
// dispatch: this one holds rows [ROW0, ROW0 + N) of ROWS and writes only the
// tokens whose id it holds (the last chunk also zeroes ids past the table).

// Rows of this chunk, its first row, and rows of the whole table.
override N: u32 = 1u;
override ROW0: u32 = 0u;
override ROWS: u32 = 1u;
// Every row is multiplied by this (Gemma: sqrt of the model width).
override SCALE: f32 = 1.0;

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
    let past_table = id >= ROWS && ROW0 + N == ROWS;
    let local = id - ROW0;
    if !past_table && (id < ROW0 || local >= N) {
        return;
    }
    let base = t * (K / 4u);
    for (var i = lid; i < K / 8u; i += 64u) {
        let blk = i / 4u;
        let u = i % 4u;
        var d = array<vec4<f32>, 2>(vec4<f32>(0.0), vec4<f32>(0.0));
        if !past_table {
            d = dequant_unit(local * (K / 32u) + blk, u);
        }
        out[base + blk * 8u + u] = d[0] * SCALE;
        out[base + blk * 8u + 4u + u] = d[1] * SCALE;
    }
}
