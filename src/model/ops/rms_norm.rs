//! Host side of `model/rms_norm.wgsl`.

use super::kernels::RMS_NORM;
use super::Batch;
use crate::gpu::check_len;
use crate::gpu::shader::{KvStorage, ShaderVariant};
use crate::gpu::Constants;
use crate::gpu::{check_index, grid};
use crate::model::{Gguf, TensorType};
use crate::{Error, GpuContext, Result};

/// RMSNorm with its f32 weight on the GPU: `y = x / sqrt(mean(x^2) + eps) * w`
/// per token.
pub struct RmsNorm {
    ctx: GpuContext,
    weight: wgpu::Buffer,
    width: u32,
    eps: f32,
}

impl RmsNorm {
    /// `weight` has one value per element of a token; its length must be a
    /// positive multiple of 4 (the kernel reads vec4s).
    pub fn new(ctx: &GpuContext, weight: &[f32], eps: f32) -> Result<Self> {
        let invalid = |why: String| Error::InvalidOp { op: "rms_norm", why };
        if weight.is_empty() || !weight.len().is_multiple_of(4) || weight.len() > u32::MAX as usize {
            return Err(invalid(format!("width {} must be a positive multiple of 4", weight.len())));
        }
        if !eps.is_finite() || eps < 0.0 {
            return Err(invalid(format!("eps must be finite and not negative, got {eps}")));
        }
        let width = weight.len() as u32;
        Ok(RmsNorm { ctx: ctx.clone(), weight: ctx.upload("wgqa rms_norm weight", weight), width, eps })
    }

    /// The 1-D F32 GGUF tensor `name` as the weight.
    pub fn from_gguf(ctx: &GpuContext, gguf: &Gguf, name: &str, eps: f32) -> Result<Self> {
        let info = gguf.tensor(name)?;
        if info.ty != TensorType::F32 || info.dims.len() != 1 {
            return Err(Error::InvalidMatrix {
                name: name.into(),
                why: format!("a norm weight must be 1-D F32, got {} {:?}", info.ty.name(), info.dims),
            });
        }
        Self::new(ctx, &gguf.dequantize(name)?, eps)
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    /// Records `y = rms_norm(x)` for the batch's tokens; `x` and `y` are
    /// `[tokens, width]` f32 and must differ.
    pub fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        self.encode_with(encoder, batch, x, y, false)
    }

    /// Records `y += rms_norm(x)`: a normalised block output added into the
    /// residual `y` (Gemma's post-norms). CPU twin: `add(y, rms_norm(x))`.
    pub fn encode_add(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        self.encode_with(encoder, batch, x, y, true)
    }

    fn encode_with(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        add: bool,
    ) -> Result<()> {
        let floats = batch.tokens() as u64 * self.width as u64;
        check_index("rms_norm elements", floats)?;
        check_len("rms_norm input", x, floats * 4)?;
        check_len("rms_norm output", y, floats * 4)?;
        if x == y {
            return Err(Error::Aliased { what: "rms_norm output", other: "rms_norm input" });
        }
        let pipeline = self.ctx.pipeline(
            ShaderVariant { kernel: &RMS_NORM, kv: KvStorage::F32, subgroups: false },
            &Constants::default().set("D4", self.width / 4).set("EPS", self.eps).set("ADD", add as u32),
        )?;
        let [gx, gy] = grid(batch.tokens() as u64, "rms_norm tokens")?;
        self.ctx.dispatch(encoder, &pipeline, &[batch.buffer(), x, &self.weight, y], [gx, gy, 1])
    }
}
