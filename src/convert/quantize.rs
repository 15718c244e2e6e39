//! CPU quantisers for the tensor types `wgqa convert` writes: the inverse of
//! [`crate::model::dequantize`] for F32, F16, Q8_0, Q4_0 and Q4_1 (same
//! ggml block layouts, see `model/gguf_types.rs`).

use half::f16;

use crate::error::{Error, Result};
use crate::model::{TensorType, QK};

/// Whether [`quantize`] can write `ty`.
pub fn can_write(ty: TensorType) -> bool {
    matches!(ty, TensorType::F32 | TensorType::F16 | TensorType::Q8_0 | TensorType::Q4_0 | TensorType::Q4_1)
}

/// Encode `values` (dimension 0 fastest) as `ty`. The length must be a whole
/// number of blocks of `ty`.
pub fn quantize(ty: TensorType, values: &[f32]) -> Result<Vec<u8>> {
    let n = values.len() as u64;
    let bytes = ty.bytes_for(n).ok_or_else(|| Error::ConvertOption {
        option: "--kv-type",
        problem: format!(
            "{} cannot hold {n} values: not a whole number of {}-element blocks",
            ty.name(),
            ty.block_len()
        ),
    })?;
    let mut out = Vec::with_capacity(bytes as usize);
    match ty {
        TensorType::F32 => values.iter().for_each(|v| out.extend(v.to_le_bytes())),
        TensorType::F16 => values.iter().for_each(|&v| out.extend(f16_le(v))),
        TensorType::Q8_0 => values.chunks_exact(QK).for_each(|b| q8_0(b, &mut out)),
        TensorType::Q4_0 => values.chunks_exact(QK).for_each(|b| q4_0(b, &mut out)),
        TensorType::Q4_1 => values.chunks_exact(QK).for_each(|b| q4_1(b, &mut out)),
        other => {
            return Err(Error::ConvertOption {
                option: "--kv-type",
                problem: format!("{} cannot be written by wgqa (it reads it only)", other.name()),
            })
        }
    }
    Ok(out)
}

fn f16_le(v: f32) -> [u8; 2] {
    f16::from_f32(v).to_bits().to_le_bytes()
}

/// The f32 a scale or minimum becomes once stored as f16, so that the
/// quants are chosen for the value the reader will actually use.
fn as_stored(v: f32) -> f32 {
    f16::from_f32(v).to_f32()
}

/// `1 / d`, or 0 for an all-zero block (every quant is then 0 or the offset).
fn inverse(d: f32) -> f32 {
    if d == 0.0 {
        0.0
    } else {
        1.0 / d
    }
}

/// Q8_0: d = max |x| / 127, q = round(x / d).
fn q8_0(block: &[f32], out: &mut Vec<u8>) {
    let amax = block.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = as_stored(amax / 127.0);
    let id = inverse(d);
    out.extend(f16_le(d));
    out.extend(block.iter().map(|&x| (x * id).round().clamp(-127.0, 127.0) as i8 as u8));
}

/// Q4_0: the value of largest magnitude maps to quant 0 (-8 d), so
/// d = that value / -8; q = round(x / d) + 8 in 0..=15. Byte j holds element
/// j in its low nibble and element j + 16 in its high nibble.
fn q4_0(block: &[f32], out: &mut Vec<u8>) {
    let extreme = block.iter().fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let d = as_stored(extreme / -8.0);
    let id = inverse(d);
    let q = |x: f32| ((x * id).round() + 8.0).clamp(0.0, 15.0) as u8;
    out.extend(f16_le(d));
    out.extend((0..QK / 2).map(|j| q(block[j]) | (q(block[j + QK / 2]) << 4)));
}

