//! Host side of `model/elementwise.wgsl`: the residual add, SwiGLU, GeGLU
//! and a bias added to every token.

use super::kernels::ELEMENTWISE;
use super::Batch;
use crate::gpu::check_len;
use crate::gpu::shader::{KvStorage, ShaderVariant};
use crate::gpu::Constants;
use crate::gpu::{check_index, grid};
use crate::{Error, Result};

/// Records `x += y` over the batch's tokens of `width` f32 each.
pub fn add(
    encoder: &mut wgpu::CommandEncoder,
    batch: &Batch,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    width: u32,
) -> Result<()> {
    elementwise(encoder, batch, x, y, width, Op::Add)
}

/// Records `gate = silu(gate) * up` over the batch's tokens of `width` f32
/// each, where `silu(g) = g / (1 + exp(-g))`.
pub fn swiglu(
    encoder: &mut wgpu::CommandEncoder,
    batch: &Batch,
    gate: &wgpu::Buffer,
    up: &wgpu::Buffer,
    width: u32,
) -> Result<()> {
    elementwise(encoder, batch, gate, up, width, Op::Swiglu)
}

/// Records `gate = gelu(gate) * up` over the batch's tokens of `width` f32
/// each, with GELU's tanh approximation (Gemma's GeGLU).
pub fn geglu(
    encoder: &mut wgpu::CommandEncoder,
    batch: &Batch,
    gate: &wgpu::Buffer,
    up: &wgpu::Buffer,
    width: u32,
) -> Result<()> {
    elementwise(encoder, batch, gate, up, width, Op::Geglu)
}

/// Records `x[t] += bias` for each of the batch's tokens of `width` f32;
/// `bias` holds `width` f32.
pub fn add_bias(
    encoder: &mut wgpu::CommandEncoder,
    batch: &Batch,
    x: &wgpu::Buffer,
    bias: &wgpu::Buffer,
    width: u32,
) -> Result<()> {
    elementwise(encoder, batch, x, bias, width, Op::AddBias)
}

/// The `OP` override of the kernel.
#[derive(Clone, Copy)]
enum Op {
    Add = 0,
    Swiglu = 1,
    AddBias = 2,
    Geglu = 3,
}

fn elementwise(
    encoder: &mut wgpu::CommandEncoder,
    batch: &Batch,
    x: &wgpu::Buffer,
    y: &wgpu::Buffer,
    width: u32,
    op: Op,
) -> Result<()> {
    let name = match op {
        Op::Add => "add",
        Op::Swiglu => "swiglu",
        Op::AddBias => "add_bias",
        Op::Geglu => "geglu",
    };
    if width == 0 {
        return Err(Error::InvalidOp { op: name, why: "width must be at least 1".into() });
    }
    let floats = batch.tokens() as u64 * width as u64;
    check_index("elementwise elements", floats)?;
    check_len("elementwise in-out buffer", x, floats * 4)?;
    let y_floats = if let Op::AddBias = op { width as u64 } else { floats };
    check_len("elementwise input", y, y_floats * 4)?;
    if x == y {
        return Err(Error::Aliased { what: "elementwise in-out buffer", other: "its input" });
    }
    let ctx = batch.context();
    let pipeline = ctx.pipeline(
        ShaderVariant { kernel: &ELEMENTWISE, kv: KvStorage::F32, subgroups: false },
        &Constants::default().set("OP", op as u32).set("WIDTH", width),
    )?;
    let [gx, gy] = grid(floats.div_ceil(64), "elementwise workgroups")?;
    ctx.dispatch(encoder, &pipeline, &[batch.buffer(), x, y], [gx, gy, 1])
}
