//! A weight matrix split by rows into chunks that each fit the adapter's
//! storage-binding and buffer limits: Gemma's 262144-row embedding (tied to
//! its output head) is larger than WebGPU's default 128 MiB binding even
//! quantised. The lookup runs once per chunk, each writing the tokens whose
//! id it holds; the matmul runs once per chunk into its columns of the
//! output. A matrix that fits is one chunk, and both are then exactly the
//! single-matrix ops.

use super::embed::TableChunk;
use super::{repack, Batch, MatmulOptions, QuantMatrix};
use crate::model::{Gguf, TensorType};
use crate::{Error, GpuContext, Result};

/// An `[N, K]` matrix as row chunks, each a [`QuantMatrix`].
#[derive(Debug)]
pub struct ChunkedMatrix {
    /// The chunks in row order, with their first rows.
    chunks: Vec<(u32, QuantMatrix)>,
    n: u32,
}

impl ChunkedMatrix {
    /// Uploads the 2-D GGUF tensor `name` in as few chunks as the limits allow.
    pub fn from_gguf(ctx: &GpuContext, gguf: &Gguf, name: &str) -> Result<Self> {
        let info = gguf.tensor(name)?;
        let invalid = |why: String| Error::InvalidMatrix { name: name.into(), why };
        let [k, n] = info.dims[..] else {
            return Err(invalid(format!("dims {:?} are not a matrix", info.dims)));
        };
        let (Ok(k), Ok(n)) = (u32::try_from(k), u32::try_from(n)) else {
            return Err(invalid(format!("dims {:?} are too large", info.dims)));
        };
        if k == 0 || n == 0 {
            return Err(invalid(format!("dims {:?} hold no rows", info.dims)));
        }
        let row_bytes = row_bytes(info.ty, k).ok_or_else(|| {
            invalid(format!("rows of {k} are not whole {} blocks of {}", info.ty.name(), info.ty.block_len()))
        })?;
        let bytes = gguf.tensor_bytes(info)?;
        let row =
            bytes.get(..row_bytes).ok_or_else(|| invalid("the tensor is shorter than one row".into()))?;
        let per_chunk = rows_per_chunk(ctx, name, info.ty, row)?;
        let mut chunks = Vec::new();
        for first in (0..n).step_by(per_chunk as usize) {
            let rows = per_chunk.min(n - first);
            let part = &bytes[first as usize * row_bytes..(first + rows) as usize * row_bytes];
            let label = if rows == n { name.to_string() } else { format!("{name} rows {first}..") };
            chunks.push((first, QuantMatrix::from_bytes(ctx, &label, info.ty, k, rows, part)?));
        }
        Ok(ChunkedMatrix { chunks, n })
    }

    /// Rows (the vocabulary of an embedding).
    pub fn n(&self) -> u32 {
        self.n
    }

    /// Elements per row.
    pub fn k(&self) -> u32 {
        self.chunks[0].1.k()
    }

    pub fn ty(&self) -> TensorType {
        self.chunks[0].1.ty()
    }

    /// How many chunks the rows are split into.
    pub fn chunk_count(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes of GPU buffers all chunks hold.
    pub fn gpu_bytes(&self) -> u64 {
        self.chunks.iter().map(|(_, m)| m.gpu_bytes()).sum()
    }

    /// Records `out[t, :] = scale * row ids[t]` (see [`QuantMatrix::embed`];
    /// an id past the last row gives a zero row).
    pub fn embed(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        ids: &wgpu::Buffer,
        out: &wgpu::Buffer,
        scale: f32,
    ) -> Result<()> {
        for (first_row, m) in &self.chunks {
            let chunk = TableChunk { first_row: *first_row, table_rows: self.n, scale };
            m.embed_chunk(encoder, batch, ids, out, chunk)?;
        }
        Ok(())
    }

    /// Records `y = x W^T` (`[tokens, N]`), each chunk writing its columns.
    pub fn matmul(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        for (first_row, m) in &self.chunks {
            let opts = MatmulOptions { stride: Some(self.n), offset: *first_row, ..Default::default() };
            m.matmul_with(encoder, batch, x, y, &opts)?;
        }
        Ok(())
    }
}

/// Bytes of one row of `k` elements of `ty` in the file; `None` unless the
/// row is whole blocks.
fn row_bytes(ty: TensorType, k: u32) -> Option<usize> {
    let k = k as usize;
    k.is_multiple_of(ty.block_len()).then(|| k / ty.block_len() * ty.block_bytes())
}

/// The most rows whose repacked buffers (quants, and the smaller scales)
/// fit both limits; `row` is one row's file bytes.
fn rows_per_chunk(ctx: &GpuContext, name: &str, ty: TensorType, row: &[u8]) -> Result<u32> {
    let r = repack(ty, row)?;
    let per_row = r.quants.len().max(r.scales.len()) as u64 * 4;
    ctx.check_buffer_size(per_row, &format!("one row of {name}, even split by rows"))?;
    let l = ctx.limits();
    let available = l.max_storage_buffer_binding_size.min(l.max_buffer_size);
    // At least one row fits (checked above), so the step is never 0.
    Ok(u32::try_from(available / per_row.max(1)).unwrap_or(u32::MAX).max(1))
}
