//! wgqa's dequantisation of Q5_0, Q5_1 and Q2_K..Q6_K against ggml's
//! own Python package (`gguf`), which wrote `tests/fixtures/quants/` from
//! random blocks (`scripts/quant-fixtures.py`): the CPU decode must give the
//! same f32 values bit for bit (both compute each value with the same f32
//! operations), and the GPU embedding lookup the same values within rounding.

use wgqa::model::ops::{Batch, QuantMatrix};
use wgqa::model::{dequantize, TensorInfo, TensorType};
use wgqa_testkit::ctx;

const TYPES: [(TensorType, &str); 7] = [
    (TensorType::Q5_0, "q5_0"),
    (TensorType::Q5_1, "q5_1"),
    (TensorType::Q4_K, "q4_k"),
    (TensorType::Q5_K, "q5_k"),
    (TensorType::Q6_K, "q6_k"),
    (TensorType::Q2_K, "q2_k"),
    (TensorType::Q3_K, "q3_k"),
];

fn fixture(name: &str) -> (Vec<u8>, Vec<f32>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/quants/");
    let bytes = std::fs::read(format!("{dir}{name}.bin")).expect("fixture blocks");
    let values = std::fs::read(format!("{dir}{name}.f32")).expect("fixture values");
    (bytes, values.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
}

fn info(ty: TensorType, k: u64, n: u64, bytes: &[u8]) -> TensorInfo {
    TensorInfo {
        name: "fixture".into(),
        dims: vec![k, n],
        ty,
        offset: 0,
        n_elements: k * n,
        n_bytes: bytes.len() as u64,
    }
}

#[test]
fn cpu_dequantisation_matches_ggml_bit_for_bit() {
    for (ty, name) in TYPES {
        let (bytes, want) = fixture(name);
        let got = dequantize(&info(ty, want.len() as u64, 1, &bytes), &bytes).unwrap();
        assert_eq!(got.len(), want.len(), "{name}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.to_bits(), w.to_bits(), "{name} element {i}: wgqa {g}, ggml {w}");
        }
    }
}

#[test]
fn gpu_embedding_rows_match_ggml() {
    let ctx = ctx();
    for (ty, name) in TYPES {
        let (bytes, want) = fixture(name);
        // Two rows for the 32-element formats (96 each), six super-blocks
        // as three rows of 512 for the K-quants.
        let n = if ty.block_len() == 32 { 2 } else { 3 };
        let k = (want.len() / n) as u32;
        let m = QuantMatrix::from_bytes(ctx, name, ty, k, n as u32, &bytes).unwrap();
        let ids: Vec<u32> = (0..n as u32).rev().collect();
        let ids_buf = ctx.upload("ids", &ids);
        let out = ctx.storage_buffer("out", want.len() as u64 * 4);
        let batch = Batch::new(ctx, n as u32).unwrap();
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        m.embed(&mut enc, &batch, &ids_buf, &out).unwrap();
        ctx.queue().submit([enc.finish()]);
        let got = pollster::block_on(ctx.read_f32(&out)).unwrap();
        // A value is q * a + b on the GPU (an FMA or two roundings): a few
        // f32 ulps of the block's largest term.
        let tol = 4.0 * f32::EPSILON * want.iter().fold(1f32, |m, v| m.max(v.abs()));
        for (t, &row) in ids.iter().enumerate() {
            let k = k as usize;
            for i in 0..k {
                let (g, w) = (got[t * k + i], want[row as usize * k + i]);
                assert!((g - w).abs() <= tol, "{name} row {row} element {i}: gpu {g}, ggml {w}");
            }
        }
    }
}
