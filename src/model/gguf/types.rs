//! Tensor element types that wgqa reads from GGUF files, their ggml block
//! layouts, and CPU dequantisation.
//!
//! The GPU forward pass keeps quantised weights as they are and dequantises
//! inside its kernels; the CPU code here is the reference those kernels and
//! the CPU forward pass are checked against, so it is written for clarity.

use half::f16;

use super::kquants;
use crate::error::{Error, Result};

/// Elements per quantisation block of the block formats (Q8_0, Q4_0, Q4_1,
/// Q5_0, Q5_1), and per sub-block of the K-quants.
pub const QK: usize = 32;
/// Elements per super-block of the K-quants (Q2_K..Q6_K).
pub const QK_K: usize = 256;

/// A tensor type wgqa can read. Discriminants are ggml's type numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[allow(non_camel_case_types)] // ggml's names: Q4_K, not Q4K
pub enum TensorType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q5_0 = 6,
    Q5_1 = 7,
    Q8_0 = 8,
    Q2_K = 10,
    Q3_K = 11,
    Q4_K = 12,
    Q5_K = 13,
    Q6_K = 14,
}

impl TensorType {
    /// Every supported type, for error messages and tests.
    pub const ALL: [TensorType; 12] = [
        TensorType::F32,
        TensorType::F16,
        TensorType::Q8_0,
        TensorType::Q4_0,
        TensorType::Q4_1,
        TensorType::Q5_0,
        TensorType::Q5_1,
        TensorType::Q2_K,
        TensorType::Q3_K,
        TensorType::Q4_K,
        TensorType::Q5_K,
        TensorType::Q6_K,
    ];

    /// The supported type with this ggml type number, if any.
    pub fn from_ggml(id: u32) -> Option<TensorType> {
        Self::ALL.into_iter().find(|t| t.ggml_id() == id)
    }

    /// ggml's number for this type, as stored in GGUF tensor infos.
    pub fn ggml_id(self) -> u32 {
        self as u32
    }

    /// ggml's name for this type ("Q4_1", ...).
    pub fn name(self) -> &'static str {
        ggml_type_name(self.ggml_id()).unwrap_or("?")
    }

    /// Elements per block: 1 for plain floats, 32 for the block formats and
    /// 256 for the K-quants' super-blocks.
    pub fn block_len(self) -> usize {
        match self {
            TensorType::F32 | TensorType::F16 => 1,
            TensorType::Q8_0 | TensorType::Q4_0 | TensorType::Q4_1 | TensorType::Q5_0 | TensorType::Q5_1 => {
                QK
            }
            TensorType::Q2_K | TensorType::Q3_K | TensorType::Q4_K | TensorType::Q5_K | TensorType::Q6_K => {
                QK_K
            }
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            TensorType::F32 => 4,
            TensorType::F16 => 2,
            TensorType::Q8_0 => 2 + QK,                       // f16 scale, 32 x i8
            TensorType::Q4_0 => 2 + QK / 2,                   // f16 scale, 32 nibbles
            TensorType::Q4_1 => 2 + 2 + QK / 2,               // f16 scale, f16 min, 32 nibbles
            TensorType::Q5_0 => 2 + 4 + QK / 2,               // f16 scale, 32 high bits, 32 nibbles
            TensorType::Q5_1 => 2 + 2 + 4 + QK / 2,           // f16 scale, f16 min, high bits, nibbles
            TensorType::Q2_K => QK_K / 16 + QK_K / 4 + 2 + 2, // 4-bit scales and minima, 2-bit quants, f16 d, dmin
            TensorType::Q3_K => QK_K / 8 + QK_K / 4 + 12 + 2, // third bits, 2-bit lows, 6-bit scales, f16 d
            TensorType::Q4_K => 2 + 2 + 12 + QK_K / 2,        // f16 d, f16 dmin, 6-bit scales, nibbles
            TensorType::Q5_K => 2 + 2 + 12 + QK_K / 8 + QK_K / 2, // Q4_K plus 256 high bits
            TensorType::Q6_K => QK_K / 2 + QK_K / 4 + QK_K / 16 + 2, // low nibbles, 2-bit highs, i8 scales, f16 d
        }
    }

    /// Bytes taken by `n_elements` elements, or `None` when `n_elements` is not
    /// a whole number of blocks or the size overflows.
    pub fn bytes_for(self, n_elements: u64) -> Option<u64> {
        let block_len = self.block_len() as u64;
        if !n_elements.is_multiple_of(block_len) {
            return None;
        }
        (n_elements / block_len).checked_mul(self.block_bytes() as u64)
    }
}

