//! Repacks GGUF weight bytes into the two arrays `model/dequant.wgsl` reads.
//!
//! Q8_0's 34-byte and Q4_0's 18-byte blocks are not 4-byte aligned, so WGSL
//! cannot read them in place; splitting every type into scales and quants
//! keeps them quantised (the same bytes, give or take padding) while giving
//! each 32-element block aligned words and one shader layout for all types.
//! The K-quants' super-blocks become eight such blocks, their quants re-laid
//! in the nibble formats' order (Q2_K and Q3_K: in 2-bit fields, as dense as
//! in the file) and their scales kept as packed as in the file.

use crate::model::gguf::kquants::{AffineSuperBlock, Q2SuperBlock, Q3SuperBlock, Q6SuperBlock};
use crate::model::{TensorType, QK, QK_K};
use crate::{Error, Result};

/// A weight matrix split into the words the GPU reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repacked {
    /// Q8_0, Q4_0 and Q5_0: one f16 scale per block, two to a word (block 2i
    /// low). Q4_1 and Q5_1: one word per block, f16 scale low and f16 minimum
    /// high. Q4_K and Q5_K: five words per super-block, f16 d and dmin, then
    /// the eight 6-bit scales and the eight minima, a byte each. Q6_K: five
    /// words per super-block, f16 d, then its sixteen i8 scales. Q2_K: five
    /// words per super-block, f16 d and dmin, then sixteen bytes of 4-bit
    /// scale (low) and minimum (high). Q3_K: as Q6_K, its 6-bit scales
    /// unpacked to i8. F32 and F16: empty.
    pub scales: Vec<u32>,
    /// Each 32-element block's values in whole words: F32 32, F16 16, Q8_0 8
    /// as stored; the nibble formats 4 words of low nibbles (byte i holds
    /// element i low and element i + 16 high), then Q5_0, Q5_1 and Q5_K one
    /// word of fifth bits (bit i: element i), Q6_K two words of 2-bit highs
    /// (elements 0..16, then 16..32). Q2_K and Q3_K have no nibbles: two words
    /// of 2-bit lows (elements 0..16, then 16..32), then Q3_K one word of
    /// third bits (bit i: element i).
    pub quants: Vec<u32>,
}

fn word(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn words(b: &[u8]) -> impl Iterator<Item = u32> + '_ {
    b.chunks_exact(4).map(word)
}

/// Bits `shift..shift + width` of each quant in `q[range]`, packed from bit 0.
fn pack(q: &[u8], range: std::ops::Range<usize>, shift: u32, width: u32) -> u32 {
    let mask = (1u32 << width) - 1;
    range.enumerate().fold(0u32, |w, (k, i)| w | (u32::from(q[i]) >> shift & mask) << (k as u32 * width))
}

/// One 32-element block's quants (`q[i]`, `4 + high` bits each) in the
/// nibble formats' word order.
fn nibble_block(q: &[u8], high: u32, out: &mut Vec<u32>) {
    let bytes: Vec<u8> = (0..QK / 2).map(|i| (q[i] & 0x0f) | (q[i + QK / 2] & 0x0f) << 4).collect();
    out.extend(words(&bytes));
    match high {
        1 => out.push(pack(q, 0..QK, 4, 1)),
        2 => out.extend([pack(q, 0..QK / 2, 4, 2), pack(q, QK / 2..QK, 4, 2)]),
        _ => {}
    }
}

/// One 32-element block of 2-bit quants, with a third bit for Q3_K.
fn crumb_block(q: &[u8], third: bool, out: &mut Vec<u32>) {
    out.extend([pack(q, 0..QK / 2, 0, 2), pack(q, QK / 2..QK, 0, 2)]);
    if third {
        out.push(pack(q, 0..QK, 2, 1));
    }
}

