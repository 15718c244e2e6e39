//! The K-quants' 256-element super-blocks (Q2_K..Q6_K): where each
//! element's quant and its sub-block's scale sit, and CPU dequantisation.
//! `ops/repack.rs` reads the same accessors to lay the blocks out for the GPU,
//! so the bit layout is written down once, here.

use half::f16;

use super::types::{QK, QK_K};

fn read_f16(b: &[u8]) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
}

/// Q4_K and Q5_K: f16 `d`, f16 `dmin`, 12 bytes packing eight 6-bit scales
/// and eight 6-bit minima (one pair per 32-element sub-block), [Q5_K: 32
/// bytes of high bits,] then 128 bytes of nibbles.
pub(crate) struct AffineSuperBlock<'a> {
    pub d: f32,
    pub dmin: f32,
    scales: &'a [u8],
    high: Option<&'a [u8]>,
    qs: &'a [u8],
}

impl<'a> AffineSuperBlock<'a> {
    /// A Q4_K (`with_high` false) or Q5_K block of 144 or 176 bytes.
    pub fn new(block: &'a [u8], with_high: bool) -> Self {
        let (high, qs) = if with_high { (Some(&block[16..48]), &block[48..]) } else { (None, &block[16..]) };
        AffineSuperBlock {
            d: read_f16(&block[0..2]),
            dmin: read_f16(&block[2..4]),
            scales: &block[4..16],
            high,
            qs,
        }
    }

    /// Sub-block `j`'s 6-bit scale and minimum: the first four sit in the
    /// low 6 bits of bytes j and j + 4; the last four take their low 4 bits
    /// from byte j + 4 and their top 2 bits from the spare bits of bytes
    /// j - 4 and j.
    pub fn scale_min(&self, j: usize) -> (u8, u8) {
        let s = self.scales;
        if j < 4 {
            (s[j] & 63, s[j + 4] & 63)
        } else {
            ((s[j + 4] & 0x0f) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
        }
    }

    /// The quant of element `e`: sub-blocks 2c and 2c + 1 share bytes
    /// 32c..32c + 32 of the nibbles (low, high); Q5_K's bit 5 of element `l`
    /// of sub-block `j` is bit j of high byte l.
    pub fn quant(&self, e: usize) -> u8 {
        let (j, l) = (e / QK, e % QK);
        let nibble = (self.qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0f;
        nibble | self.high.map_or(0, |h| ((h[l] >> j) & 1) << 4)
    }

    /// Sub-block `j`'s affine map: value = q * a + b.
    pub fn affine(&self, j: usize) -> (f32, f32) {
        let (sc, m) = self.scale_min(j);
        (self.d * f32::from(sc), -(self.dmin * f32::from(m)))
    }
}

/// Q6_K: 128 bytes of low nibbles, 64 bytes of 2-bit highs, sixteen i8
/// scales (one per 16 elements), then f16 `d`.
pub(crate) struct Q6SuperBlock<'a> {
    pub d: f32,
    ql: &'a [u8],
    qh: &'a [u8],
    scales: &'a [u8],
}

impl<'a> Q6SuperBlock<'a> {
    pub fn new(block: &'a [u8]) -> Self {
        Q6SuperBlock {
            d: read_f16(&block[208..210]),
            ql: &block[..128],
            qh: &block[128..192],
            scales: &block[192..208],
        }
    }

    /// The 6-bit quant of element `e` (its value is (q - 32) * d * scale):
    /// each half of 128 elements is four runs of 32 (g = 0..4); run g takes
    /// the low (g < 2) or high nibble of byte l + 32 (g % 2) of the half's
    /// 64 nibble bytes, and bits 2g..2g+2 of the half's high byte l.
    pub fn quant(&self, e: usize) -> u8 {
        let (half, g, l) = (e / 128, (e % 128) / 32, e % 32);
        let low = (self.ql[64 * half + l + 32 * (g % 2)] >> (4 * (g / 2))) & 0x0f;
        low | ((self.qh[32 * half + l] >> (2 * g)) & 3) << 4
    }

