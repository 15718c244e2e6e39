//! The llama and gemma3 forward passes' GPU ops against their CPU
//! references: matmul on every weight type through both kernels, with the
//! residual add, SwiGLU, GeGLU and a Q/K/V split folded in, embedding
//! lookup, tables split by rows under small binding limits, RMSNorm (per
//! token, per head, added into the residual), SwiGLU, GeGLU, the residual
//! add, the greedy argmax, error paths and the real model's tensors.

use half::f16;
use wgqa::model::ops::{
    self, Batch, ChunkedMatrix, Fusion, HeadNorm, MatmulOptions, MatmulPath, Output, QuantMatrix, RmsNorm,
    ARGMAX_NONE,
};
use wgqa::model::{argmax, dequantize, Gguf, TensorInfo, TensorType, QK, QK_K};
use wgqa::reference::{self, tolerance};
use wgqa::{Error, GpuContext};
use wgqa_testkit::model_file::default_model_path;
use wgqa_testkit::{ctx, random};

/// |gpu - ref| within `tolerance::MODEL_OPS` at `scale` (sum_k |x_k w_k| for
/// a matmul, |ref| for the other ops).
fn check(case: &str, got: &[f32], want: &[f32], scale: &[f32]) {
    assert!(got.len() >= want.len(), "{case}: got {} values, want {}", got.len(), want.len());
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = tolerance::MODEL_OPS.bound(scale[i]);
        assert!((g - w).abs() <= tol, "{case}: index {i}: gpu {g} vs reference {w} (tolerance {tol})");
    }
}

/// GGUF bytes of `values` quantised to `ty` the way ggml's reference
/// quantisers do (round to nearest; Q4_0 scales by the signed extreme).
fn quantize(ty: TensorType, values: &[f32]) -> Vec<u8> {
    let half = |x: f32| f16::from_f32(x).to_le_bytes();
    let mut out = Vec::new();
    match ty {
        TensorType::F32 => values.iter().for_each(|v| out.extend(v.to_le_bytes())),
        TensorType::F16 => values.iter().for_each(|&v| out.extend(half(v))),
        TensorType::Q8_0 => {
            for b in values.chunks_exact(QK) {
                let d = b.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
                let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
                out.extend(half(d));
                out.extend(b.iter().map(|v| (v * inv).round() as i8 as u8));
            }
        }
        TensorType::Q4_0 => {
            for b in values.chunks_exact(QK) {
                let max = b.iter().copied().fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
                let d = max / -8.0;
                let inv = if d != 0.0 { 1.0 / d } else { 0.0 };
                let q = |v: f32| ((v * inv + 8.5) as i32).clamp(0, 15) as u8;
                out.extend(half(d));
                out.extend((0..QK / 2).map(|j| q(b[j]) | (q(b[j + QK / 2]) << 4)));
            }
        }
        TensorType::Q4_1 => {
            for b in values.chunks_exact(QK) {
                let (min, max) = b.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                let d = (max - min) / 15.0;
                let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
                let q = |v: f32| (((v - min) * inv).round() as i32).clamp(0, 15) as u8;
                out.extend(half(d));
                out.extend(half(min));
                out.extend((0..QK / 2).map(|j| q(b[j]) | (q(b[j + QK / 2]) << 4)));
            }
        }
        other => panic!("no test quantiser for {}: use random_blocks", other.name()),
    }
    out
}

/// `blocks` blocks of `ty` with random quants and random finite f16 scales
/// (of a size that keeps values near 1), for the types without a quantiser
/// here. Their values come from `dequantize`, checked against ggml's own
/// implementation in `tests/quant_fixtures.rs`.
fn random_blocks(ty: TensorType, blocks: usize, seed: u64) -> Vec<u8> {
    let (scales_at, d): (&[usize], f32) = match ty {
        TensorType::Q5_0 => (&[0], 0.05),
        TensorType::Q5_1 => (&[0, 2], 0.05),
        TensorType::Q4_K | TensorType::Q5_K => (&[0, 2], 1e-3),
        TensorType::Q6_K => (&[208], 2.5e-4),
        TensorType::Q2_K => (&[80, 82], 0.02),
        TensorType::Q3_K => (&[108], 5e-3),
        other => panic!("{} has a test quantiser", other.name()),
    };
    let size = ty.block_bytes();
    let noise = random(seed, blocks * size);
    let mut out: Vec<u8> = noise.iter().map(|v| ((v + 1.0) * 128.0) as u8).collect();
    for (b, block) in out.chunks_exact_mut(size).enumerate() {
        for (i, &at) in scales_at.iter().enumerate() {
            let sign = if (b + i) % 3 == 0 { -1.0 } else { 1.0 };
            let scale = sign * d * (1.0 + noise[b * size + at].abs());
            block[at..at + 2].copy_from_slice(&f16::from_f32(scale).to_le_bytes());
        }
    }
    out
}

