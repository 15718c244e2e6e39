//! Rotary position embedding: layouts, scaling, and the frequency table on the
//! GPU that `rope/rope.wgsl` (queries, `kernels/rope.rs`) and `kv/append.wgsl`
//! (keys, `kernels/append.rs`) read.

use crate::{Error, GpuContext, Result};

/// Which dimensions RoPE rotates together.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RopeLayout {
    /// Pairs `(2i, 2i+1)`: GGUF / llama.cpp llama models.
    Adjacent,
    /// Pairs `(i, i + head_dim/2)`: NeoX, and Hugging Face llama checkpoints.
    HalfSplit,
}

impl RopeLayout {
    /// The `ROPE` override of the WGSL kernels.
    pub(crate) fn mode(self) -> u32 {
        match self {
            RopeLayout::Adjacent => 1,
            RopeLayout::HalfSplit => 2,
        }
    }
}

/// How a model stretches RoPE's frequencies: frequency i is
/// `base^(-2i / head_dim) / (linear * factors[i])`.
#[derive(Clone, Debug, PartialEq)]
pub struct RopeScaling {
    /// Linear position scaling: positions are divided by it (GGUF
    /// `llama.rope.scaling.factor` with type "linear"); 1 means none.
    pub linear: f32,
    /// One factor per rotated pair, dividing its frequency (the
    /// `rope_freqs.weight` tensor of Llama 3.x files).
    pub factors: Option<Vec<f32>>,
}

impl Default for RopeScaling {
    fn default() -> Self {
        RopeScaling { linear: 1.0, factors: None }
    }
}

impl RopeScaling {
    /// Errors unless the factors are finite, positive and one per pair.
    pub fn validate(&self, head_dim: u32) -> Result<()> {
        let bad = |v: f32| !(v.is_finite() && v > 0.0);
        if bad(self.linear) {
            return Err(Error::InvalidRope { field: "linear scaling", value: self.linear.to_string() });
        }
        if let Some(f) = &self.factors {
            if f.len() != head_dim as usize / 2 {
                let value =
                    format!("{} factors (one per pair of head_dim {head_dim} is {})", f.len(), head_dim / 2);
                return Err(Error::InvalidRope { field: "frequency factors", value });
            }
            if let Some(v) = f.iter().find(|&&v| bad(v)) {
                return Err(Error::InvalidRope { field: "frequency factors", value: v.to_string() });
            }
        }
        Ok(())
    }

    /// The frequencies, in radians per position, of the `head_dim / 2` pairs.
    pub fn frequencies(&self, base: f32, head_dim: u32) -> Vec<f64> {
        let mut freqs = Rope::frequencies_f64(base, head_dim);
        for (i, f) in freqs.iter_mut().enumerate() {
            let factor = self.factors.as_ref().map_or(1.0, |v| v[i]);
            *f /= self.linear as f64 * factor as f64;
        }
        freqs
    }
}

/// RoPE for one head dim and base, with its frequency table on the GPU.
pub struct Rope {
    ctx: GpuContext,
    layout: RopeLayout,
    base: f32,
    head_dim: u32,
    freqs: wgpu::Buffer,
}

impl Rope {
    pub fn new(ctx: &GpuContext, layout: RopeLayout, base: f32, head_dim: u32) -> Result<Self> {
        Self::with_scaling(ctx, layout, base, head_dim, &RopeScaling::default())
    }

    /// RoPE whose frequencies `scaling` stretches.
    pub fn with_scaling(
        ctx: &GpuContext,
        layout: RopeLayout,
        base: f32,
        head_dim: u32,
        scaling: &RopeScaling,
    ) -> Result<Self> {
        if !base.is_finite() || base <= 1.0 {
            return Err(Error::InvalidRope { field: "base", value: base.to_string() });
        }
        let step = if layout == RopeLayout::HalfSplit { 8 } else { 4 };
        if head_dim == 0 || !head_dim.is_multiple_of(step) {
            return Err(Error::InvalidRope {
                field: "head_dim",
                value: format!("{head_dim} (must be a multiple of {step} for {layout:?})"),
            });
        }
        scaling.validate(head_dim)?;
        // Fraction of a turn per position, in 0.32 fixed point (see rotate.wgsl).
        let turns: Vec<u32> = scaling
            .frequencies(base, head_dim)
            .iter()
            .map(|f| ((f / std::f64::consts::TAU).fract() * 4294967296.0).round() as u64 as u32)
            .collect();
        Ok(Rope { freqs: ctx.upload("wgqa rope", &turns), ctx: ctx.clone(), layout, base, head_dim })
    }

    /// Angle per position, in radians, of each of the `head_dim / 2` pairs,
    /// unscaled.
    pub fn frequencies_f64(base: f32, head_dim: u32) -> Vec<f64> {
        (0..head_dim / 2).map(|i| (base as f64).powf(-2.0 * i as f64 / head_dim as f64)).collect()
    }

    pub fn layout(&self) -> RopeLayout {
        self.layout
    }

    pub fn base(&self) -> f32 {
        self.base
    }

    pub fn head_dim(&self) -> u32 {
        self.head_dim
    }

    pub(crate) fn context(&self) -> &GpuContext {
        &self.ctx
    }

    pub(crate) fn frequencies(&self) -> &wgpu::Buffer {
        &self.freqs
    }

    pub(crate) fn check_head_dim(&self, head_dim: u32) -> Result<()> {
        if head_dim != self.head_dim {
            return Err(Error::InvalidRope {
                field: "head_dim",
                value: format!("{} (the layer's head_dim is {head_dim})", self.head_dim),
            });
        }
        Ok(())
    }
}
