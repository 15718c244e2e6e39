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
/// the cache's storage type.
///
/// The reference stores K/V rounded as the cache does (f16, or int8 per row
/// after RoPE with the kernel's formula), so what remains is the kernel's f32
/// arithmetic plus rare rounding flips, where the GPU's RoPE (its cos/sin) or
/// division differs from the CPU's in the last bits next to a rounding tie.
/// An int8 flip moves one stored value by its row's scale / 127, about 32x an
/// f16 flip: in K it moves a logit by up to |q|·scale/127·SCALE. Measured on
/// lavapipe over the property tests: int8 max |Δ| 2.3e-3 at |ref| 0.51
/// (half-split RoPE, head dim 256, scale 0.93; without RoPE at most 8e-7),
/// so int8's bound is 4x the worst.
pub fn attention(dtype: DType) -> Tolerance {
    match dtype {
        DType::F32 => Tolerance { atol: 5e-4, rtol: 2e-3 },
        DType::F16 => Tolerance { atol: 2e-3, rtol: 5e-3 },
        DType::Int8 => Tolerance { atol: 5e-3, rtol: 1e-2 },
    }
}

/// Rotated queries vs [`rope`](super::rope), absolute. The kernel turns each
/// angle exactly (0.32 fixed-point turns), so what remains is f32 cos/sin
/// and the rotation's two products, at any position.
pub const ROPE: Tolerance = Tolerance { atol: 2e-5, rtol: 0.0 };

/// The llama forward pass's ops (matmul, embedding, RMSNorm, SwiGLU, the
/// residual add) vs the model ops' references. The scale is sum_k |x_k w_k|
/// for a matmul (what bounds f32 rounding of the sum) and |ref| otherwise.
pub const MODEL_OPS: Tolerance = Tolerance { atol: 1e-5, rtol: 1e-4 };

/// Logits of the GPU forward pass vs the CPU reference model (both f16 KV,
/// the same dequantised weights, f32 accumulation in different orders),
/// absolute (measured: about 4e-3 on SmolLM2's logits of order 10, 3.6e-3
/// on Gemma-3-270M's over 13 tokens x 262144, lavapipe).
pub const LOGITS_VS_REFERENCE: f32 = 0.02;

/// Logits of decoding token by token (matvec kernels) vs prefilling (tiled
/// kernels): the same arithmetic in different orders, absolute (measured:
/// 1.2e-2 over 200 tokens).
pub const LOGITS_DECODE_VS_PREFILL: f32 = 0.02;
