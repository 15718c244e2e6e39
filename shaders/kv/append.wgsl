// Writes new K (or V) vectors, laid out [tokens, HEADS, DIM4*4] in f32, into
// their reserved slots of the paged cache, in the cache's storage type,
// rotating them with RoPE on the way when ROPE is set.
// Page layout: [page][kv head][slot in page][DIM4], so a kernel streams one
// KV head's tokens contiguously.

@group(0) @binding(0) var<storage, read> plan: array<u32>;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> pool: array<kv4>;
@group(0) @binding(3) var<storage, read> rope_freqs: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let u = rope_unit(wid, nwg, lid);
    if !u.valid {
        return;
    }
    let page_size = plan[PLAN_PAGE_SIZE];
    let e = PLAN_ENTRIES + plan[plan[PLAN_TOKEN_MAP] + u.token] * ENTRY_WORDS;
    let page = plan[plan[e + 4u] + u.pos / page_size];
    let dst = ((page * HEADS + u.head) * page_size + u.pos % page_size) * DIM4;
    let src_base = (u.token * HEADS + u.head) * DIM4;
    let partner = rope_partner(u.col);
    let r = rope_rotate(u, src[src_base + u.col], src[src_base + partner]);
    pool[dst + u.col] = kv_store(r[0]);
    if ROPE == 2u {
        pool[dst + partner] = kv_store(r[1]);
    }
}
