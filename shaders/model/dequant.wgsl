// Reads quantised weights as they sit in GPU memory; shared by `matvec.wgsl`,
// `matmul.wgsl` and `embed.wgsl`. Layout (see src/model/ops/repack.rs): row n
// of K elements is K/32 blocks, block b = n * K/32 + j counts over all rows;
// a K-quant super-block is 8 consecutive blocks.
//   w_quants: each block's values in whole words: F32 32, F16 16, Q8_0 8
//             (signed bytes); the nibble formats 4 words of low nibbles
//             (byte i: element i low, element i + 16 high), then the bits
//             above the nibble: Q5_0, Q5_1, Q5_K one word (bit i: element
//             i), Q6_K two (2 bits per element, elements 0..15 then 16..31);
//             Q2_K and Q3_K no nibbles but two words of 2-bit lows (elements
//             0..15 then 16..31), then Q3_K one word of third bits.
//   w_scales: Q8_0, Q4_0, Q5_0 one f16 scale per block, two to a word;
//             Q4_1, Q5_1 one word per block (f16 scale low, f16 minimum high);
//             Q4_K, Q5_K five words per super-block (f16 d and dmin, then the
//             eight 6-bit scales and the eight minima as bytes); Q6_K five
//             words per super-block (f16 d, then sixteen i8 scales, one per
//             16 elements); Q2_K five words per super-block (f16 d and dmin,
//             then sixteen bytes: 4-bit scale low, 4-bit minimum high, one
//             per 16 elements); Q3_K as Q6_K; unused by F32 and F16.
// Every type is read in units of 8 elements: unit u (0..4) of a block holds
// elements 4u..4u+3 and 16+4u..16+4u+3, which are exactly the low and high
// nibbles of word u. Other types read the same elements so the callers
// index activations the same way whatever the type.

// ggml type number of the weights: 0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 6 Q5_0,
// 7 Q5_1, 8 Q8_0, 10 Q2_K, 11 Q3_K, 12 Q4_K, 13 Q5_K, 14 Q6_K. Specialisation folds the
// branches below, leaving one type's code.
override WTYPE: u32 = 0u;
// Elements per weight row, a multiple of 32 (of 256 for the K-quants).
override K: u32 = 32u;

@group(0) @binding(2) var<storage, read> w_scales: array<u32>;
@group(0) @binding(3) var<storage, read> w_quants: array<u32>;

fn nibbles(w: u32, shift: u32) -> vec4<f32> {
    let s = vec4<u32>(shift, shift + 8u, shift + 16u, shift + 24u);
    return vec4<f32>((vec4<u32>(w) >> s) & vec4<u32>(15u));
}

// The four signed bytes of `w`, sign-extended by shifting up then down.
fn signed_bytes(w: u32) -> vec4<f32> {
    let up = vec4<i32>(bitcast<i32>(w)) << vec4<u32>(24u, 16u, 8u, 0u);
    return vec4<f32>(up >> vec4<u32>(24u));
}

fn f32_word4(i: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(vec4<u32>(w_quants[i], w_quants[i + 1u], w_quants[i + 2u], w_quants[i + 3u]));
}

fn f16_word2(i: u32) -> vec4<f32> {
    return vec4<f32>(unpack2x16float(w_quants[i]), unpack2x16float(w_quants[i + 1u]));
}

fn half_scale(b: u32) -> f32 {
    return unpack2x16float(w_scales[b / 2u])[b % 2u];
}

// Byte `i` of the words starting at w_scales[base], unsigned.
fn scale_byte(base: u32, i: u32) -> u32 {
    return (w_scales[base + i / 4u] >> (8u * (i % 4u))) & 255u;
}

// Bits of a nibble format's quants above the low nibble: 1 (Q5_*), 2 (Q6_K).
fn high_bits() -> u32 {
    if WTYPE == 6u || WTYPE == 7u || WTYPE == 13u {
        return 1u;
    }
    return select(0u, 2u, WTYPE == 14u);
}

