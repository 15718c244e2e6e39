//! Host side of `model/embed.wgsl`: rows of a quantised table by token id.

use super::kernels::EMBED;
use super::{Batch, QuantMatrix};
use crate::gpu::check_len;
use crate::gpu::shader::{KvStorage, ShaderVariant};
use crate::gpu::Constants;
use crate::gpu::{check_index, grid};
use crate::{Error, Result};

/// Where a matrix sits in a table split by rows, for the lookup.
#[derive(Clone, Copy, Debug)]
pub(super) struct TableChunk {
    pub first_row: u32,
    pub table_rows: u32,
    pub scale: f32,
}

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
        self.embed_chunk(
            encoder,
            batch,
            ids,
            out,
            TableChunk { first_row: 0, table_rows: self.n(), scale: 1.0 },
        )
    }

    /// [`QuantMatrix::embed`] for a matrix holding rows
    /// `[first_row, first_row + N)` of a table of `table_rows`: writes only the
    /// tokens whose id it holds (the table's last chunk also zeroes ids past
    /// the table), each row times `scale`.
    pub(super) fn embed_chunk(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        ids: &wgpu::Buffer,
        out: &wgpu::Buffer,
        chunk: TableChunk,
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
            &Constants::default()
                .set("WTYPE", self.ty().ggml_id())
                .set("K", self.k())
                .set("N", self.n())
                .set("ROW0", chunk.first_row)
                .set("ROWS", chunk.table_rows)
                .set("SCALE", chunk.scale),
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
