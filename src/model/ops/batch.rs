//! The token count of one step, on the CPU (to size dispatches) and on the
//! GPU (for the kernels' bounds), so pipelines never depend on it.

use crate::{Error, GpuContext, Result};

/// How many tokens the ops of one step process.
///
/// [`Batch::set`] writes the count with `queue.write_buffer`, which takes
/// effect at the next submission: set it once per step, before encoding the
/// step's ops, and submit before setting a different count.
pub struct Batch {
    ctx: GpuContext,
    tokens: u32,
    buffer: wgpu::Buffer,
}

impl Batch {
    pub fn new(ctx: &GpuContext, tokens: u32) -> Result<Self> {
        let mut batch = Batch { ctx: ctx.clone(), tokens: 0, buffer: ctx.storage_buffer("wgqa batch", 4) };
        batch.set(tokens)?;
        Ok(batch)
    }

    /// Sets the token count of the next submission.
    pub fn set(&mut self, tokens: u32) -> Result<()> {
        if tokens == 0 {
            return Err(Error::InvalidOp { op: "batch", why: "a step needs at least one token".into() });
        }
        self.ctx.queue().write_buffer(&self.buffer, 0, &tokens.to_le_bytes());
        self.tokens = tokens;
        Ok(())
    }

    pub fn tokens(&self) -> u32 {
        self.tokens
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}
