// Attention over a paged KV cache for one (query block, KV head, key split).
//
// A workgroup owns one KV head and every query row that reads it: up to
// `ROWS` rows made of `BQ` query tokens x `GH` query heads of the head's group.
// Each key and value vector of the head is fetched from memory once per
// workgroup and used by all its rows, which is the point of GQA. Decode is
// the case of one query token per sequence; prefill packs tokens into rows.
//
// Per tile of `WG` keys:
//   1. each thread scores its own key against every row, holding four K
//      vectors in registers at a time (K read once);
//   2. the tile's row maxima update the online-softmax state;
//   3. threads take (row, 4-wide column) pairs of the output and accumulate
//      the tile's keys (V rows are shared through the cache across rows).
// All per-row state lives in workgroup memory, indexed freely: per-thread
// arrays indexed by row compile to select chains on some drivers (lavapipe).
//
// With one key split the workgroup normalises and writes `out` itself;
// otherwise the unnormalised output, row max and row sum go to `partial`, one
// slot per split, and `merge.wgsl` combines them.
//
// The prelude defines `kv4`, `kv_load`, MASKED and the plan layout;
// `finish.wgsl` the final normalisation; `tile_max` and the `Lanes` builtins
// it needs come from a subgroup or a workgroup-memory version.

override WG: u32 = 64u;
override HEAD_DIM4: u32;
override V_DIM4: u32;
override Q_HEADS: u32;
override KV_HEADS: u32;
// Query heads handled per workgroup and query tokens per block; ROWS = GH * BQ
// sizes the per-row workgroup state.
override GH: u32;
override BQ: u32;
override ROWS: u32 = GH * BQ;
// V columns (vec4) one thread accumulates per row: 4, 2 or 1, dividing V_DIM4.
override COLS: u32 = 1u;
override CAUSAL: bool = true;
// 0 means no sliding window.
override WINDOW: u32 = 0u;
// Scale applied to q.k; 0 softcap means none.
override SCALE: f32;
override SOFTCAP: f32 = 0.0;

const LOG2E: f32 = 1.4426950408889634;

@group(0) @binding(0) var<storage, read> plan: array<u32>;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k_pool: array<kv4>;
@group(0) @binding(3) var<storage, read> v_pool: array<kv4>;
@group(0) @binding(4) var<storage, read> sinks: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;

// Scores, then probabilities, of the tile: [row][key].
var<workgroup> probs: array<f32, ROWS * WG>;
// Unnormalised output: [row][column].
var<workgroup> acc: array<vec4<f32>, ROWS * V_DIM4>;
var<workgroup> row_max: array<f32, ROWS>;
var<workgroup> row_sum: array<f32, ROWS>;
// Rescale of the row's state when its max grows in a tile.
var<workgroup> row_alpha: array<f32, ROWS>;
// Offset of the row's query vector.
var<workgroup> row_q: array<u32, ROWS>;
// Cache slot of each key of the tile.
var<workgroup> key_slot: array<u32, WG>;

fn visible(q_pos: u32, k_pos: u32) -> bool {
    if CAUSAL && k_pos > q_pos {
        return false;
    }
    let dist = select(k_pos - q_pos, q_pos - k_pos, k_pos <= q_pos);
    return WINDOW == 0u || dist < WINDOW;
}

fn seen_v(v: kv4, seen: bool) -> vec4<f32> {
    return select(vec4<f32>(0.0), kv_load(v), seen);
}

// tanh that keeps its relative precision near 0, where builtins computed
// from exponentials lose it: with a cap far above the logits, s / SOFTCAP is
// tiny and the capped logit must still be close to s.
fn tanh_near_zero(y: f32) -> f32 {
    let y2 = y * y;
    let series = y * (1.0 + y2 * (-1.0 / 3.0 + y2 * (2.0 / 15.0 - y2 * (17.0 / 315.0))));
    return select(tanh(y), series, abs(y) < 0.0625);
}