/// A random `[n, k]` matrix of type `ty` on the GPU and its dequantised values.
fn random_matrix(ty: TensorType, k: u32, n: u32, seed: u64) -> (QuantMatrix, Vec<f32>) {
    let bytes = match ty {
        TensorType::F32 | TensorType::F16 | TensorType::Q8_0 | TensorType::Q4_0 | TensorType::Q4_1 => {
            quantize(ty, &random(seed, (k * n) as usize))
        }
        _ => random_blocks(ty, (k * n) as usize / ty.block_len(), seed),
    };
    let info = TensorInfo {
        name: "random".into(),
        dims: vec![k as u64, n as u64],
        ty,
        offset: 0,
        n_elements: (k * n) as u64,
        n_bytes: bytes.len() as u64,
    };
    let w = dequantize(&info, &bytes).unwrap();
    (QuantMatrix::from_bytes(ctx(), "random", ty, k, n, &bytes).unwrap(), w)
}

fn submit(ctx: &GpuContext, record: impl FnOnce(&mut wgpu::CommandEncoder) -> wgqa::Result<()>) {
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    record(&mut enc).unwrap();
    ctx.queue().submit([enc.finish()]);
}

/// The CPU twin of a fused gated unit: `[tokens, 2 f]` to `[tokens, f]`.
type GluTwin = fn(&[f32], usize) -> Vec<f32>;

fn read(buffer: &wgpu::Buffer) -> Vec<f32> {
    pollster::block_on(ctx().read_f32(buffer)).unwrap()
}

/// sum_k |x[t, k] w[n, k]| for every output.
fn matmul_scale(x: &[f32], w: &[f32], k: usize) -> Vec<f32> {
    let ax: Vec<f32> = x.iter().map(|v| v.abs()).collect();
    let aw: Vec<f32> = w.iter().map(|v| v.abs()).collect();
    reference::matmul(&ax, &aw, k, w.len() / k)
}

/// Every token count through both kernels for one random matrix.
fn matmul_case(ty: TensorType, k: u32, n: u32, tokens: &[u32], paths: &[MatmulPath]) {
    let ctx = ctx();
    let (m, w) = random_matrix(ty, k, n, (k * 7919 + n) as u64);
    let max_t = *tokens.iter().max().unwrap();
    let x_all = random(k as u64 + 3, (max_t * k) as usize);
    let x_buf = ctx.upload("x", &x_all);
    let y_buf = ctx.storage_buffer("y", (max_t * n) as u64 * 4);
    let mut batch = Batch::new(ctx, 1).unwrap();
    for &t in tokens {
        let x = &x_all[..(t * k) as usize];
        let want = reference::matmul(x, &w, k as usize, n as usize);
        let scale = matmul_scale(x, &w, k as usize);
        batch.set(t).unwrap();
        for &path in paths {
            let opts = MatmulOptions { path, ..Default::default() };
            submit(ctx, |enc| m.matmul_with(enc, &batch, &x_buf, &y_buf, &opts));
            let case = format!("{} K={k} N={n} tokens={t} {path:?}", ty.name());
            check(&case, &read(&y_buf), &want, &scale);
        }
    }
}

/// Row lengths for `ty`: K-quant rows are whole super-blocks of 256.
fn widths(ty: TensorType) -> &'static [u32] {
    if ty.block_len() == QK_K {
        &[256, 768]
    } else {
        &[32, 64, 576, 1536]
    }
}

fn matmul_sweep(ty: TensorType) {
    for &k in widths(ty) {
        for n in [1, 3, 64, 576] {
            matmul_case(ty, k, n, &[1, 2, 7, 33, 128], &[MatmulPath::Matvec, MatmulPath::Tiled]);
        }
    }
}

#[test]
fn matmul_f32() {
    matmul_sweep(TensorType::F32);
}

#[test]
fn matmul_f16() {
    matmul_sweep(TensorType::F16);
}

#[test]
fn matmul_q8_0() {
    matmul_sweep(TensorType::Q8_0);
}

#[test]
fn matmul_q4_0() {
    matmul_sweep(TensorType::Q4_0);
}

#[test]
fn matmul_q4_1() {
    matmul_sweep(TensorType::Q4_1);
}

#[test]
fn matmul_q5_0() {
    matmul_sweep(TensorType::Q5_0);
}

