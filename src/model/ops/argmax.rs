//! Host side of `model/argmax.wgsl`: the greedy token picked on the GPU. Its
//! CPU twin is [`crate::model::argmax`].

use super::kernels::ARGMAX;
use crate::gpu::check_len;
use crate::gpu::shader::{KvStorage, ShaderVariant};
use crate::gpu::Constants;
use crate::{Error, GpuContext, Result};

/// What the kernel writes when the CPU's `argmax` would fail (a NaN or +inf
/// logit, or every logit -inf): read the logits to find out which.
pub const ARGMAX_NONE: u32 = u32::MAX;

/// Records `out[0] = argmax(logits[..n])` (lowest index among equals), or
/// [`ARGMAX_NONE`]; `out` holds at least one u32.
pub fn argmax(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    logits: &wgpu::Buffer,
    n: u32,
    out: &wgpu::Buffer,
) -> Result<()> {
    if n == 0 || n == ARGMAX_NONE {
        return Err(Error::InvalidOp { op: "argmax", why: format!("cannot pick from {n} logits") });
    }
    check_len("argmax logits", logits, n as u64 * 4)?;
    check_len("argmax output", out, 4)?;
    if logits == out {
        return Err(Error::Aliased { what: "argmax output", other: "its logits" });
    }
    let pipeline = ctx.pipeline(
        ShaderVariant { kernel: &ARGMAX, kv: KvStorage::F32, subgroups: false },
        &Constants::default().set("N", n),
    )?;
    ctx.dispatch(encoder, &pipeline, &[logits, out], [1, 1, 1])
}