/// ggml's name for a type number, including the types wgqa does not read, so
/// an error can say "Q4_K" rather than only "12".
pub fn ggml_type_name(id: u32) -> Option<&'static str> {
    const NAMES: [&str; 40] = [
        "F32",
        "F16",
        "Q4_0",
        "Q4_1",
        "Q4_2",
        "Q4_3",
        "Q5_0",
        "Q5_1",
        "Q8_0",
        "Q8_1",
        "Q2_K",
        "Q3_K",
        "Q4_K",
        "Q5_K",
        "Q6_K",
        "Q8_K",
        "IQ2_XXS",
        "IQ2_XS",
        "IQ3_XXS",
        "IQ1_S",
        "IQ4_NL",
        "IQ3_S",
        "IQ2_S",
        "IQ4_XS",
        "I8",
        "I16",
        "I32",
        "I64",
        "F64",
        "IQ1_M",
        "BF16",
        "Q4_0_4_4",
        "Q4_0_4_8",
        "Q4_0_8_8",
        "TQ1_0",
        "TQ2_0",
        "IQ4_NL_4_4",
        "IQ4_NL_4_8",
        "IQ4_NL_8_8",
        "MXFP4",
    ];
    NAMES.get(id as usize).copied()
}

/// Dequantise a tensor's raw bytes (as stored in the file) into f32, in the
/// tensor's element order (dimension 0 fastest).
///
/// `bytes` must be exactly the tensor's size; anything else is an error, so a
/// mismatched slice can never be read past or silently half-used.
pub fn dequantize(ty: TensorType, n_elements: u64, bytes: &[u8]) -> Result<Vec<f32>> {
    let expected = ty.bytes_for(n_elements).ok_or_else(|| {
        Error::GgufCorrupt(format!("{n_elements} elements is not a whole number of {} blocks", ty.name()))
    })?;
    if bytes.len() as u64 != expected {
        return Err(Error::WrongLength {
            what: "tensor data",
            expected,
            got: bytes.len() as u64,
            unit: "bytes",
        });
    }
    // The length check above bounds n_elements by the slice length, so this
    // allocation is at most a small multiple of memory the caller already has.
    let mut out = Vec::with_capacity(n_elements as usize);
    let blocks = bytes.chunks_exact(ty.block_bytes());
    match ty {
        TensorType::F32 => out.extend(blocks.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))),
        TensorType::F16 => out.extend(blocks.map(read_f16)),
        TensorType::Q8_0 => blocks.for_each(|b| dequant_q8_0(b, &mut out)),
        TensorType::Q4_0 => blocks.for_each(|b| dequant_q4_0(b, &mut out)),
        TensorType::Q4_1 => blocks.for_each(|b| dequant_q4_1(b, &mut out)),
        TensorType::Q5_0 => blocks.for_each(|b| dequant_q5(b, false, &mut out)),
        TensorType::Q5_1 => blocks.for_each(|b| dequant_q5(b, true, &mut out)),
        TensorType::Q2_K => blocks.for_each(|b| out.extend(kquants::q2_k(b))),
        TensorType::Q3_K => blocks.for_each(|b| out.extend(kquants::q3_k(b))),
        TensorType::Q4_K => blocks.for_each(|b| out.extend(kquants::q4_k(b))),
        TensorType::Q5_K => blocks.for_each(|b| out.extend(kquants::q5_k(b))),
        TensorType::Q6_K => blocks.for_each(|b| out.extend(kquants::q6_k(b))),
    }
    Ok(out)
}

fn read_f16(b: &[u8]) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

/// Q8_0: f16 scale `d`, then 32 signed bytes; value = q * d.
fn dequant_q8_0(block: &[u8], out: &mut Vec<f32>) {
    let d = read_f16(&block[0..2]);
    out.extend(block[2..].iter().map(|&q| f32::from(q as i8) * d));
}

/// Q4_0: f16 scale `d`, then 16 bytes; byte j holds element j in its low
/// nibble and element j + 16 in its high nibble; value = (nibble - 8) * d.
fn dequant_q4_0(block: &[u8], out: &mut Vec<f32>) {
    let d = read_f16(&block[0..2]);
    let qs = &block[2..];
    out.extend(qs.iter().map(|&q| (f32::from(q & 0x0f) - 8.0) * d));
    out.extend(qs.iter().map(|&q| (f32::from(q >> 4) - 8.0) * d));
}

/// Q4_1: f16 scale `d`, f16 minimum `m`, then 16 bytes of nibbles laid out as
/// in Q4_0; value = nibble * d + m.
fn dequant_q4_1(block: &[u8], out: &mut Vec<f32>) {
    let d = read_f16(&block[0..2]);
    let m = read_f16(&block[2..4]);
    let qs = &block[4..];
    out.extend(qs.iter().map(|&q| f32::from(q & 0x0f) * d + m));
    out.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
}

