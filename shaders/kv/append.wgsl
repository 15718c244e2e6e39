// Writes new K (or V) vectors, laid out [tokens, HEADS, DIM4*4] in f32, into
// their reserved slots of the paged cache, in the cache's storage type,
// rotating them with RoPE on the way when ROPE is set.
// Page layout: [page][kv head][slot in page][row], so a kernel streams one
// KV head's tokens contiguously; a row is DIM4 kv4 words then
// KV_SCALE_WORDS scale words.
//
// Float storages: a thread per unit (see `rope/rotate.wgsl`). int8: a thread
// per row, since the row's scale is the largest |x| over all its units after
// RoPE: a first pass finds it, a second stores x / scale (a zero row stores
// scale 0 and zeros).

@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> pool: array<kv4>;
@group(0) @binding(3) var<storage, read> rope_freqs: array<u32>;

override ROW: u32 = DIM4 + KV_SCALE_WORDS;

// First word of the row of `u`'s token and head in the pool.
fn row_start(u: RopeUnit) -> u32 {
    let page_size = plan[PLAN_PAGE_SIZE];
    let page = plan[entry_table(entry_of_token(u.token)) + u.pos / page_size];
    return ((page * HEADS + u.head) * page_size + u.pos % page_size) * ROW;
}

// The unit's rotated vectors (the second one is the NeoX partner).
fn rotated(u: RopeUnit) -> array<vec4<f32>, 2> {
    let base = (u.token * HEADS + u.head) * DIM4;
    return rope_rotate(u, src[base + u.col], src[base + rope_partner(u.col)]);
}

fn append_unit(i: u32) {
    let u = rope_unit(i);
    if !u.valid {
        return;
    }
    let dst = row_start(u);
    let r = rotated(u);
    pool[dst + u.col] = kv_store(r[0]);
    if ROPE == 2u {
        pool[dst + rope_partner(u.col)] = kv_store(r[1]);
    }
}

fn max_abs(v: vec4<f32>) -> f32 {
    let a = abs(v);
    return max(max(a.x, a.y), max(a.z, a.w));
}

fn append_row(i: u32) {
    var u = rope_unit_at(i / HEADS, i % HEADS, 0u);
    if !u.valid {
        return;
    }
    let dst = row_start(u);
    let units = rope_units_per_head();
    var scale = 0.0;
    for (var c = 0u; c < units; c++) {
        u.col = c;
        let r = rotated(u);
        scale = max(scale, max_abs(r[0]));
        if ROPE == 2u {
            scale = max(scale, max_abs(r[1]));
        }
    }
    let nonzero = scale > 0.0;
    for (var c = 0u; c < units; c++) {
        u.col = c;
        let r = rotated(u);
        pool[dst + c] = kv_store(select(vec4<f32>(0.0), r[0] / scale, nonzero));
        if ROPE == 2u {
            pool[dst + rope_partner(c)] = kv_store(select(vec4<f32>(0.0), r[1] / scale, nonzero));
        }
    }
    pool[dst + DIM4] = kv_scale_store(scale);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = thread_index(wid, nwg, lid);
    if KV_SCALE_WORDS == 0u {
        append_unit(i);
    } else {
        append_row(i);
    }
}
