// Attention over a paged KV cache for one (query block, KV head, key split).
//
// A workgroup owns one KV head and every query row that reads it: up to
// `ROWS` rows made of `BQ` query tokens x `GH` query heads of the head's group.
// Its `TX * TY` invocations form `TY` key lanes of `TX` dim lanes: dim lane
// `x` owns the vec4 columns `x, x + TX, x + 2 TX, ...` of the head dims, so
// neighbouring invocations read neighbouring addresses of a key, and key lane
// `y` takes keys `y, y + TY, y + 2 TY, ...` of the workgroup's range, `KPT`
// of them per tile of `TILE = KPT * TY` keys. Every K and V
// element of the range is loaded from memory exactly once, by one invocation,
// and used there for all rows: the rows' query slices and output
// accumulators live in that invocation's registers.
//
// Per tile:
//   1. each invocation dots its K slices with every row's query slice;
//   2. `tile_dots` adds up the `TX` partial sums of each (key, row);
//   3. each invocation folds its keys into its own online-softmax state per
//      row (max, sum, output slice), reading each V slice once.
// Where `tile_dots` goes through workgroup memory, its two barriers are the
// tile's shared work, so a tile holds several keys per lane.
// A key lane is a split of its own: at the end, the `TY` states of each row
// are merged by their log-sum-exp, like the key splits in `merge.wgsl`.
//
// A masked key (causal, window, past the range) leaves a row's state as it
// was, chosen by `select`, so NaN or inf in its K or V (or their scales)
// cannot leak in.
//
// With int8 storage a key's partial dot sums are multiplied by its K scale
// once, before `tile_dots`, and its V scale joins p in the P.V update; the
// row sum `l` adds the unscaled p.
// Register arrays are indexed only by loops of constant trip count (override
// constants), which drivers unroll into plain registers.
//
// With one key split the workgroup normalises and writes `out` itself;
// otherwise the unnormalised output, row max and row sum go to `partial`, one
// slot per split, and `merge.wgsl` combines them.
//
// The prelude defines `kv4`, `kv_load`, the scale words and MASKED;
// `kv/plan.wgsl` the plan and its accessors; `finish.wgsl` the final normalisation; `tile_dots`, `lane` and the `Lanes`
// builtins come from a subgroup or a workgroup-memory version.

// Dim lanes and key lanes of a workgroup.
override TX: u32;
override TY: u32;
override WG: u32 = TX * TY;
// Keys per key lane per tile.
override KPT: u32 = 1u;
override TILE: u32 = KPT * TY;
// vec4 columns of K and of V one dim lane owns.
override KPL: u32;
override VPL: u32;
override HEAD_DIM4: u32;
override V_DIM4: u32;
// Words of one key's and one value's row: its vec4 columns, then its scale
// (int8 storage only: see the prelude).
override K_ROW: u32 = HEAD_DIM4 + KV_SCALE_WORDS;
override V_ROW: u32 = V_DIM4 + KV_SCALE_WORDS;
override Q_HEADS: u32;
override KV_HEADS: u32;
// Query heads handled per workgroup and query tokens per block.
override GH: u32;
override BQ: u32;
override ROWS: u32 = GH * BQ;
override CAUSAL: bool = true;
// 0 means no sliding window.
override WINDOW: u32 = 0u;
// Scale applied to q.k; 0 softcap means none.
override SCALE: f32;
override SOFTCAP: f32 = 0.0;

const LOG2E: f32 = 1.4426950408889634;
// The host generates the register budget of one invocation: ROWS * KPL and
// ROWS * VPL vec4s of at most REGS, at most MAX_ROWS rows, at most MAX_KPT
// keys per key lane per tile (src/attention/attend.rs keeps to them).
// Partial and full dot products of a lane's keys: [key][row].
const DOTS: u32 = MAX_KPT * MAX_ROWS;

@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k_pool: array<kv4>;
@group(0) @binding(3) var<storage, read> v_pool: array<kv4>;
@group(0) @binding(4) var<storage, read> sinks: array<f32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;

// One row's per-key-lane states while they are merged.
var<workgroup> merge_o: array<vec4<f32>, WG * VPL>;
var<workgroup> merge_ml: array<vec2<f32>, WG>;

