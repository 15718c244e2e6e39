//! A weight matrix kept quantised in GPU memory (see `repack.rs` for the
//! layout), with the shape checks every op on it relies on.

use super::repack::repack;
use crate::model::{Gguf, TensorType, QK};
use crate::{Error, GpuContext, Result};

/// An `[N, K]` weight matrix on the GPU: N rows of K elements, as a GGUF 2-D
/// tensor with dims `[K, N]` stores it (a 1-D tensor is one row). Values stay
/// in their file type (F32, F16, Q8_0, Q4_0 or Q4_1) and are dequantised
/// inside the kernels.
#[derive(Debug)]
pub struct QuantMatrix {
    pub(super) ctx: GpuContext,
    name: String,
    ty: TensorType,
    k: u32,
    n: u32,
    pub(super) scales: wgpu::Buffer,
    pub(super) quants: wgpu::Buffer,
}

impl QuantMatrix {
    /// Uploads the GGUF tensor `name`.
    pub fn from_gguf(ctx: &GpuContext, gguf: &Gguf, name: &str) -> Result<Self> {
        let info = gguf.tensor(name)?;
        let (k, n) = match info.dims[..] {
            [k] => (k, 1),
            [k, n] => (k, n),
            _ => {
                return Err(Error::InvalidMatrix {
                    name: name.into(),
                    why: format!("dims {:?} are not a matrix", info.dims),
                })
            }
        };
        let too_big =
            |d: u64| Error::InvalidMatrix { name: name.into(), why: format!("dimension {d} is too large") };
        let k = u32::try_from(k).map_err(|_| too_big(k))?;
        let n = u32::try_from(n).map_err(|_| too_big(n))?;
        Self::from_bytes(ctx, name, info.ty, k, n, gguf.tensor_bytes(info)?)
    }

    /// Uploads the GGUF matrices `names`, of one type and row width, as one
    /// matrix of their rows in order (Q, K and V, or gate and up, for one
    /// matmul each).
    pub fn stacked(ctx: &GpuContext, gguf: &Gguf, names: &[&str]) -> Result<Self> {
        let mut parts = Vec::with_capacity(names.len());
        for name in names {
            parts.push((gguf.tensor(name)?, *name));
        }
        let label = names.join("+");
        let Some(&(first, _)) = parts.first() else {
            return Err(Error::InvalidMatrix { name: label, why: "nothing to stack".into() });
        };
        let (mut n, mut bytes) = (0u64, Vec::new());
        for (info, name) in parts {
            if info.ty != first.ty || info.dims.len() != 2 || info.dims[0] != first.dims[0] {
                return Err(Error::InvalidMatrix {
                    name: name.into(),
                    why: format!(
                        "{} {:?} cannot be stacked under {} {:?}",
                        info.ty.name(),
                        info.dims,
                        first.ty.name(),
                        first.dims
                    ),
                });
            }
            n += info.dims[1];
            bytes.extend_from_slice(gguf.tensor_bytes(info)?);
        }
        let k = first.dims[0];
        let too_big =
            |d: u64| Error::InvalidMatrix { name: label.clone(), why: format!("dimension {d} is too large") };
        let (k, n) = (u32::try_from(k).map_err(|_| too_big(k))?, u32::try_from(n).map_err(|_| too_big(n))?);
        Self::from_bytes(ctx, &label, first.ty, k, n, &bytes)
    }

    /// Uploads `n` rows of `k` elements of type `ty` from their GGUF bytes.
    /// `name` only labels errors and buffers.
    pub fn from_bytes(
        ctx: &GpuContext,
        name: &str,
        ty: TensorType,
        k: u32,
        n: u32,
        bytes: &[u8],
    ) -> Result<Self> {
        let invalid = |why: String| Error::InvalidMatrix { name: name.into(), why };
        let unit = QK.max(ty.block_len()) as u32;
        if k == 0 || !k.is_multiple_of(unit) {
            return Err(invalid(format!("K = {k} must be a positive multiple of {unit} for {}", ty.name())));
        }
        if n == 0 {
            return Err(invalid("N must be at least 1".into()));
        }
        let elements = k as u64 * n as u64;
        // Word indices into the quants reach 32 per 32 elements for F32.
        if elements > u32::MAX as u64 {
            return Err(invalid(format!("{elements} elements do not fit u32 indices")));
        }
        let expected = ty.bytes_for(elements).unwrap_or(u64::MAX);
        if bytes.len() as u64 != expected {
            return Err(Error::WrongLength {
                what: "weight bytes",
                expected,
                got: bytes.len() as u64,
                unit: "bytes",
            });
        }
        let r = repack(ty, bytes)?;
        ctx.check_buffer_size(r.quants.len() as u64 * 4, "a weight matrix")?;
        let scales = ctx.upload(&format!("{name} scales"), &r.scales);
        let quants = ctx.upload(&format!("{name} quants"), &r.quants);
        ctx.take_error()?;
        Ok(QuantMatrix { ctx: ctx.clone(), name: name.into(), ty, k, n, scales, quants })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ty(&self) -> TensorType {
        self.ty
    }

    /// Elements per row (the input width of a matmul).
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Rows (the output width of a matmul, the vocabulary of an embedding).
    pub fn n(&self) -> u32 {
        self.n
    }

    /// Bytes of GPU buffers the matrix holds.
    pub fn gpu_bytes(&self) -> u64 {
        self.scales.size() + self.quants.size()
    }
}
