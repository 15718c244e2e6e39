// Reads quantised weights as they sit in GPU memory; shared by `matvec.wgsl`,
// `matmul.wgsl` and `embed.wgsl`. Layout (see src/model/ops/repack.rs): row n
// of K elements is K/32 blocks, block b = n * K/32 + j counts over all rows.
//   w_quants: each block's values, in file order, 4-byte aligned:
//             F32 32 words, F16 16 words, Q8_0 8 words, Q4_0 and Q4_1 4 words.
//   w_scales: Q8_0 and Q4_0 one f16 scale per block, two to a word;
//             Q4_1 one word per block (f16 scale low, f16 minimum high);
//             unused by F32 and F16.
// Every type is read in units of 8 elements: unit u (0..4) of a block holds
// elements 4u..4u+3 and 16+4u..16+4u+3, which are exactly the low and high
// nibbles of Q4 word u. Other types read the same elements so the callers
// index activations the same way whatever the type.

// ggml type number of the weights: 0 F32, 1 F16, 2 Q4_0, 3 Q4_1, 8 Q8_0.
// Specialisation folds the branches below, leaving one type's code.
override WTYPE: u32 = 0u;
// Elements per weight row, a multiple of 32.
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

// Block b's scale and minimum (d, m): a value is q * d + m. Q8_0 and Q4_0
// have no minimum (their offset of -8 is applied to q); F32 and F16 none.
fn block_scale(b: u32) -> vec2<f32> {
    if WTYPE == 3u {
        return unpack2x16float(w_scales[b]);
    }
    if WTYPE == 8u || WTYPE == 2u {
        return vec2<f32>(half_scale(b), 0.0);
    }
    return vec2<f32>(1.0, 0.0);
}

// Unit u of block b: (elements 4u..4u+3, elements 16+4u..16+4u+3), with
// the block's `dm` from `block_scale` (loaded once for its four units).
fn dequant_unit_scaled(b: u32, u: u32, dm: vec2<f32>) -> array<vec4<f32>, 2> {
    if WTYPE == 1u {
        let i = b * 16u + 2u * u;
        return array<vec4<f32>, 2>(f16_word2(i), f16_word2(i + 8u));
    }
    if WTYPE == 8u {
        let i = b * 8u + u;
        return array<vec4<f32>, 2>(signed_bytes(w_quants[i]) * dm.x, signed_bytes(w_quants[i + 4u]) * dm.x);
    }
    if WTYPE == 2u {
        let w = w_quants[b * 4u + u];
        return array<vec4<f32>, 2>((nibbles(w, 0u) - 8.0) * dm.x, (nibbles(w, 4u) - 8.0) * dm.x);
    }
    if WTYPE == 3u {
        let w = w_quants[b * 4u + u];
        return array<vec4<f32>, 2>(nibbles(w, 0u) * dm.x + dm.y, nibbles(w, 4u) * dm.x + dm.y);
    }
    let i = b * 32u + 4u * u;
    return array<vec4<f32>, 2>(f32_word4(i), f32_word4(i + 16u));
}

fn dequant_unit(b: u32, u: u32) -> array<vec4<f32>, 2> {
    return dequant_unit_scaled(b, u, block_scale(b));
}