fn logit(dot_qk: f32) -> f32 {
    var s = dot_qk * SCALE;
    if SOFTCAP > 0.0 {
        s = SOFTCAP * tanh_near_zero(s / SOFTCAP);
    }
    return s * LOG2E;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, lanes: Lanes) {
    let lid = lanes.lid;
    let group = Q_HEADS / KV_HEADS;
    let chunks = (group + GH - 1u) / GH;
    let split = wid.x;
    let kvh = wid.y / chunks;
    let head0 = kvh * group + (wid.y % chunks) * GH;
    let n_heads = min(GH, kvh * group + group - head0);

    let n_splits = plan[PLAN_SPLITS];
    let page_size = plan[PLAN_PAGE_SIZE];
    let block = plan[PLAN_BLOCKS + BQ] + wid.z * 2u;
    let e = PLAN_ENTRIES + plan[block] * ENTRY_WORDS;
    let t0 = plan[block + 1u];
    let q_tok0 = plan[e] + t0;
    let n_tok = min(BQ, plan[e + 1u] - t0);
    let q_pos0 = plan[e + 2u] + t0;
    let kv_len = plan[e + 3u];
    let pages = plan[e + 4u];
    let split_len = plan[e + 5u];
    let rows = n_tok * n_heads;

    // Keys this workgroup can see: its split, cut to the rows' visible range.
    var k_begin = split * split_len;
    var k_end = min(k_begin + split_len, kv_len);
    let last_q = q_pos0 + n_tok - 1u;
    if CAUSAL {
        k_end = min(k_end, last_q + 1u);
    } else if WINDOW > 0u {
        k_end = min(k_end, last_q + WINDOW);
    }
    if WINDOW > 0u && q_pos0 + 1u > WINDOW {
        k_begin = max(k_begin, q_pos0 + 1u - WINDOW);
    }

    for (var r = lid; r < rows; r += WG) {
        row_q[r] = ((q_tok0 + r / n_heads) * Q_HEADS + head0 + r % n_heads) * HEAD_DIM4;
        row_max[r] = MASKED;
        row_sum[r] = 0.0;
    }
    for (var i = lid; i < rows * V_DIM4; i += WG) {
        acc[i] = vec4<f32>(0.0);
    }
    workgroupBarrier();

    for (var tile = k_begin; tile < k_end; tile += WG) {
        // 1. Score this thread's key against every row.
        let key = tile + lid;
        if key < k_end {
            let page = plan[pages + key / page_size];
            let slot = (page * KV_HEADS + kvh) * page_size + key % page_size;
            key_slot[lid] = slot;
            score_key(slot * HEAD_DIM4, lid, rows);
            for (var r = 0u; r < rows; r++) {
                let i = r * WG + lid;
                probs[i] = select(MASKED, logit(probs[i]), visible(q_pos0 + r / n_heads, key));
            }
        } else {
            for (var r = 0u; r < rows; r++) {
                probs[r * WG + lid] = MASKED;
            }
        }

        // 2. Online softmax: new row maxima, then this key's probabilities.
        tile_max(lanes, rows);
        for (var r = 0u; r < rows; r++) {
            let i = r * WG + lid;
            let s = probs[i];
            probs[i] = select(0.0, exp2(s - row_max[r]), s != MASKED);
        }
        workgroupBarrier();

        // 3. Accumulate P.V. A work item is a row and COLS columns `span`
        //    apart, so neighbouring threads read neighbouring V vectors and
        //    each probability is loaded once for COLS columns.
        let n_keys = min(WG, k_end - tile);
        let span = V_DIM4 / COLS;
        for (var i = lid; i < rows * span; i += WG) {
            let r = i / span;
            let c = i % span;
            var o0 = vec4<f32>(0.0);
            var o1 = vec4<f32>(0.0);
            var o2 = vec4<f32>(0.0);
            var o3 = vec4<f32>(0.0);
            var l = 0.0;
            for (var t = 0u; t < n_keys; t++) {
                let p = probs[r * WG + t];
                let v = key_slot[t] * V_DIM4 + c;
                // A key this row cannot see has p = 0; its V is replaced,
                // not multiplied by 0, so a NaN or inf there stays out.
                let seen = p != 0.0;
                o0 += p * seen_v(v_pool[v], seen);
                if COLS > 1u {
                    o1 += p * seen_v(v_pool[v + span], seen);
                }
                if COLS > 2u {
                    o2 += p * seen_v(v_pool[v + 2u * span], seen);
                    o3 += p * seen_v(v_pool[v + 3u * span], seen);
                }
                l += p;
            }
            let a = row_alpha[r];
            let at = r * V_DIM4 + c;
            acc[at] = acc[at] * a + o0;
            if COLS > 1u {
                acc[at + span] = acc[at + span] * a + o1;
            }
            if COLS > 2u {
                acc[at + 2u * span] = acc[at + 2u * span] * a + o2;
                acc[at + 3u * span] = acc[at + 3u * span] * a + o3;
            }
            if c == 0u {
                row_sum[r] = row_sum[r] * a + l;
            }
        }
        workgroupBarrier();
    }

    // Write the output, or this split's partial result.
    let stride = V_DIM4 * 4u + 2u;
    for (var i = lid; i < rows * V_DIM4; i += WG) {
        let r = i / V_DIM4;
        let c = i % V_DIM4;
        let head = head0 + r % n_heads;
        let row = (q_tok0 + r / n_heads) * Q_HEADS + head;
        if n_splits == 1u {
            out[row * V_DIM4 + c] = acc[i] * finish_scale(row_max[r], row_sum[r], head);
        } else {
            let base = (row * n_splits + split) * stride;
            for (var j = 0u; j < 4u; j++) {
                partial[base + c * 4u + j] = acc[i][j];
            }
            if c == 0u {
                partial[base + V_DIM4 * 4u] = row_max[r];
                partial[base + V_DIM4 * 4u + 1u] = row_sum[r];
            }
        }
    }
}

// Raw q.k of the key at `k_base` against every row, into this thread's
// column of `probs`. Four K vectors stay in registers while all rows use them.
fn score_key(k_base: u32, lid: u32, rows: u32) {
    for (var r = 0u; r < rows; r++) {
        probs[r * WG + lid] = 0.0;
    }
    var d = 0u;
    for (; d + 4u <= HEAD_DIM4; d += 4u) {
        let k0 = kv_load(k_pool[k_base + d]);
        let k1 = kv_load(k_pool[k_base + d + 1u]);
        let k2 = kv_load(k_pool[k_base + d + 2u]);
        let k3 = kv_load(k_pool[k_base + d + 3u]);
        for (var r = 0u; r < rows; r++) {
            let qb = row_q[r] + d;
            probs[r * WG + lid] += dot(q[qb], k0) + dot(q[qb + 1u], k1) + dot(q[qb + 2u], k2) + dot(q[qb + 3u], k3);
        }
    }
    for (; d < HEAD_DIM4; d++) {
        let k0 = kv_load(k_pool[k_base + d]);
        for (var r = 0u; r < rows; r++) {
            probs[r * WG + lid] += dot(q[row_q[r] + d], k0);
        }
    }
}