/// Q5_0 and Q5_1: f16 scale `d` (Q5_1: then an f16 minimum `m`), a u32 of
/// high bits (bit j for element j), then nibbles laid out as in Q4_0.
/// Q5_0's value is (q - 16) * d, Q5_1's q * d + m, with q = nibble + 16 * bit.
fn dequant_q5(block: &[u8], with_min: bool, out: &mut Vec<f32>) {
    let d = read_f16(&block[0..2]);
    let (m, rest) = if with_min { (Some(read_f16(&block[2..4])), &block[4..]) } else { (None, &block[2..]) };
    let qh = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let qs = &rest[4..];
    let q = |j: usize| {
        let nibble = if j < 16 { qs[j] & 0x0f } else { qs[j - 16] >> 4 };
        f32::from(nibble | (((qh >> j) & 1) as u8) << 4)
    };
    out.extend((0..QK).map(|j| match m {
        Some(m) => q(j) * d + m,
        None => (q(j) - 16.0) * d,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(x: f32) -> [u8; 2] {
        f16::from_f32(x).to_bits().to_le_bytes()
    }

    #[test]
    fn type_numbers_and_names_match_ggml() {
        let expect = [
            (0, "F32"),
            (1, "F16"),
            (2, "Q4_0"),
            (3, "Q4_1"),
            (6, "Q5_0"),
            (7, "Q5_1"),
            (8, "Q8_0"),
            (10, "Q2_K"),
            (11, "Q3_K"),
            (12, "Q4_K"),
            (13, "Q5_K"),
            (14, "Q6_K"),
        ];
        for (id, name) in expect {
            let ty = TensorType::from_ggml(id).expect("supported");
            assert_eq!((ty.ggml_id(), ty.name()), (id, name));
        }
        assert_eq!(TensorType::from_ggml(15), None);
        assert_eq!(ggml_type_name(15), Some("Q8_K"));
        assert_eq!(ggml_type_name(30), Some("BF16"));
        assert_eq!(ggml_type_name(1000), None);
    }

    #[test]
    fn block_sizes_match_ggml() {
        let sizes: Vec<_> = TensorType::ALL.iter().map(|t| (t.block_len(), t.block_bytes())).collect();
        assert_eq!(
            sizes,
            [
                (1, 4),
                (1, 2),
                (32, 34),
                (32, 18),
                (32, 20),
                (32, 22),
                (32, 24),
                (256, 84),
                (256, 110),
                (256, 144),
                (256, 176),
                (256, 210)
            ]
        );
        assert_eq!(TensorType::Q4_1.bytes_for(64), Some(40));
        assert_eq!(TensorType::Q4_1.bytes_for(33), None);
        assert_eq!(TensorType::F32.bytes_for(u64::MAX), None);
    }

    #[test]
    fn q4_0_low_nibbles_are_the_first_half() {
        // d = 0.5; byte j holds lo = j and hi = 15 - j.
        let mut block = f16_bytes(0.5).to_vec();
        block.extend((0..16u8).map(|j| ((15 - j) << 4) | j));
        let got = dequantize(TensorType::Q4_0, 32, &block).unwrap();
        for j in 0..16 {
            assert_eq!(got[j], (j as f32 - 8.0) * 0.5, "element {j}");
            assert_eq!(got[j + 16], ((15 - j) as f32 - 8.0) * 0.5, "element {}", j + 16);
        }
    }

    #[test]
    fn q4_1_adds_the_minimum() {
        let mut block = f16_bytes(0.25).to_vec();
        block.extend(f16_bytes(-1.0));
        block.extend([0x10u8; 16]); // lo = 0, hi = 1
        let got = dequantize(TensorType::Q4_1, 32, &block).unwrap();
        assert!(got[..16].iter().all(|&v| v == -1.0), "{got:?}");
        assert!(got[16..].iter().all(|&v| v == -0.75), "{got:?}");
    }

    #[test]
    fn q8_0_is_signed() {
        let mut block = f16_bytes(2.0).to_vec();
        block.extend((0..32).map(|j: i32| (j - 16) as i8 as u8));
        let got = dequantize(TensorType::Q8_0, 32, &block).unwrap();
        let want: Vec<f32> = (0..32).map(|j| (j - 16) as f32 * 2.0).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn wrong_byte_count_is_an_error() {
        assert!(dequantize(TensorType::F32, 2, &[0; 7]).is_err());
        assert!(dequantize(TensorType::Q4_1, 32, &[0; 21]).is_err());
        assert!(dequantize(TensorType::Q8_0, 31, &[0; 34]).is_err());
    }
}
