//! Rotary position embedding: host side of `rope/rope.wgsl` (queries) and the
//! frequencies `kv/append.wgsl` uses for keys.

use crate::gpu::check_len;
use crate::gpu::kernel::{Access::*, KernelSpec};
use crate::gpu::shader::{KvStorage, ShaderVariant};
use crate::gpu::unit_groups;
use crate::gpu::Constants;
use crate::kv::{plan_layout, KvCache, Plan};
use crate::{Error, GpuContext, Result};

/// `rope/rope.wgsl`: RoPE on queries in place.
pub(crate) static ROPE: KernelSpec = KernelSpec {
    name: "rope",
    sources: &[
        include_str!("../shaders/kv/plan.wgsl"),
        include_str!("../shaders/rope/rotate.wgsl"),
        include_str!("../shaders/rope/rope.wgsl"),
    ],
    subgroup_sources: None,
    bindings: &[("plan", Read), ("x", ReadWrite), ("rope_freqs", Read)],
    overrides: &["HEADS", "DIM4", "ROPE"],
    generated: plan_layout::wgsl,
};

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

    /// Records rotating the queries of `layer`, `q` (`[plan tokens, q_heads,
    /// head_dim]` f32), in place, each token at the position the plan gives
    /// it. The head count and head dim are the layer's, as for
    /// [`crate::attend`], so a query buffer cannot be rotated as if it held
    /// another count of heads.
    pub fn apply(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        cache: &KvCache,
        plan: &Plan,
        layer: usize,
        q: &wgpu::Buffer,
    ) -> Result<()> {
        cache.check_plan(plan)?;
        let cfg = cache.layer_config(layer)?;
        self.check_head_dim(cfg.head_dim)?;
        let heads = cfg.q_heads;
        let tokens = plan.tokens() as u64;
        check_len("q buffer", q, tokens * (heads * self.head_dim) as u64 * 4)?;
        let pipeline = self.ctx.pipeline(
            ShaderVariant { kernel: &ROPE, kv: KvStorage::F32, subgroups: false },
            &Constants::default()
                .set("HEADS", heads)
                .set("DIM4", self.head_dim / 4)
                .set("ROPE", self.layout.mode()),
        )?;
        let units = self.head_dim / if self.layout == RopeLayout::HalfSplit { 8 } else { 4 };
        let (plan_buf, _) = plan.buffers();
        let groups = unit_groups(tokens * (heads * units) as u64);
        self.ctx.dispatch(encoder, &pipeline, &[plan_buf, q, &self.freqs], groups)?;
        Ok(())
    }
}