// Block b's affine map from quant to value, for the block's first and second
// 16 elements: value = q * s.x + s.y (elements 0..15), q * s.z + s.w (16..31).
fn block_scale(b: u32) -> vec4<f32> {
    if WTYPE == 3u || WTYPE == 7u {
        let dm = unpack2x16float(w_scales[b]);
        return vec4<f32>(dm, dm);
    }
    if WTYPE == 12u || WTYPE == 13u {
        let base = (b / 8u) * 5u;
        let dd = unpack2x16float(w_scales[base]);
        let a = dd.x * f32(scale_byte(base + 1u, b % 8u));
        let o = -(dd.y * f32(scale_byte(base + 3u, b % 8u)));
        return vec4<f32>(a, o, a, o);
    }
    if WTYPE == 10u {
        let base = (b / 8u) * 5u;
        let dd = unpack2x16float(w_scales[base]);
        let sm = vec2<u32>(scale_byte(base + 1u, 2u * (b % 8u)), scale_byte(base + 1u, 2u * (b % 8u) + 1u));
        let a = dd.x * vec2<f32>(sm & vec2<u32>(15u));
        let o = -(dd.y * vec2<f32>(sm >> vec2<u32>(4u)));
        return vec4<f32>(a.x, o.x, a.y, o.y);
    }
    // Q6_K's quants are stored + 32, Q3_K's + 4.
    if WTYPE == 14u || WTYPE == 11u {
        let base = (b / 8u) * 5u;
        let d = unpack2x16float(w_scales[base]).x;
        let w = bitcast<i32>(w_scales[base + 1u + (b % 8u) / 2u]);
        let shift = 16u * (b % 2u);
        let s0 = d * f32(extractBits(w, shift, 8u));
        let s1 = d * f32(extractBits(w, shift + 8u, 8u));
        let zero = select(-32.0, -4.0, WTYPE == 11u);
        return vec4<f32>(s0, zero * s0, s1, zero * s1);
    }
    // Q4_0 and Q5_0 store q + 8 and q + 16; Q8_0 signed q.
    let d = select(1.0, half_scale(b), WTYPE == 2u || WTYPE == 6u || WTYPE == 8u);
    let o = select(0.0, select(-8.0, -16.0, WTYPE == 6u) * d, WTYPE == 2u || WTYPE == 6u);
    return vec4<f32>(d, o, d, o);
}

// Words per block in w_quants.
fn quant_words() -> u32 {
    switch WTYPE {
        case 0u: { return 32u; }
        case 1u: { return 16u; }
        case 8u: { return 8u; }
        case 10u: { return 2u; }
        case 11u: { return 3u; }
        default: { return 4u + high_bits(); }
    }
}

// Unit u of block b: (elements 4u..4u+3, elements 16+4u..16+4u+3), with
// the block's `s` from `block_scale` (loaded once for its four units).
fn dequant_unit_scaled(b: u32, u: u32, s: vec4<f32>) -> array<vec4<f32>, 2> {
    let base = b * quant_words();
    if WTYPE == 0u {
        let i = base + 4u * u;
        return array<vec4<f32>, 2>(f32_word4(i), f32_word4(i + 16u));
    }
    if WTYPE == 1u {
        let i = base + 2u * u;
        return array<vec4<f32>, 2>(f16_word2(i), f16_word2(i + 8u));
    }
    if WTYPE == 8u {
        let i = base + u;
        return array<vec4<f32>, 2>(signed_bytes(w_quants[i]) * s.x, signed_bytes(w_quants[i + 4u]) * s.z);
    }
    if WTYPE == 10u || WTYPE == 11u {
        let at = vec4<u32>(0u, 2u, 4u, 6u) + 8u * u;
        var lo = vec4<f32>((vec4<u32>(w_quants[base]) >> at) & vec4<u32>(3u));
        var hi = vec4<f32>((vec4<u32>(w_quants[base + 1u]) >> at) & vec4<u32>(3u));
        if WTYPE == 11u {
            let h = vec4<u32>(w_quants[base + 2u]);
            let bit = vec4<u32>(0u, 1u, 2u, 3u) + 4u * u;
            lo += 4.0 * vec4<f32>((h >> bit) & vec4<u32>(1u));
            hi += 4.0 * vec4<f32>((h >> (bit + 16u)) & vec4<u32>(1u));
        }
        return array<vec4<f32>, 2>(lo * s.x + s.y, hi * s.z + s.w);
    }
    let w = w_quants[base + u];
    var lo = nibbles(w, 0u);
    var hi = nibbles(w, 4u);
    if high_bits() == 1u {
        let h = vec4<u32>(w_quants[base + 4u]);
        let at = vec4<u32>(0u, 1u, 2u, 3u) + 4u * u;
        lo += 16.0 * vec4<f32>((h >> at) & vec4<u32>(1u));
        hi += 16.0 * vec4<f32>((h >> (at + 16u)) & vec4<u32>(1u));
    }
    if high_bits() == 2u {
        let at = vec4<u32>(0u, 2u, 4u, 6u) + 8u * u;
        lo += 16.0 * vec4<f32>((vec4<u32>(w_quants[base + 4u]) >> at) & vec4<u32>(3u));
        hi += 16.0 * vec4<f32>((vec4<u32>(w_quants[base + 5u]) >> at) & vec4<u32>(3u));
    }
    return array<vec4<f32>, 2>(lo * s.x + s.y, hi * s.z + s.w);
}

fn dequant_unit(b: u32, u: u32) -> array<vec4<f32>, 2> {
    return dequant_unit_scaled(b, u, block_scale(b));
}