#[test]
fn matmul_q5_1() {
    matmul_sweep(TensorType::Q5_1);
}

#[test]
fn matmul_q4_k() {
    matmul_sweep(TensorType::Q4_K);
}

#[test]
fn matmul_q5_k() {
    matmul_sweep(TensorType::Q5_K);
}

#[test]
fn matmul_q6_k() {
    matmul_sweep(TensorType::Q6_K);
}

#[test]
fn matmul_q2_k() {
    matmul_sweep(TensorType::Q2_K);
}

#[test]
fn matmul_q3_k() {
    matmul_sweep(TensorType::Q3_K);
}

#[test]
fn matvec_over_a_vocabulary_sized_matrix() {
    // SmolLM2's output head: 49152 rows of 576, more rows than one dispatch axis.
    matmul_case(TensorType::Q4_1, 576, 49152, &[1], &[MatmulPath::Auto]);
}

#[test]
fn q_k_v_share_one_output_buffer() {
    let ctx = ctx();
    let (k, widths, tokens) = (64u32, [96u32, 32, 32], 5u32);
    let stride = widths.iter().sum::<u32>() + 3; // a gap the kernels must not touch
    let x = random(11, (tokens * k) as usize);
    let x_buf = ctx.upload("x", &x);
    let y_buf = ctx.upload("qkv", &vec![7.0f32; (tokens * stride) as usize]);
    let batch = Batch::new(ctx, tokens).unwrap();
    let mut wants = Vec::new();
    let mut offset = 0;
    for (i, &n) in widths.iter().enumerate() {
        let (m, w) = random_matrix(TensorType::Q4_1, k, n, 20 + i as u64);
        let path = if i == 1 { MatmulPath::Tiled } else { MatmulPath::Matvec };
        let opts = MatmulOptions { path, stride: Some(stride), offset };
        submit(ctx, |enc| m.matmul_with(enc, &batch, &x_buf, &y_buf, &opts));
        wants.push((offset, n, reference::matmul(&x, &w, k as usize, n as usize), matmul_scale(&x, &w, 64)));
        offset += n;
    }
    let got = read(&y_buf);
    for t in 0..tokens as usize {
        let row = &got[t * stride as usize..(t + 1) * stride as usize];
        for (offset, n, want, scale) in &wants {
            let (o, n) = (*offset as usize, *n as usize);
            let case = format!("fused QKV token {t} offset {o}");
            check(&case, &row[o..o + n], &want[t * n..(t + 1) * n], &scale[t * n..(t + 1) * n]);
        }
        assert_eq!(&row[offset as usize..], &[7.0; 3], "token {t}: the gap after V was written");
    }
}

/// Rows of `x` scaled so that tokens differ in magnitude.
fn varied_tokens(seed: u64, k: u32, tokens: u32) -> Vec<f32> {
    let x = random(seed, (k * tokens) as usize);
    x.iter().enumerate().map(|(i, v)| v * (1 + 3 * (i / k as usize)) as f32).collect()
}

