// The naive baseline's first half, as libraries without GQA kernels do it:
// materialise each KV head `GROUP` times so plain per-head (MHA) attention
// can run. Copies every page of a GQA pool, laid out
// [page][kv head][slot][DIM4], into an MHA pool [page][q head][slot][DIM4]
// (DIM4: the kv4 words of a row, its scale words included).

override KV_HEADS: u32;
override GROUP: u32;
override DIM4: u32;
override PAGE_SIZE: u32;

@group(0) @binding(0) var<storage, read> src: array<kv4>;
@group(0) @binding(1) var<storage, read_write> dst: array<kv4>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = (wid.y * nwg.x + wid.x) * 64u + lid;
    let per_head = PAGE_SIZE * DIM4;
    let q_heads = KV_HEADS * GROUP;
    let n = arrayLength(&dst);
    if i >= n {
        return;
    }
    let page = i / (q_heads * per_head);
    let head = (i / per_head) % q_heads;
    let within = i % per_head;
    let at = (page * KV_HEADS + head / GROUP) * per_head + within;
    if at < arrayLength(&src) {
        dst[i] = src[at];
    }
}