/// Splits `bytes`, a whole number of `ty` blocks (of 32 elements for plain
/// floats), into scales and quants.
pub fn repack(ty: TensorType, bytes: &[u8]) -> Result<Repacked> {
    // Plain floats are read as 32-element blocks too, so the unit is 32 elements.
    let group = ty.block_bytes() * QK.max(ty.block_len()) / ty.block_len();
    if !bytes.len().is_multiple_of(group) {
        return Err(Error::WrongLength {
            what: "weight bytes (whole blocks of 32 elements, 256 for K-quants)",
            expected: bytes.len().next_multiple_of(group) as u64,
            got: bytes.len() as u64,
            unit: "bytes",
        });
    }
    let blocks = bytes.chunks_exact(group);
    let f16_pairs = |halves: Vec<u16>| -> Vec<u32> {
        halves.chunks(2).map(|p| p[0] as u32 | (*p.get(1).unwrap_or(&0) as u32) << 16).collect()
    };
    let first_half = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let mut quants = Vec::new();
    let scales = match ty {
        TensorType::F32 | TensorType::F16 => {
            quants.extend(words(bytes));
            Vec::new()
        }
        TensorType::Q8_0 | TensorType::Q4_0 => {
            blocks.clone().for_each(|b| quants.extend(words(&b[2..])));
            f16_pairs(blocks.map(first_half).collect())
        }
        TensorType::Q4_1 => {
            blocks.clone().for_each(|b| quants.extend(words(&b[4..])));
            blocks.map(word).collect()
        }
        // Block: scale [, minimum], fifth bits, nibbles; the GPU wants the
        // nibbles first.
        TensorType::Q5_0 => {
            blocks.clone().for_each(|b| quants.extend(words(&b[6..]).chain([word(&b[2..6])])));
            f16_pairs(blocks.map(first_half).collect())
        }
        TensorType::Q5_1 => {
            blocks.clone().for_each(|b| quants.extend(words(&b[8..]).chain([word(&b[4..8])])));
            blocks.map(word).collect()
        }
        TensorType::Q4_K | TensorType::Q5_K => {
            let high = ty == TensorType::Q5_K;
            let mut scales = Vec::new();
            for b in blocks {
                let sb = AffineSuperBlock::new(b, high);
                let (sc, m): (Vec<u8>, Vec<u8>) = (0..QK_K / QK).map(|j| sb.scale_min(j)).unzip();
                scales.push(word(&b[0..4]));
                scales.extend(words(&sc).chain(words(&m)));
                let q: Vec<u8> = (0..QK_K).map(|e| sb.quant(e)).collect();
                q.chunks_exact(QK).for_each(|q| nibble_block(q, high as u32, &mut quants));
            }
            scales
        }
        TensorType::Q2_K => {
            let mut scales = Vec::new();
            for b in blocks {
                let sb = Q2SuperBlock::new(b);
                scales.push(word(&b[80..84]));
                scales.extend(words(&b[..16]));
                let q: Vec<u8> = (0..QK_K).map(|e| sb.quant(e)).collect();
                q.chunks_exact(QK).for_each(|q| crumb_block(q, false, &mut quants));
            }
            scales
        }
        TensorType::Q3_K => {
            let mut scales = Vec::new();
            for b in blocks {
                let sb = Q3SuperBlock::new(b);
                scales.push(u32::from(first_half(&b[108..])));
                let sc: Vec<u8> = (0..QK_K / 16).map(|i| sb.scale(i) as u8).collect();
                scales.extend(words(&sc));
                let q: Vec<u8> = (0..QK_K).map(|e| sb.quant(e)).collect();
                q.chunks_exact(QK).for_each(|q| crumb_block(q, true, &mut quants));
            }
            scales
        }
        TensorType::Q6_K => {
            let mut scales = Vec::new();
            for b in blocks {
                let sb = Q6SuperBlock::new(b);
                scales.push(u32::from(first_half(&b[208..])));
                scales.extend(words(&b[192..208]));
                let q: Vec<u8> = (0..QK_K).map(|e| sb.quant(e)).collect();
                q.chunks_exact(QK).for_each(|q| nibble_block(q, 2, &mut quants));
            }
            scales
        }
    };
    Ok(Repacked { scales, quants })
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