/// The fused matmuls against their CPU twins (`matmul`, then `add` or
/// `swiglu_halves`), every weight type, both kernels, a few token counts.
#[test]
fn fused_matmuls_match_their_twins() {
    let ctx = ctx();
    let tokens = [1u32, 3, 5, 17];
    let max_t = *tokens.iter().max().unwrap();
    let mut batch = Batch::new(ctx, 1).unwrap();
    for ty in TensorType::ALL {
        let k = widths(ty)[0].max(64);
        let x_all = varied_tokens(100, k, max_t);
        let x_buf = ctx.upload("x", &x_all);
        let (m, w) = random_matrix(ty, k, 2 * 48, 102);
        let n = m.n() as usize;
        for &t in &tokens {
            batch.set(t).unwrap();
            let x = &x_all[..(t * k) as usize];
            let full = reference::matmul(x, &w, k as usize, n);
            let scale = matmul_scale(x, &w, k as usize);
            for path in [MatmulPath::Matvec, MatmulPath::Tiled] {
                let case = |what: &str| format!("{what} {} tokens={t} {path:?}", ty.name());
                // Stored.
                let y = ctx.storage_buffer("y", (t as usize * n * 4) as u64);
                let f = Fusion { path, output: Output::Store };
                submit(ctx, |enc| m.matmul_fused(enc, &batch, &x_buf, &y, &f));
                check(&case("matmul"), &read(&y), &full, &scale);

                // Residual add: y += x W^T.
                let base = random(103, t as usize * n);
                let y = ctx.upload("residual", &base);
                let f = Fusion { path, output: Output::Add };
                submit(ctx, |enc| m.matmul_fused(enc, &batch, &x_buf, &y, &f));
                let want = reference::add(&base, &full);
                let add_scale: Vec<f32> = scale.iter().zip(&base).map(|(s, b)| s + b.abs()).collect();
                check(&case("matmul + residual add"), &read(&y), &want, &add_scale);

                // SwiGLU and GeGLU of the two halves.
                // act(g) u moves by at most about |u| dg + |g| du for small
                // errors (|silu'| and |gelu'| stay below 1.2).
                let glu_scale: Vec<f32> = (0..t as usize)
                    .flat_map(|tok| {
                        let (row, sc) = (&full[tok * n..(tok + 1) * n], &scale[tok * n..(tok + 1) * n]);
                        (0..n / 2).map(move |j| {
                            2.0 * (row[j].abs() * sc[j + n / 2] + row[j + n / 2].abs() * sc[j])
                                + sc[j]
                                + sc[j + n / 2]
                        })
                    })
                    .collect();
                let glus: [(Output, GluTwin, &str); 2] = [
                    (Output::Swiglu, reference::swiglu_halves, "swiglu"),
                    (Output::Geglu, reference::geglu_halves, "geglu"),
                ];
                for (output, twin, name) in glus {
                    let y = ctx.storage_buffer("y", (t as usize * n / 2 * 4) as u64);
                    let f = Fusion { path, output };
                    submit(ctx, |enc| m.matmul_fused(enc, &batch, &x_buf, &y, &f));
                    check(&case(&format!("matmul + {name}")), &read(&y), &twin(&full, n / 2), &glu_scale);
                }

                // Q/K/V split over three buffers.
                let at = [40u32, 72];
                let widths = [at[0], at[1] - at[0], n as u32 - at[1]];
                let bufs: Vec<_> =
                    widths.iter().map(|&w| ctx.storage_buffer("part", (t * w * 4) as u64)).collect();
                let f = Fusion { path, output: Output::Split { at, rest: [&bufs[1], &bufs[2]] } };
                submit(ctx, |enc| m.matmul_fused(enc, &batch, &x_buf, &bufs[0], &f));
                let mut start = 0usize;
                for (part, &wd) in bufs.iter().zip(&widths) {
                    let wd = wd as usize;
                    let pick = |v: &[f32]| -> Vec<f32> {
                        v.chunks_exact(n).flat_map(|row| row[start..start + wd].to_vec()).collect()
                    };
                    check(&case(&format!("split rows {start}..")), &read(part), &pick(&full), &pick(&scale));
                    start += wd;
                }
            }
        }
    }
}

#[test]
fn fused_matmul_errors() {
    let ctx = ctx();
    let (m, _) = random_matrix(TensorType::Q4_1, 64, 9, 110);
    let batch = Batch::new(ctx, 2).unwrap();
    let x = ctx.storage_buffer("x", 2 * 64 * 4);
    let y = ctx.storage_buffer("y", 2 * 9 * 4);
    let (k1, k2) = (ctx.storage_buffer("k", 64), ctx.storage_buffer("v", 64));
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let glu = Fusion { output: Output::Swiglu, ..Default::default() };
    let err = m.matmul_fused(&mut enc, &batch, &x, &y, &glu).unwrap_err();
    assert!(err.to_string().contains("even N"), "{err}");
    let split = Fusion { output: Output::Split { at: [5, 3], rest: [&k1, &k2] }, ..Default::default() };
    assert!(matches!(m.matmul_fused(&mut enc, &batch, &x, &y, &split), Err(Error::InvalidOp { .. })));
    let split = Fusion { output: Output::Split { at: [3, 5], rest: [&k1, &k1] }, ..Default::default() };
    assert!(matches!(m.matmul_fused(&mut enc, &batch, &x, &y, &split), Err(Error::Aliased { .. })));
    let short = ctx.storage_buffer("short", 8);
    let split = Fusion { output: Output::Split { at: [3, 5], rest: [&short, &k2] }, ..Default::default() };
    let err = m.matmul_fused(&mut enc, &batch, &x, &y, &split).unwrap_err();
    assert!(matches!(err, Error::WrongLength { what: "matmul K output", .. }), "{err}");
    ctx.queue().submit([enc.finish()]);
    ctx.take_error().unwrap();
}