    /// The i8 scale of the 16 elements `16 i..16 i + 16`.
    pub fn scale(&self, i: usize) -> i8 {
        self.scales[i] as i8
    }
}

/// The 2-bit field of element `e` in Q2_K's and Q3_K's 64 bytes: each half
/// of 128 elements is four runs of 32; run j takes bits 2j..2j+2 of the
/// half's 32 bytes, element l of the run byte l.
fn crumb(qs: &[u8], e: usize) -> u8 {
    (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3
}

/// Q2_K: sixteen bytes of 4-bit scale (low) and minimum (high), one pair
/// per 16 elements, 64 bytes of 2-bit quants, f16 `d`, f16 `dmin`.
pub(crate) struct Q2SuperBlock<'a> {
    pub d: f32,
    pub dmin: f32,
    scales: &'a [u8],
    qs: &'a [u8],
}

impl<'a> Q2SuperBlock<'a> {
    pub fn new(block: &'a [u8]) -> Self {
        Q2SuperBlock {
            d: read_f16(&block[80..82]),
            dmin: read_f16(&block[82..84]),
            scales: &block[..16],
            qs: &block[16..80],
        }
    }

    pub fn quant(&self, e: usize) -> u8 {
        crumb(self.qs, e)
    }

    /// The scale and minimum of the 16 elements `16 i..16 i + 16`.
    pub fn scale_min(&self, i: usize) -> (u8, u8) {
        (self.scales[i] & 0x0f, self.scales[i] >> 4)
    }
}

/// Q3_K: 32 bytes of third bits, 64 bytes of 2-bit lows, twelve bytes
/// packing sixteen 6-bit scales (one per 16 elements, stored + 32), f16 `d`.
pub(crate) struct Q3SuperBlock<'a> {
    pub d: f32,
    hmask: &'a [u8],
    qs: &'a [u8],
    scales: &'a [u8],
}

impl<'a> Q3SuperBlock<'a> {
    pub fn new(block: &'a [u8]) -> Self {
        Q3SuperBlock {
            d: read_f16(&block[108..110]),
            hmask: &block[..32],
            qs: &block[32..96],
            scales: &block[96..108],
        }
    }

    /// The 3-bit quant of element `e` (its value is (q - 4) * d * scale):
    /// the third bit of element e is bit e / 32 of mask byte e % 32.
    pub fn quant(&self, e: usize) -> u8 {
        crumb(self.qs, e) | ((self.hmask[e % 32] >> (e / 32)) & 1) << 2
    }

    /// The signed scale of the 16 elements `16 i..16 i + 16`: low 4 bits in
    /// the low (i < 8) or high nibble of byte i % 8, top 2 bits at bit
    /// 2 (i / 4) of byte 8 + i % 4.
    pub fn scale(&self, i: usize) -> i8 {
        let s = self.scales;
        let low = (s[i % 8] >> (4 * (i / 8))) & 0x0f;
        let high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
        (low | high << 4) as i8 - 32
    }
}

pub(crate) fn q2_k(block: &[u8]) -> impl Iterator<Item = f32> + '_ {
    let b = Q2SuperBlock::new(block);
    (0..QK_K).map(move |e| {
        let (sc, m) = b.scale_min(e / 16);
        (b.d * f32::from(sc)) * f32::from(b.quant(e)) - b.dmin * f32::from(m)
    })
}

pub(crate) fn q3_k(block: &[u8]) -> impl Iterator<Item = f32> + '_ {
    let b = Q3SuperBlock::new(block);
    (0..QK_K).map(move |e| (b.d * f32::from(b.scale(e / 16))) * (f32::from(b.quant(e)) - 4.0))
}

pub(crate) fn q4_k(block: &[u8]) -> impl Iterator<Item = f32> + '_ {
    affine(AffineSuperBlock::new(block, false))
}

pub(crate) fn q5_k(block: &[u8]) -> impl Iterator<Item = f32> + '_ {
    affine(AffineSuperBlock::new(block, true))
}

fn affine(b: AffineSuperBlock<'_>) -> impl Iterator<Item = f32> + '_ {
    (0..QK_K).map(move |e| {
        let (a, o) = b.affine(e / QK);
        f32::from(b.quant(e)) * a + o
    })
}

pub(crate) fn q6_k(block: &[u8]) -> impl Iterator<Item = f32> + '_ {
    let b = Q6SuperBlock::new(block);
    (0..QK_K).map(move |e| (b.d * f32::from(b.scale(e / 16))) * (f32::from(b.quant(e)) - 32.0))
}
