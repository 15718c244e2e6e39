//! Host side of `model/embed.wgsl`: rows of a quantised table by token id.

use super::kernels::EMBED;
use super::{Batch, QuantMatrix};
use crate::gpu::check_len;
use crate::gpu::shader::{KvStorage, ShaderVariant};
use crate::gpu::Constants;
use crate::gpu::{check_index, grid};
use crate::{Error, Result};

impl QuantMatrix {
    /// Records `out[t, :] = row ids[t]` of this table, dequantised, for the
    /// batch's tokens: `ids` holds `[tokens]` u32 (on the GPU, so a decode
    /// loop can feed back the sampled token), `out` `[tokens, K]` f32. An id
    /// past the last row gives a zero row.
    pub fn embed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        ids: &wgpu::Buffer,
        out: &wgpu::Buffer,
    ) -> Result<()> {
        let tokens = batch.tokens() as u64;
        check_index("embedding outputs", tokens * self.k() as u64)?;
        check_len("token ids", ids, tokens * 4)?;
        check_len("embedding output", out, tokens * self.k() as u64 * 4)?;
        if ids == out {
            return Err(Error::Aliased { what: "embedding output", other: "token ids" });
        }
        let pipeline = self.ctx.pipeline(
            ShaderVariant { kernel: &EMBED, kv: KvStorage::F32, subgroups: false },
            &Constants::default().set("WTYPE", self.ty().ggml_id()).set("K", self.k()).set("N", self.n()),
        )?;
        let [gx, gy] = grid(tokens, "embedding tokens")?;
        self.ctx.dispatch(
            encoder,
            &pipeline,
            &[batch.buffer(), ids, &self.scales, &self.quants, out],
            [gx, gy, 1],
        )
    }
}