/// The GPU argmax against the CPU's: ties go to the lowest id, -inf is never
/// chosen unless nothing else is, and whatever the CPU refuses (NaN, +inf,
/// all -inf) reads as ARGMAX_NONE.
#[test]
fn gpu_argmax_matches_the_cpu() {
    let ctx = ctx();
    let gpu = |logits: &[f32]| -> u32 {
        let buf = ctx.upload("logits", logits);
        let out = ctx.storage_buffer("token", 4);
        submit(ctx, |enc| ops::argmax(ctx, enc, &buf, logits.len() as u32, &out));
        pollster::block_on(ctx.read::<u32>(&out)).unwrap()[0]
    };
    let mut cases: Vec<Vec<f32>> = vec![
        random(120, 49152),
        random(121, 1),
        random(122, 300),
        vec![2.0, 5.0, 5.0, 1.0, 5.0],
        vec![f32::NEG_INFINITY, -1e30, f32::NEG_INFINITY],
        vec![-0.0, 0.0],
    ];
    // Equal maxima far apart, one in each thread's stride.
    let mut ties = vec![0.0f32; 1000];
    ties[999] = 3.0;
    ties[257] = 3.0;
    cases.push(ties);
    for (i, logits) in cases.iter().enumerate() {
        assert_eq!(gpu(logits), argmax(logits).unwrap(), "case {i}");
    }
    for bad in [
        vec![1.0, f32::NAN, 2.0],
        vec![1.0, f32::INFINITY],
        vec![f32::NEG_INFINITY; 600],
        vec![f32::from_bits(0xffc0_0001), 0.0],
    ] {
        assert!(argmax(&bad).is_err());
        assert_eq!(gpu(&bad), ARGMAX_NONE, "{bad:?}");
    }
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let buf = ctx.storage_buffer("logits", 16);
    assert!(matches!(ops::argmax(ctx, &mut enc, &buf, 0, &buf), Err(Error::InvalidOp { .. })));
    assert!(matches!(ops::argmax(ctx, &mut enc, &buf, 8, &buf), Err(Error::WrongLength { .. })));
    assert!(matches!(ops::argmax(ctx, &mut enc, &buf, 4, &buf), Err(Error::Aliased { .. })));
}

#[test]
fn embedding_lookup_for_every_type() {
    let ctx = ctx();
    let n = 100u32;
    let ids = [0u32, 99, 5, 5, 42, 1000, 7];
    let ids_buf = ctx.upload("ids", &ids);
    let batch = Batch::new(ctx, ids.len() as u32).unwrap();
    for ty in TensorType::ALL {
        let k = widths(ty)[0].max(64);
        let out = ctx.storage_buffer("out", (ids.len() as u32 * k) as u64 * 4);
        let (m, table) = random_matrix(ty, k, n, 30);
        submit(ctx, |enc| m.embed(enc, &batch, &ids_buf, &out));
        // An id past the table reads as a zero row.
        let rows: Vec<u32> = ids.iter().map(|&id| id.min(n)).collect();
        let padded = [table, vec![0.0; k as usize]].concat();
        let want = reference::embed(&padded, k as usize, &rows);
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        check(&format!("embed {}", ty.name()), &read(&out), &want, &scale);
    }
}

#[test]
fn rms_norm_matches_reference() {
    let ctx = ctx();
    for (width, tokens) in [(576u32, 1u32), (576, 7), (64, 33), (1536, 2)] {
        let w = random(40 + width as u64, width as usize);
        // Scale inputs so tokens differ in magnitude.
        let x: Vec<f32> = random(41, (width * tokens) as usize)
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1 + i / width as usize) as f32)
            .collect();
        let norm = RmsNorm::new(ctx, &w, 1e-5).unwrap();
        let (x_buf, y_buf) = (ctx.upload("x", &x), ctx.storage_buffer("y", x.len() as u64 * 4));
        let batch = Batch::new(ctx, tokens).unwrap();
        submit(ctx, |enc| norm.encode(enc, &batch, &x_buf, &y_buf));
        let want = reference::rms_norm(&x, &w, 1e-5);
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        check(&format!("rms_norm width={width} tokens={tokens}"), &read(&y_buf), &want, &scale);

        // Added into a residual: y += rms_norm(x).
        let base = random(42, x.len());
        let y_buf = ctx.upload("residual", &base);
        submit(ctx, |enc| norm.encode_add(enc, &batch, &x_buf, &y_buf));
        let want_add = reference::add(&base, &want);
        let scale: Vec<f32> = want.iter().zip(&base).map(|(v, b)| v.abs() + b.abs()).collect();
        check(&format!("rms_norm add width={width} tokens={tokens}"), &read(&y_buf), &want_add, &scale);
    }
}

