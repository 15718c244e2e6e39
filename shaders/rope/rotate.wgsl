// Rotary position embedding shared by `rope.wgsl` (queries, in place) and
// `kv/append.wgsl` (keys, on their way into the cache).
//
// A unit is one 4-wide column of one head of one token. With adjacent
// pairs (GGUF / llama.cpp) a vec4 holds two whole pairs; with half-split pairs
// (NeoX) a unit is a vec4 from the first half and its partner DIM4/2 later.
// `rope_freqs[i]` is the frequency of pair i in turns per position as a 0.32
// fixed-point fraction (integer turns never matter). The angle's fraction of
// a turn is then `pos * freq` in wrapping u32 arithmetic: exact but for the
// table's rounding, where f32 would lose ~1e-3 rad by position 5000.

override HEADS: u32;
override DIM4: u32;
// 0: no rotation, 1: adjacent pairs, 2: half-split (NeoX).
override ROPE: u32 = 0u;

const TAU: f32 = 6.283185307179586;

struct RopeUnit {
    token: u32,
    head: u32,
    col: u32,
    pos: u32,
    valid: bool,
}

fn rope_units_per_head() -> u32 {
    return select(DIM4, DIM4 / 2u, ROPE == 2u);
}

// Index of this thread among the dispatch's workgroups of 64.
fn thread_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * 64u + lid;
}

// Thread `i`'s unit when a thread handles one unit.
fn rope_unit(i: u32) -> RopeUnit {
    let units = rope_units_per_head();
    return rope_unit_at(i / (HEADS * units), (i / units) % HEADS, i % units);
}

// Unit `col` of `head` of `token`, and the position of its token in its sequence.
fn rope_unit_at(token: u32, head: u32, col: u32) -> RopeUnit {
    var u: RopeUnit;
    u.token = token;
    u.head = head;
    u.col = col;
    u.valid = u.token < plan[PLAN_TOKENS];
    if u.valid {
        let e = entry_of_token(u.token);
        u.pos = plan[e + ENTRY_FIRST_POS] + u.token - plan[e + ENTRY_FIRST_TOKEN];
    }
    return u;
}

fn cos_sin(pos: u32, pair: u32) -> vec2<f32> {
    let angle = f32(pos * rope_freqs[pair]) * (TAU / 4294967296.0);
    return vec2<f32>(cos(angle), sin(angle));
}

// Rotates `a` (and, for NeoX, its partner `b`); returns the new pair of vectors.
fn rope_rotate(u: RopeUnit, a: vec4<f32>, b: vec4<f32>) -> array<vec4<f32>, 2> {
    if ROPE == 1u {
        let c0 = cos_sin(u.pos, 2u * u.col);
        let c1 = cos_sin(u.pos, 2u * u.col + 1u);
        let r = vec4<f32>(
            a.x * c0.x - a.y * c0.y, a.x * c0.y + a.y * c0.x,
            a.z * c1.x - a.w * c1.y, a.z * c1.y + a.w * c1.x,
        );
        return array<vec4<f32>, 2>(r, b);
    }
    if ROPE == 2u {
        var c: vec4<f32>;
        var s: vec4<f32>;
        for (var j = 0u; j < 4u; j++) {
            let cs = cos_sin(u.pos, 4u * u.col + j);
            c[j] = cs.x;
            s[j] = cs.y;
        }
        return array<vec4<f32>, 2>(a * c - b * s, a * s + b * c);
    }
    return array<vec4<f32>, 2>(a, b);
}

// Index of the second vector of a unit (itself unless NeoX).
fn rope_partner(col: u32) -> u32 {
    return select(col, col + DIM4 / 2u, ROPE == 2u);
}
