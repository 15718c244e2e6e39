//! The attention problem: head counts, dims and options, validated up front.

use crate::{Error, Result};

/// Largest accepted `scale`. Logits are computed in f32: far above any
/// model's scale (1/sqrt(head_dim), or 1), and small enough that ordinary
/// activations cannot overflow to inf, where softmax would turn into NaN.
pub const MAX_SCALE: f32 = 1e4;
/// Largest accepted `softcap`: a cap far above every logit is no cap at all,
/// and `logit / cap` must stay a normal f32 (drivers may flush subnormals).
pub const MAX_SOFTCAP: f32 = 1e6;

/// Element type of the KV cache. Activations (Q, outputs) are always f32 and
/// all accumulation is f32.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DType {
    #[default]
    F32,
    /// Half precision storage: native `f16` where the adapter has
    /// `shader-f16`, packed pairs in u32 otherwise.
    F16,
    /// Symmetric int8: each row (one token's K or V of one KV head, after
    /// RoPE) is stored as `round(x / s * 127)` with `s = max |x|` of the row,
    /// four values packed in a u32, followed by `s` as an f32. The scale is
    /// f32 rather than f16 because a row is whole u32 words anyway: an f16
    /// would leave two bytes of padding. A zero row stores scale 0.
    Int8,
}

impl DType {
    pub const ALL: [DType; 3] = [DType::F32, DType::F16, DType::Int8];

    /// Bytes one row of `dim` elements (one token's K or V of one KV head)
    /// takes in the cache, its scale included.
    pub fn row_bytes(self, dim: u32) -> u64 {
        let dim = dim as u64;
        match self {
            DType::F32 => dim * 4,
            DType::F16 => dim * 2,
            DType::Int8 => dim + 4,
        }
    }

    /// The name the CLI, JS and reports use.
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::Int8 => "int8",
        }
    }

    /// Parses [`DType::name`].
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// One attention layer's problem. Q is `[tokens, q_heads, head_dim]`, K is
/// `[tokens, kv_heads, head_dim]`, V is `[tokens, kv_heads, v_head_dim]` and
/// the output is `[tokens, q_heads, v_head_dim]`.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionConfig {
    /// Query heads; a multiple of `kv_heads`.
    pub q_heads: u32,
    /// Key/value heads: `q_heads` for MHA, 1 for MQA, anything dividing it for GQA.
    pub kv_heads: u32,
    /// Dimension of query and key vectors: a multiple of 4, at most 1024.
    pub head_dim: u32,
    /// Dimension of value and output vectors (may differ from `head_dim`).
    pub v_head_dim: u32,
    /// Multiplier of q.k; `None` means `1/sqrt(head_dim)`.
    pub scale: Option<f32>,
    /// Causal self-attention (a query sees keys at or before its position);
    /// `false` for cross-attention.
    pub causal: bool,
    /// Sliding window: a query sees keys less than this many positions away.
    pub window: Option<u32>,
    /// Logit soft-capping: `cap * tanh(logit / cap)` after scaling.
    pub softcap: Option<f32>,
    /// Per-query-head sink logits: they join the softmax denominator only.
    pub sinks: Option<Vec<f32>>,
    /// KV-cache storage type.
    pub dtype: DType,
}

impl AttentionConfig {
    /// A validated causal f32 config with `v_head_dim == head_dim` and no options.
    pub fn new(q_heads: u32, kv_heads: u32, head_dim: u32) -> Result<Self> {
        let cfg = AttentionConfig {
            q_heads,
            kv_heads,
            head_dim,
            v_head_dim: head_dim,
            scale: None,
            causal: true,
            window: None,
            softcap: None,
            sinks: None,
            dtype: DType::F32,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every field; each invalid one gets its own error naming the value.
    pub fn validate(&self) -> Result<()> {
        if self.q_heads == 0 {
            return Err(Error::ZeroHeads { field: "q_heads" });
        }
        if self.kv_heads == 0 {
            return Err(Error::ZeroHeads { field: "kv_heads" });
        }
        if !self.q_heads.is_multiple_of(self.kv_heads) {
            return Err(Error::HeadsNotDivisible { q_heads: self.q_heads, kv_heads: self.kv_heads });
        }
        for (field, value) in [("head_dim", self.head_dim), ("v_head_dim", self.v_head_dim)] {
            if value == 0 || value % 4 != 0 || value > 1024 {
                return Err(Error::InvalidHeadDim { field, value });
            }
        }
        if let Some(s) = self.scale {
            if !(s > 0.0 && s <= MAX_SCALE) {
                return Err(Error::InvalidScale { value: s, max: MAX_SCALE });
            }
        }
        if let Some(c) = self.softcap {
            if !(c > 0.0 && c <= MAX_SOFTCAP) {
                return Err(Error::InvalidSoftcap { value: c, max: MAX_SOFTCAP });
            }
        }
        if self.window == Some(0) {
            return Err(Error::InvalidWindow(0));
        }
        if let Some(sinks) = &self.sinks {
            if sinks.len() != self.q_heads as usize {
                return Err(Error::SinkCount { expected: self.q_heads as usize, got: sinks.len() });
            }
            if let Some((head, &value)) = sinks.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::InvalidSink { head, value });
            }
        }
        Ok(())
    }

    /// Query heads per KV head.
    pub fn group_size(&self) -> u32 {
        self.q_heads / self.kv_heads
    }