#[test]
fn head_norm_matches_reference() {
    let ctx = ctx();
    // Gemma 3's Q (4 heads) and K (1 head) of head_dim 256, and small heads.
    for (head_dim, heads, tokens) in [(256u32, 4u32, 3u32), (256, 1, 1), (8, 5, 7)] {
        let w = random(43 + head_dim as u64, head_dim as usize);
        let x: Vec<f32> = random(44, (head_dim * heads * tokens) as usize)
            .iter()
            .enumerate()
            .map(|(i, v)| v * (1 + i / head_dim as usize) as f32)
            .collect();
        let norm = HeadNorm::new(ctx, &w, 1e-6).unwrap();
        let x_buf = ctx.upload("x", &x);
        let batch = Batch::new(ctx, tokens).unwrap();
        submit(ctx, |enc| norm.encode(enc, &batch, &x_buf, heads));
        // The per-token twin with a head-wide weight normalises each head.
        let want = reference::rms_norm(&x, &w, 1e-6);
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        check(&format!("head_norm {head_dim}x{heads} tokens={tokens}"), &read(&x_buf), &want, &scale);
    }
    let err = HeadNorm::new(ctx, &[1.0; 6], 1e-6).err().expect("6 is no multiple of 4").to_string();
    assert!(err.contains("head_dim 6"), "{err}");
}

/// A context whose storage bindings (and buffers) hold at most `bytes`.
fn small_binding_ctx(bytes: u32) -> GpuContext {
    let limits = wgpu::Limits {
        max_storage_buffer_binding_size: bytes as u64,
        max_buffer_size: bytes as u64,
        ..wgpu::Limits::default()
    };
    let opts = wgqa::ContextOptions { limits: Some(limits), ..Default::default() };
    pollster::block_on(GpuContext::with_options(opts)).expect("a GPU adapter (lavapipe on CI)")
}

#[test]
fn tables_split_by_rows_under_small_binding_limits() {
    // 300 rows of 64 f32 (75 KiB) under 16 KiB bindings: 64 rows a chunk,
    // the last of 44.
    let small = small_binding_ctx(16 << 10);
    let (k, n) = (64u32, 300u32);
    let table: Vec<f32> = random(70, (k * n) as usize);
    let bytes: Vec<u8> = table.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = [wgqa_testkit::gguf_writer::tensor("table", &[k as u64, n as u64], 0, bytes)];
    let gguf = Gguf::from_vec(wgqa_testkit::gguf_writer::build(3, 32, &[], &tensors).buf).unwrap();
    let m = ChunkedMatrix::from_gguf(&small, &gguf, "table").unwrap();
    assert_eq!((m.chunk_count(), m.n(), m.k()), (5, n, k));
    assert_eq!(ChunkedMatrix::from_gguf(ctx(), &gguf, "table").unwrap().chunk_count(), 1);

    // Lookup: each chunk writes its own ids; past the table is a zero row.
    let ids = [0u32, 63, 64, 299, 128, 5000, 200];
    let read_small = |b: &wgpu::Buffer| pollster::block_on(small.read_f32(b)).unwrap();
    let ids_buf = small.upload("ids", &ids);
    let batch = Batch::new(&small, ids.len() as u32).unwrap();
    let out = small.storage_buffer("out", (ids.len() as u32 * k) as u64 * 4);
    let mut enc = small.device().create_command_encoder(&Default::default());
    m.embed(&mut enc, &batch, &ids_buf, &out, 2.5).unwrap();
    small.queue().submit([enc.finish()]);
    let padded = [table.clone(), vec![0.0; k as usize]].concat();
    let rows: Vec<u32> = ids.iter().map(|&id| id.min(n)).collect();
    let want: Vec<f32> = reference::embed(&padded, k as usize, &rows).iter().map(|v| v * 2.5).collect();
    let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
    check("chunked embed", &read_small(&out), &want, &scale);

    // Matmul: each chunk fills its columns of [tokens, N].
    for tokens in [1u32, 9] {
        let x = random(71, (tokens * k) as usize);
        let x_buf = small.upload("x", &x);
        let batch = Batch::new(&small, tokens).unwrap();
        let y = small.storage_buffer("y", (tokens * n) as u64 * 4);
        let mut enc = small.device().create_command_encoder(&Default::default());
        m.matmul(&mut enc, &batch, &x_buf, &y).unwrap();
        small.queue().submit([enc.finish()]);
        let want = reference::matmul(&x, &table, k as usize, n as usize);
        check(
            &format!("chunked matmul tokens={tokens}"),
            &read_small(&y),
            &want,
            &matmul_scale(&x, &table, k as usize),
        );
    }
    small.take_error().unwrap();

    // A row larger than a binding cannot be split: the error names the limit.
    let tiny = small_binding_ctx(128);
    let err = ChunkedMatrix::from_gguf(&tiny, &gguf, "table").unwrap_err().to_string();
    assert!(err.contains("maxStorageBufferBindingSize >= 256") && err.contains("has 128"), "{err}");
}

