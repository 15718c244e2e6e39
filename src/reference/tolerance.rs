//! How close a GPU result must come to its CPU reference, stated once: the
//! tests, and the browser playground (through `referenceTolerance`), all
//! read these. A result passes when |gpu - ref| <= atol + rtol * scale.

use crate::DType;

/// An absolute and a relative bound on |gpu - ref|.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    pub atol: f32,
    pub rtol: f32,
}

impl Tolerance {
    /// The largest |gpu - ref| allowed where the reference's scale is
    /// `scale` (|ref| unless the comparison says otherwise).
    pub fn bound(self, scale: f32) -> f32 {
        self.atol + self.rtol * scale
    }
}

/// Attention outputs vs [`attention`](super::attention), scale |ref|, by
/// the cache's storage type (the reference rounds K/V to f16 as stored; f16
/// storage is still held to a looser bound).
pub fn attention(dtype: DType) -> Tolerance {
    match dtype {
        DType::F32 => Tolerance { atol: 5e-4, rtol: 2e-3 },
        DType::F16 => Tolerance { atol: 2e-3, rtol: 5e-3 },
    }
}

/// The llama forward pass's ops (matmul, embedding, RMSNorm, SwiGLU, the
/// residual add) vs `model::ops::reference`. The scale is sum_k |x_k w_k|
/// for a matmul (what bounds f32 rounding of the sum) and |ref| otherwise.
pub const MODEL_OPS: Tolerance = Tolerance { atol: 1e-5, rtol: 1e-4 };

/// Logits of the GPU forward pass vs the CPU reference model (both f16 KV,
/// the same dequantised weights, f32 accumulation in different orders),
/// absolute (measured: about 4e-3 on logits of order 10).
pub const LOGITS_VS_REFERENCE: f32 = 0.02;

/// Logits of decoding token by token (matvec kernels) vs prefilling (tiled
/// kernels): the same arithmetic in different orders, absolute (measured:
/// 1.2e-2 over 200 tokens).
pub const LOGITS_DECODE_VS_PREFILL: f32 = 0.02;