    /// The effective scale.
    pub fn scale(&self) -> f32 {
        self.scale.unwrap_or(1.0 / (self.head_dim as f32).sqrt())
    }

    /// Bytes of K and V one token takes in the cache for this layer.
    pub fn kv_bytes_per_token(&self) -> u64 {
        self.kv_heads as u64 * (self.dtype.row_bytes(self.head_dim) + self.dtype.row_bytes(self.v_head_dim))
    }

    /// Bytes of K and V this layer needs for a sequence of `tokens`: a
    /// sliding-window layer needs only its window's, whatever the length.
    pub fn kv_bytes_for(&self, tokens: u64) -> u64 {
        self.kv_bytes_per_token() * self.window.map_or(tokens, |w| tokens.min(w as u64))
    }

    pub fn with_v_head_dim(mut self, v_head_dim: u32) -> Self {
        self.v_head_dim = v_head_dim;
        self
    }

    pub fn with_scale(mut self, scale: f32) -> Self {
        self.scale = Some(scale);
        self
    }

    pub fn with_causal(mut self, causal: bool) -> Self {
        self.causal = causal;
        self
    }

    pub fn with_window(mut self, window: u32) -> Self {
        self.window = Some(window);
        self
    }

    pub fn with_softcap(mut self, softcap: f32) -> Self {
        self.softcap = Some(softcap);
        self
    }

    pub fn with_sinks(mut self, sinks: Vec<f32>) -> Self {
        self.sinks = Some(sinks);
        self
    }

    pub fn with_dtype(mut self, dtype: DType) -> Self {
        self.dtype = dtype;
        self
    }

    /// Whether a query at `q_pos` sees the key at `k_pos` (shared by the
    /// reference; the kernel implements the same rule).
    pub fn visible(&self, q_pos: u32, k_pos: u32) -> bool {
        if self.causal && k_pos > q_pos {
            return false;
        }
        self.window.is_none_or(|w| q_pos.abs_diff(k_pos) < w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invalid_field_has_its_error() {
        let ok = AttentionConfig::new(8, 2, 64).unwrap();
        let cases: Vec<(AttentionConfig, &str)> = vec![
            (AttentionConfig { q_heads: 0, ..ok.clone() }, "q_heads must be at least 1"),
            (AttentionConfig { kv_heads: 0, ..ok.clone() }, "kv_heads must be at least 1"),
            (AttentionConfig { kv_heads: 3, ..ok.clone() }, "q_heads (8) must be a multiple of kv_heads (3)"),
            (AttentionConfig { head_dim: 30, ..ok.clone() }, "head_dim must be a multiple of 4"),
            (
                ok.clone().with_v_head_dim(2048),
                "v_head_dim must be a multiple of 4 between 4 and 1024, got 2048",
            ),
            (ok.clone().with_scale(f32::NAN), "scale must be finite"),
            (ok.clone().with_scale(f32::MAX), "scale must be finite, positive and at most 10000, got 340282350000000000000000000000000000000"),
            (ok.clone().with_softcap(-1.0), "softcap must be finite, positive and at most 1000000, got -1"),
            (ok.clone().with_softcap(f32::MAX), "softcap must be finite, positive and at most 1000000"),
            (ok.clone().with_window(0), "sliding window must be at least 1"),
            (ok.clone().with_sinks(vec![0.0; 3]), "expected one per query head (8), got 3"),
            (ok.clone().with_sinks(vec![f32::INFINITY; 8]), "sink logit of head 0 must be finite"),
        ];
        for (cfg, msg) in cases {
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(msg), "{err:?} should contain {msg:?}");
        }
    }

    #[test]
    fn defaults_and_sizes() {
        let cfg = AttentionConfig::new(9, 3, 64).unwrap().with_dtype(DType::F16);
        assert_eq!(cfg.group_size(), 3);
        assert_eq!(cfg.scale(), 0.125);
        assert_eq!(cfg.kv_bytes_per_token(), 3 * 128 * 2);
        // int8: a byte per element and an f32 scale per row of K and of V.
        assert_eq!(cfg.with_dtype(DType::Int8).kv_bytes_per_token(), 3 * (64 + 4) * 2);
        for d in DType::ALL {
            assert_eq!(DType::from_name(d.name()), Some(d));
        }
        assert_eq!(DType::from_name("int4"), None);
    }

    #[test]
    fn visibility_rules() {
        let cfg = AttentionConfig::new(1, 1, 4).unwrap().with_window(3);
        assert!(cfg.visible(5, 3) && !cfg.visible(5, 2) && !cfg.visible(5, 6));
        let cross = cfg.with_causal(false);
        assert!(cross.visible(5, 7) && !cross.visible(5, 8));
    }

    #[test]
    fn a_sliding_window_caps_the_kv_bytes_of_a_sequence() {
        // 2 KV heads of dims 4 (K) and 8 (V) in f16: 48 bytes per token.
        let cfg = AttentionConfig::new(4, 2, 4).unwrap().with_v_head_dim(8).with_dtype(DType::F16);
        assert_eq!(cfg.kv_bytes_per_token(), 48);
        assert_eq!(cfg.kv_bytes_for(100), 4800);
        let windowed = cfg.with_window(16);
        assert_eq!((windowed.kv_bytes_for(10), windowed.kv_bytes_for(100)), (480, 768));
    }
}