#[test]
fn swiglu_geglu_and_residual_add_match_reference() {
    let ctx = ctx();
    for (width, tokens) in [(1536u32, 1u32), (1536, 7), (576, 33), (3, 5)] {
        let len = (width * tokens) as usize;
        // Gates out to +-100 reach exp's overflow on one side.
        let gate: Vec<f32> = random(50, len).iter().map(|v| v * 100.0).collect();
        let up = random(51, len);
        let batch = Batch::new(ctx, tokens).unwrap();
        let (g_buf, u_buf) = (ctx.upload("gate", &gate), ctx.upload("up", &up));
        submit(ctx, |enc| ops::swiglu(enc, &batch, &g_buf, &u_buf, width));
        let want = reference::swiglu(&gate, &up);
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        check(&format!("swiglu width={width} tokens={tokens}"), &read(&g_buf), &want, &scale);

        let g_buf = ctx.upload("gate", &gate);
        submit(ctx, |enc| ops::geglu(enc, &batch, &g_buf, &u_buf, width));
        let want = reference::geglu(&gate, &up);
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        check(&format!("geglu width={width} tokens={tokens}"), &read(&g_buf), &want, &scale);

        let x_buf = ctx.upload("x", &up);
        submit(ctx, |enc| ops::add(enc, &batch, &x_buf, &u_buf, width));
        let want = reference::add(&up, &up);
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        check(&format!("add width={width} tokens={tokens}"), &read(&x_buf), &want, &scale);

        let bias = random(52, width as usize);
        let (x_buf, b_buf) = (ctx.upload("x", &up), ctx.upload("bias", &bias));
        submit(ctx, |enc| ops::add_bias(enc, &batch, &x_buf, &b_buf, width));
        let want = reference::add_bias(&up, &bias);
        let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
        check(&format!("add_bias width={width} tokens={tokens}"), &read(&x_buf), &want, &scale);
    }
}

#[test]
fn quantised_weights_stay_quantised_on_the_gpu() {
    for (ty, k, n) in [
        (TensorType::Q4_1, 576, 576),
        (TensorType::Q8_0, 576, 49152),
        (TensorType::Q4_0, 64, 3),
        (TensorType::Q5_0, 96, 3),
        (TensorType::Q5_1, 576, 8),
        (TensorType::Q4_K, 512, 8),
        (TensorType::Q5_K, 512, 8),
        (TensorType::Q6_K, 512, 8),
        (TensorType::Q2_K, 512, 8),
        (TensorType::Q3_K, 512, 8),
    ] {
        let file_bytes = ty.bytes_for(k as u64 * n as u64).unwrap();
        let (m, _) = random_matrix(ty, k, n, 60);
        // Two f16 scales to a word: an odd block count pads half a word.
        // A K-quant super-block's scales take 5 words: Q4_K and Q5_K unpack
        // their 12 bytes of 6-bit scales and minima into 16, Q6_K pads its d,
        // Q3_K does both (12 bytes of scales into 16, d padded); Q2_K's
        // 2-bit quants and 4-bit scales stay exactly as dense as in the file.
        let super_blocks = (k * n) as u64 / QK_K as u64;
        let slack = match ty {
            TensorType::Q8_0 | TensorType::Q4_0 | TensorType::Q5_0 => 2,
            TensorType::Q4_K | TensorType::Q5_K => 4 * super_blocks,
            TensorType::Q6_K => 2 * super_blocks,
            TensorType::Q3_K => 6 * super_blocks,
            _ => 0,
        };
        assert!(m.gpu_bytes() >= file_bytes && m.gpu_bytes() <= file_bytes + slack, "{} {k}x{n}", ty.name());
    }
}

