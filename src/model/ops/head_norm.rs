//! Host side of `model/head_norm.wgsl`: RMSNorm of each head in place
//! (Gemma 3's Q and K norms, before RoPE).

use super::kernels::HEAD_NORM;
use super::Batch;
use crate::gpu::check_len;
use crate::gpu::shader::{KvStorage, ShaderVariant};
use crate::gpu::Constants;
use crate::gpu::{check_index, grid};
use crate::model::Gguf;
use crate::{Error, GpuContext, Result};

/// RMSNorm over each `head_dim`-wide head of `[tokens, heads, head_dim]`,
/// with one weight for all heads. CPU twin: `reference::rms_norm` with the
/// `head_dim`-wide weight.
pub struct HeadNorm {
    ctx: GpuContext,
    weight: wgpu::Buffer,
    head_dim: u32,
    eps: f32,
}

impl HeadNorm {
    /// `weight` has one value per element of a head; its length must be a
    /// positive multiple of 4 (the kernel reads vec4s).
    pub fn new(ctx: &GpuContext, weight: &[f32], eps: f32) -> Result<Self> {
        let invalid = |why: String| Error::InvalidOp { op: "head_norm", why };
        if weight.is_empty() || !weight.len().is_multiple_of(4) || weight.len() > u32::MAX as usize {
            return Err(invalid(format!("head_dim {} must be a positive multiple of 4", weight.len())));
        }
        if !eps.is_finite() || eps < 0.0 {
            return Err(invalid(format!("eps must be finite and not negative, got {eps}")));
        }
        let head_dim = weight.len() as u32;
        Ok(HeadNorm { ctx: ctx.clone(), weight: ctx.upload("wgqa head_norm weight", weight), head_dim, eps })
    }

    /// The 1-D GGUF tensor `name` as the weight.
    pub fn from_gguf(ctx: &GpuContext, gguf: &Gguf, name: &str, eps: f32) -> Result<Self> {
        let info = gguf.tensor(name)?;
        if info.dims.len() != 1 {
            return Err(Error::InvalidMatrix {
                name: name.into(),
                why: format!("a head norm weight must be 1-D, got {:?}", info.dims),
            });
        }
        Self::new(ctx, &gguf.dequantize(name)?, eps)
    }

    pub fn head_dim(&self) -> u32 {
        self.head_dim
    }

    /// Records `x[t, h] = rms_norm(x[t, h])` for the batch's tokens and
    /// `heads` heads each.
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        x: &wgpu::Buffer,
        heads: u32,
    ) -> Result<()> {
        if heads == 0 {
            return Err(Error::InvalidOp { op: "head_norm", why: "heads must be at least 1".into() });
        }
        let rows = batch.tokens() as u64 * heads as u64;
        check_index("head_norm elements", rows * self.head_dim as u64)?;
        check_len("head_norm in-out buffer", x, rows * self.head_dim as u64 * 4)?;
        let pipeline = self.ctx.pipeline(
            ShaderVariant { kernel: &HEAD_NORM, kv: KvStorage::F32, subgroups: false },
            &Constants::default().set("D4", self.head_dim / 4).set("HEADS", heads).set("EPS", self.eps),
        )?;
        let [gx, gy] = grid(rows, "head_norm rows")?;
        self.ctx.dispatch(encoder, &pipeline, &[batch.buffer(), x, &self.weight], [gx, gy, 1])
    }
}
