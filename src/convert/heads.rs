//! Which source KV heads each new KV head stands for, and the simple ways of
//! building it from them (mean, first, random).
//!
//! A K or V projection is `[kv_heads * head_dim, embedding]`: head `g` is
//! rows `g * head_dim ..`. GGUF llama K rows are permuted within each head so
//! that RoPE rotates adjacent pairs (`RopeLayout::Adjacent`); every method
//! here maps whole heads row for row, so row `r` of a new head is built only
//! from row `r` of source heads and keeps its RoPE frequency.

/// The source heads behind new KV head `j` of `new` when query head `h`
/// reads KV head `h / (q_heads / kv_heads)`: one entry per query head of the
/// new group, naming the source head that query head read, in order.
pub fn sources(q_heads: u32, src_heads: u32, new_heads: u32, j: u32) -> Vec<u32> {
    let (new_group, src_group) = (q_heads / new_heads, q_heads / src_heads);
    (j * new_group..(j + 1) * new_group).map(|h| h / src_group).collect()
}

/// Rows of head `g` of a projection with `head_dim`-row heads and `cols` columns.
pub fn head(w: &[f32], g: u32, head_dim: usize, cols: usize) -> &[f32] {
    &w[g as usize * head_dim * cols..][..head_dim * cols]
}

/// The mean of the source heads, each weighted by the query heads that
/// read it (for groups of adjacent heads: the plain mean of the paper).
pub fn mean(w: &[f32], sources: &[u32], head_dim: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0f32; head_dim * cols];
    for &g in sources {
        for (o, &x) in out.iter_mut().zip(head(w, g, head_dim, cols)) {
            *o += x;
        }
    }
    let n = sources.len() as f32;
    out.iter_mut().for_each(|o| *o /= n);
    out
}

/// The head the group's first query head read.
pub fn first(w: &[f32], sources: &[u32], head_dim: usize, cols: usize) -> Vec<f32> {
    head(w, sources[0], head_dim, cols).to_vec()
}

/// A fresh head: normal values with the source heads' standard deviation.
/// A new head that stands for one source head (nothing merged) is copied.
pub fn random(w: &[f32], sources: &[u32], head_dim: usize, cols: usize, rng: &mut Rng) -> Vec<f32> {
    if sources.iter().all(|&g| g == sources[0]) {
        return first(w, sources, head_dim, cols);
    }
    let values = sources.iter().flat_map(|&g| head(w, g, head_dim, cols));
    let (n, sum, sq) =
        values.fold((0f64, 0f64, 0f64), |(n, s, q), &x| (n + 1.0, s + x as f64, q + (x as f64).powi(2)));
    let std = (sq / n - (sum / n).powi(2)).max(0.0).sqrt();
    (0..head_dim * cols).map(|_| (rng.normal() * std) as f32).collect()
}

/// A small seeded generator (SplitMix64): the same seed gives the same
/// random heads on every machine.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// A standard normal value (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_follow_the_kernel_head_mapping() {
        // 9 query heads: GQA-3 -> MQA merges all three; -> MHA copies.
        assert_eq!(sources(9, 3, 1, 0), [0, 0, 0, 1, 1, 1, 2, 2, 2]);
        assert_eq!(sources(9, 3, 9, 4), [1]);
        assert_eq!(sources(9, 3, 3, 2), [2, 2, 2]);
        // 8 query heads, 4 -> 2 KV heads: adjacent pairs.
        assert_eq!(sources(8, 4, 2, 1), [2, 2, 3, 3]);
    }

    #[test]
    fn mean_first_random() {
        // Three heads of 2 rows x 1 column: head g holds g+1, 10(g+1).
        let w = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0];
        assert_eq!(mean(&w, &[0, 1, 2], 2, 1), [2.0, 20.0]);
        assert_eq!(mean(&w, &[0, 0, 2], 2, 1), [5.0 / 3.0, 50.0 / 3.0]);
        assert_eq!(first(&w, &[1, 2], 2, 1), [2.0, 20.0]);
        let mut rng = Rng::new(7);
        let r = random(&w, &[0, 1, 2], 2, 1, &mut rng);
        assert_ne!(r, mean(&w, &[0, 1, 2], 2, 1));
        assert_eq!(random(&w, &[2, 2], 2, 1, &mut rng), [3.0, 30.0]);
        assert_eq!(random(&w, &[0, 1], 2, 1, &mut Rng::new(3)), random(&w, &[0, 1], 2, 1, &mut Rng::new(3)));
    }
}
