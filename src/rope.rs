//! Rotary position embedding: host side of `rope/rope.wgsl` (queries) and the
//! frequencies `kv/append.wgsl` uses for keys.

use crate::attention::check_len;
use crate::gpu::shader::{Kernel, KvStorage, ShaderVariant};
use crate::gpu::Constants;
use crate::kv::{unit_groups, KvCache, Plan};
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
        // Fraction of a turn per position, in 0.32 fixed point (see rotate.wgsl).
        let turns: Vec<u32> = Self::frequencies_f64(base, head_dim)
            .iter()
            .map(|f| ((f / std::f64::consts::TAU).fract() * 4294967296.0).round() as u64 as u32)
            .collect();
        Ok(Rope { freqs: ctx.upload("wgqa rope", &turns), ctx: ctx.clone(), layout, base, head_dim })
    }

    /// Angle per position, in radians, of each of the `head_dim / 2` pairs.
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
            ShaderVariant { kernel: Kernel::Rope, kv: KvStorage::F32, subgroups: false },
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