/// Q4_1: m = min, d = (max - m) / 15, q = round((x - m) / d) in 0..=15.
fn q4_1(block: &[f32], out: &mut Vec<u8>) {
    let min = block.iter().copied().fold(f32::INFINITY, f32::min);
    let max = block.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let m = as_stored(min);
    let d = as_stored((max - m) / 15.0);
    let id = inverse(d);
    let q = |x: f32| ((x - m) * id).round().clamp(0.0, 15.0) as u8;
    out.extend(f16_le(d));
    out.extend(f16_le(m));
    out.extend((0..QK / 2).map(|j| q(block[j]) | (q(block[j + QK / 2]) << 4)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TensorInfo;

    fn dequantize(ty: TensorType, n: u64, bytes: &[u8]) -> Result<Vec<f32>> {
        let n_bytes = bytes.len() as u64;
        let info = TensorInfo { name: "t".into(), dims: vec![n], ty, offset: 0, n_elements: n, n_bytes };
        crate::model::dequantize(&info, bytes)
    }

    /// Values spread over a few orders of magnitude, both signs, with zeros.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|i| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                let scale = [1e-3, 0.05, 1.0, 30.0][(i / QK) % 4];
                if i % 11 == 0 {
                    0.0
                } else {
                    u * scale
                }
            })
            .collect()
    }

    fn round_trip(ty: TensorType, x: &[f32]) -> Vec<f32> {
        let bytes = quantize(ty, x).unwrap();
        assert_eq!(bytes.len() as u64, ty.bytes_for(x.len() as u64).unwrap(), "{ty:?} size");
        dequantize(ty, x.len() as u64, &bytes).unwrap()
    }

    /// Each block's error is within `steps_off` quant steps (plus f16
    /// rounding of the scale): half a step, except Q4_0, whose 16 levels run
    /// from -8 d to +7 d, so a value as large as the extreme but of the
    /// other sign clamps a whole step short.
    fn check_blocks(ty: TensorType, steps: f32, x: &[f32]) {
        let steps_off = if ty == TensorType::Q4_0 { 1.0 } else { 0.5 };
        let y = round_trip(ty, x);
        for (b, (xs, ys)) in x.chunks(QK).zip(y.chunks(QK)).enumerate() {
            let (lo, hi) = xs.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            let range = match ty {
                TensorType::Q4_1 => hi - lo,
                _ => lo.abs().max(hi.abs()),
            };
            // f16 rounds the scale by 2^-11 relative, or by 2^-25 absolute once it
            // is subnormal; the largest quant multiplies that error.
            let tol = range / steps * steps_off + range * 2e-3 + steps * 2f32.powi(-24);
            for (i, (&a, &r)) in xs.iter().zip(ys).enumerate() {
                assert!((a - r).abs() <= tol, "{ty:?} block {b} element {i}: {a} became {r} (tol {tol})");
            }
        }
    }

    #[test]
    fn f32_round_trips_exactly_and_f16_to_half_precision() {
        let x = values(96, 1);
        assert_eq!(round_trip(TensorType::F32, &x), x);
        for (a, r) in x.iter().zip(round_trip(TensorType::F16, &x)) {
            assert!((a - r).abs() <= a.abs() * 1e-3 + 1e-7, "{a} became {r}");
        }
    }

    #[test]
    fn block_formats_round_trip_within_half_a_step() {
        for seed in 0..8 {
            let x = values(8 * QK, seed);
            check_blocks(TensorType::Q8_0, 127.0, &x);
            check_blocks(TensorType::Q4_0, 8.0, &x);
            check_blocks(TensorType::Q4_1, 15.0, &x);
        }
    }

    #[test]
    fn quantising_a_dequantised_tensor_gives_its_bytes_back() {
        // Re-encoding what a reader decodes is what convert does to K/V rows
        // it only copies: it must not drift.
        let x = values(4 * QK, 9);
        for ty in [TensorType::Q8_0, TensorType::Q4_1, TensorType::F16] {
            let once = quantize(ty, &x).unwrap();
            let again = quantize(ty, &dequantize(ty, x.len() as u64, &once).unwrap()).unwrap();
            assert_eq!(once, again, "{ty:?}");
        }
    }

    #[test]
    fn zero_and_constant_blocks_are_exact() {
        for ty in TensorType::ALL.into_iter().filter(|&t| can_write(t)) {
            assert_eq!(round_trip(ty, &[0.0; QK]), [0.0; QK], "{ty:?}");
        }
        assert!(quantize(TensorType::Q4_K, &[0.0; 256]).is_err());
        assert_eq!(round_trip(TensorType::Q4_1, &[0.5; QK]), [0.5; QK]);
    }

    #[test]
    fn partial_block_is_an_error() {
        assert!(quantize(TensorType::Q4_1, &[0.0; 33]).is_err());
        assert!(quantize(TensorType::F16, &[0.0; 33]).is_ok());
    }
}