fn visible(q_pos: u32, k_pos: u32) -> bool {
    if CAUSAL && k_pos > q_pos {
        return false;
    }
    let dist = select(k_pos - q_pos, q_pos - k_pos, k_pos <= q_pos);
    return WINDOW == 0u || dist < WINDOW;
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
    let lid = lane(lanes);
    let x = lid % TX;
    let y = lid / TX;
    let group = Q_HEADS / KV_HEADS;
    let chunks = (group + GH - 1u) / GH;
    let split = wid.x;
    let kvh = wid.y / chunks;
    let head0 = kvh * group + (wid.y % chunks) * GH;
    let n_heads = min(GH, kvh * group + group - head0);

    let n_splits = plan[PLAN_SPLITS];
    let page_size = plan[PLAN_PAGE_SIZE];
    let block = plan[PLAN_BLOCKS + BQ] + wid.z * 2u;
    let e = plan_entry(plan[block]);
    let t0 = plan[block + 1u];
    let q_tok0 = plan[e + ENTRY_FIRST_TOKEN] + t0;
    let n_tok = min(BQ, plan[e + ENTRY_TOKENS] - t0);
    let q_pos0 = plan[e + ENTRY_FIRST_POS] + t0;
    let kv_len = plan[e + ENTRY_KV_LEN];
    let pages = entry_table(e);
    let split_len = plan[e + ENTRY_SPLIT_LEN];

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

    // This lane's query slices (zero for rows past the block) and state.
    var qr: array<vec4<f32>, REGS>;
    var o: array<vec4<f32>, REGS>;
    var m: array<f32, MAX_ROWS>;
    var l: array<f32, MAX_ROWS>;
    for (var r = 0u; r < ROWS; r++) {
        let row_ok = r / GH < n_tok && r % GH < n_heads;
        let qb = ((q_tok0 + r / GH) * Q_HEADS + head0 + r % GH) * HEAD_DIM4;
        for (var j = 0u; j < KPL; j++) {
            let d = x + j * TX;
            if row_ok && d < HEAD_DIM4 {
                qr[r * KPL + j] = q[qb + d];
            }
        }
        m[r] = MASKED;
    }

    for (var tile = k_begin; tile < k_end; tile += TILE) {
        // This lane's keys of the tile are `tile + kk * TY + y`.
        var slot: array<u32, MAX_KPT>;
        var live: array<bool, MAX_KPT>;
        for (var kk = 0u; kk < KPT; kk++) {
            let key = tile + kk * TY + y;
            live[kk] = key < k_end;
            if live[kk] {
                slot[kk] = (plan[pages + key / page_size] * KV_HEADS + kvh) * page_size + key % page_size;
            }
        }

        // 1. Partial q.k of this lane's K slices, for every row. Zeroed
        // explicitly: Chromium on SwiftShader kept the last tile's sums in a
        // loop-local `var` declared without an initializer.
        var acc = array<f32, DOTS>();
        for (var kk = 0u; kk < KPT; kk++) {
            if live[kk] {
                for (var j = 0u; j < KPL; j++) {
                    let d = x + j * TX;
                    if d < HEAD_DIM4 {
                        let k = kv_load(k_pool[slot[kk] * K_ROW + d]);
                        for (var r = 0u; r < ROWS; r++) {
                            acc[kk * MAX_ROWS + r] += dot(qr[r * KPL + j], k);
                        }
                    }
                }
                if KV_SCALE_WORDS > 0u {
                    let sk = kv_scale_load(k_pool[slot[kk] * K_ROW + HEAD_DIM4]);
                    for (var r = 0u; r < ROWS; r++) {
                        acc[kk * MAX_ROWS + r] *= sk;
                    }
                }
            }
        }
        // 2. Full dot products.
        acc = tile_dots(lanes, acc);

        // 3. Fold each key into each row's state: new max, rescale, P.V.
        for (var kk = 0u; kk < KPT; kk++) {
            let key = tile + kk * TY + y;
            var alpha: array<f32, MAX_ROWS>;
            var p: array<f32, MAX_ROWS>;
            var seen: array<bool, MAX_ROWS>;
            var any_seen = false;
            for (var r = 0u; r < ROWS; r++) {
                seen[r] = live[kk] && visible(q_pos0 + r / GH, key);
                let s = logit(acc[kk * MAX_ROWS + r]);
                let m_new = select(m[r], max(m[r], s), seen[r]);
                alpha[r] = exp2(m[r] - m_new);
                p[r] = select(0.0, exp2(s - m_new), seen[r]);
                l[r] = l[r] * alpha[r] + p[r];
                m[r] = m_new;
                any_seen = any_seen || seen[r];
            }
            if any_seen {
                var sv = 1.0;
                if KV_SCALE_WORDS > 0u {
                    sv = kv_scale_load(v_pool[slot[kk] * V_ROW + V_DIM4]);
                }
                for (var j = 0u; j < VPL; j++) {
                    let d = x + j * TX;
                    if d < V_DIM4 {
                        let v = kv_load(v_pool[slot[kk] * V_ROW + d]);
                        for (var r = 0u; r < ROWS; r++) {
                            let i = r * VPL + j;
                            o[i] = select(o[i], o[i] * alpha[r] + (p[r] * sv) * v, seen[r]);
                        }
                    }
                }
            }
        }
    }

    // Merge the key lanes' states row by row; key lane 0 writes the result.
    let stride = V_DIM4 * 4u + 2u;
    for (var r = 0u; r < ROWS; r++) {
        workgroupBarrier();
        merge_ml[lid] = vec2<f32>(m[r], l[r]);
        for (var j = 0u; j < VPL; j++) {
            merge_o[lid * VPL + j] = o[r * VPL + j];
        }
        workgroupBarrier();
        if y == 0u && r / GH < n_tok && r % GH < n_heads {
            var mm = MASKED;
            for (var t = 0u; t < TY; t++) {
                mm = max(mm, merge_ml[t * TX + x].x);
            }
            var ll = 0.0;
            for (var t = 0u; t < TY; t++) {
                let ml = merge_ml[t * TX + x];
                ll += exp2(ml.x - mm) * ml.y;
            }
            let head = head0 + r % GH;
            let row = (q_tok0 + r / GH) * Q_HEADS + head;
            let scale = finish_scale(mm, ll, head);
            let base = (row * n_splits + split) * stride;
            for (var j = 0u; j < VPL; j++) {
                let d = x + j * TX;
                if d < V_DIM4 {
                    var sum = vec4<f32>(0.0);
                    for (var t = 0u; t < TY; t++) {
                        sum += exp2(merge_ml[t * TX + x].x - mm) * merge_o[(t * TX + x) * VPL + j];
                    }
                    if n_splits == 1u {
                        out[row * V_DIM4 + d] = sum * scale;
                    } else {
                        for (var c = 0u; c < 4u; c++) {
                            partial[base + d * 4u + c] = sum[c];
                        }
                    }
                }
            }
            if n_splits > 1u && x == 0u {
                partial[base + V_DIM4 * 4u] = mm;
                partial[base + V_DIM4 * 4u + 1u] = ll;
            }
        }
    }
}
