//! Repacks GGUF weight bytes into the two arrays `model/dequant.wgsl` reads.
//!
//! Q8_0's 34-byte and Q4_0's 18-byte blocks are not 4-byte aligned, so WGSL
//! cannot read them in place; splitting every type into scales and quants
//! keeps them quantised (the same bytes, give or take padding) while giving
//! each block aligned words and one shader layout for all types.

use crate::model::TensorType;
use crate::{Error, Result};

/// A weight matrix split into the words the GPU reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repacked {
    /// Q8_0 and Q4_0: one f16 scale per block, two to a word (block 2i low).
    /// Q4_1: one word per block, f16 scale low and f16 minimum high.
    /// F32 and F16: empty.
    pub scales: Vec<u32>,
    /// Each block's values as stored in the file, padded to whole words per
    /// block: F32 32, F16 16, Q8_0 8, Q4_0 and Q4_1 4 words.
    pub quants: Vec<u32>,
}

fn word(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Splits `bytes`, a whole number of `ty` blocks of 32 elements, into scales
/// and quants.
pub fn repack(ty: TensorType, bytes: &[u8]) -> Result<Repacked> {
    // Plain floats are read as 32-element blocks too, so the unit is 32 elements.
    let group = ty.block_bytes() * 32 / ty.block_len();
    if !bytes.len().is_multiple_of(group) {
        return Err(Error::WrongLength {
            what: "weight bytes (whole blocks of 32 elements)",
            expected: bytes.len().next_multiple_of(group) as u64,
            got: bytes.len() as u64,
            unit: "bytes",
        });
    }
    let blocks = bytes.chunks_exact(group);
    let quant_words = |b: &[u8]| b.chunks_exact(4).map(word).collect::<Vec<_>>();
    Ok(match ty {
        TensorType::F32 | TensorType::F16 => Repacked { scales: Vec::new(), quants: quant_words(bytes) },
        TensorType::Q8_0 | TensorType::Q4_0 => {
            let halves: Vec<u16> = blocks.clone().map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
            let scales =
                halves.chunks(2).map(|p| p[0] as u32 | (*p.get(1).unwrap_or(&0) as u32) << 16).collect();
            Repacked { scales, quants: blocks.flat_map(|b| quant_words(&b[2..])).collect() }
        }
        TensorType::Q4_1 => Repacked {
            scales: blocks.clone().map(word).collect(),
            quants: blocks.flat_map(|b| quant_words(&b[4..])).collect(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q8_0_scales_pair_up_and_quants_drop_them() {
        // Three blocks: scale bytes (i, 0x3c), quants all equal to i.
        let mut bytes = Vec::new();
        for i in 0..3u8 {
            bytes.extend([i, 0x3c]);
            bytes.extend([i; 32]);
        }
        let r = repack(TensorType::Q8_0, &bytes).unwrap();
        assert_eq!(r.scales, vec![0x3c01_3c00, 0x0000_3c02]);
        assert_eq!(r.quants.len(), 24);
        assert_eq!(r.quants[8], 0x0101_0101);
    }

    #[test]
    fn q4_1_keeps_scale_and_minimum_in_one_word() {
        let mut bytes = vec![1, 2, 3, 4];
        bytes.extend([0xab; 16]);
        let r = repack(TensorType::Q4_1, &bytes).unwrap();
        assert_eq!(r.scales, vec![0x0403_0201]);
        assert_eq!(r.quants, vec![0xabab_abab; 4]);
    }

    #[test]
    fn partial_blocks_are_an_error() {
        assert!(repack(TensorType::Q4_0, &[0; 17]).is_err());
        assert!(repack(TensorType::F32, &[0; 64]).is_err());
    }
}