#[test]
fn bad_input_is_an_error() {
    let ctx = ctx();
    let invalid = |r: wgqa::Result<QuantMatrix>| matches!(r, Err(Error::InvalidMatrix { .. }));
    assert!(invalid(QuantMatrix::from_bytes(ctx, "w", TensorType::F32, 48, 1, &[0; 192])));
    assert!(invalid(QuantMatrix::from_bytes(ctx, "w", TensorType::Q4_1, 32, 0, &[])));
    let short = QuantMatrix::from_bytes(ctx, "w", TensorType::Q8_0, 32, 2, &[0; 67]);
    assert!(matches!(short, Err(Error::WrongLength { expected: 68, got: 67, .. })), "{short:?}");
    assert!(matches!(Batch::new(ctx, 0), Err(Error::InvalidOp { .. })));

    let (m, _) = random_matrix(TensorType::Q4_0, 64, 8, 70);
    let batch = Batch::new(ctx, 3).unwrap();
    let x = ctx.storage_buffer("x", 3 * 64 * 4);
    let y = ctx.storage_buffer("y", 3 * 8 * 4);
    let small = ctx.storage_buffer("small", 3 * 8 * 4 - 4);
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let err = m.matmul(&mut enc, &batch, &x, &small).unwrap_err();
    assert!(matches!(err, Error::WrongLength { what: "matmul output", expected: 96, .. }), "{err}");
    let err = m.matmul(&mut enc, &batch, &y, &y).unwrap_err();
    assert!(matches!(err, Error::WrongLength { what: "matmul input", .. }), "{err}");
    let err = m.matmul(&mut enc, &batch, &x, &x).unwrap_err();
    assert!(matches!(err, Error::Aliased { .. }), "{err}");
    let opts = MatmulOptions { stride: Some(10), offset: 3, ..Default::default() };
    let err = m.matmul_with(&mut enc, &batch, &x, &y, &opts).unwrap_err();
    assert!(err.to_string().contains("exceeds the output stride 10"), "{err}");
    let err = m.embed(&mut enc, &batch, &small, &y).unwrap_err();
    assert!(matches!(err, Error::WrongLength { what: "embedding output", .. }), "{err}");

    assert!(matches!(RmsNorm::new(ctx, &[1.0; 6], 1e-5), Err(Error::InvalidOp { op: "rms_norm", .. })));
    assert!(matches!(RmsNorm::new(ctx, &[1.0; 8], f32::NAN), Err(Error::InvalidOp { op: "rms_norm", .. })));
    let err = ops::swiglu(&mut enc, &batch, &y, &x, 64).unwrap_err();
    assert!(matches!(err, Error::WrongLength { what: "elementwise in-out buffer", .. }), "{err}");
    let err = ops::add(&mut enc, &batch, &x, &y, 0).unwrap_err();
    assert!(matches!(err, Error::InvalidOp { op: "add", .. }), "{err}");
    // Nothing invalid reached the GPU.
    ctx.queue().submit([enc.finish()]);
    ctx.take_error().unwrap();
}

#[test]
fn real_model_q4_1_projection_and_q8_0_embedding() {
    let Some(path) = default_model_path() else { return };
    let gguf = Gguf::open(&path).expect("the default model opens");
    let ctx = ctx();
    let wq = QuantMatrix::from_gguf(ctx, &gguf, "blk.0.attn_q.weight").unwrap();
    assert_eq!((wq.ty(), wq.k(), wq.n()), (TensorType::Q4_1, 576, 576));
    let w = gguf.dequantize("blk.0.attn_q.weight").unwrap();
    let x = random(80, 576);
    let (x_buf, y_buf) = (ctx.upload("x", &x), ctx.storage_buffer("y", 576 * 4));
    let batch = Batch::new(ctx, 1).unwrap();
    submit(ctx, |enc| wq.matmul(enc, &batch, &x_buf, &y_buf));
    check(
        "blk.0.attn_q.weight matvec",
        &read(&y_buf),
        &reference::matmul(&x, &w, 576, 576),
        &matmul_scale(&x, &w, 576),
    );

    let embd = QuantMatrix::from_gguf(ctx, &gguf, "token_embd.weight").unwrap();
    assert_eq!((embd.ty(), embd.k(), embd.n()), (TensorType::Q8_0, 576, 49152));
    let table = gguf.dequantize("token_embd.weight").unwrap();
    let ids = [1u32, 0, 49151, 12345, 504];
    let mut batch = batch;
    batch.set(ids.len() as u32).unwrap();
    let (ids_buf, out) = (ctx.upload("ids", &ids), ctx.storage_buffer("out", ids.len() as u64 * 576 * 4));
    submit(ctx, |enc| embd.embed(enc, &batch, &ids_buf, &out));
    let want = reference::embed(&table, 576, &ids);
    let scale: Vec<f32> = want.iter().map(|v| v.abs()).collect();
    check("token_embd.weight lookup", &read(&out), &want, &scale);

    assert!(RmsNorm::from_gguf(ctx, &gguf, "blk.0.attn_norm.weight", 1e-5).is_ok());
    assert!(matches!(
        RmsNorm::from_gguf(ctx, &gguf, "blk.0.attn_q.weight", 1e-5),
        Err(Error::InvalidMatrix { .. })
    ));
}
