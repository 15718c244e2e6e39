//! Host side of `model/matvec.wgsl` (decode) and `model/matmul.wgsl`
//! (prefill): y[t, n] = sum_k x[t, k] * W[n, k] on quantised weights.

use super::{check_index, grid, Batch, QuantMatrix};
use crate::attention::check_len;
use crate::gpu::shader::{Kernel, KvStorage, ShaderVariant};
use crate::gpu::Constants;
use crate::{Error, Result};

/// Token counts up to this use the matvec kernel under [`MatmulPath::Auto`]:
/// one matvec workgroup row covers them. On lavapipe the tiled kernel is
/// already faster at 8 tokens (576x1536 Q4_1: 7.4 ms vs 12 ms), the matvec
/// 2x faster at one.
pub const MATVEC_MAX_TOKENS: u32 = 4;

/// Rows and tokens one workgroup of each kernel covers (as in the WGSL).
const MATVEC_TILE: (u32, u32) = (8, 4);
const MATMUL_TILE: (u32, u32) = (64, 16);

/// Which kernel runs a matmul.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MatmulPath {
    /// Matvec for at most [`MATVEC_MAX_TOKENS`] tokens, tiled beyond.
    #[default]
    Auto,
    /// The decode kernel: threads split K, a workgroup reduces a few rows.
    Matvec,
    /// The prefill kernel: a weight block is dequantised once per token tile.
    Tiled,
}

/// Where a matmul writes: token t's output row starts at float
/// `t * stride + offset` of `y`. The default (`stride` None = N, offset 0)
/// is a dense `[tokens, N]`; Q, K and V can share one `[tokens, q + k + v]`
/// buffer with stride q + k + v and offsets 0, q and q + k.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatmulOptions {
    pub path: MatmulPath,
    pub stride: Option<u32>,
    pub offset: u32,
}

impl QuantMatrix {
    /// Records `y = x W^T` for the batch's tokens: `x` is `[tokens, K]` f32,
    /// `y` is `[tokens, N]` f32.
    pub fn matmul(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<()> {
        self.matmul_with(encoder, batch, x, y, &MatmulOptions::default())
    }

    /// [`QuantMatrix::matmul`] with an output layout and kernel choice.
    pub fn matmul_with(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        opts: &MatmulOptions,
    ) -> Result<()> {
        let (k, n, tokens) = (self.k(), self.n(), batch.tokens());
        let stride = opts.stride.unwrap_or(n);
        if opts.offset as u64 + n as u64 > stride as u64 {
            return Err(Error::InvalidOp {
                op: "matmul",
                why: format!("output offset {} + N {n} exceeds the output stride {stride}", opts.offset),
            });
        }
        let out_floats = (tokens as u64 - 1) * stride as u64 + opts.offset as u64 + n as u64;
        check_index("matmul activations", tokens as u64 * k as u64)?;
        check_index("matmul outputs", out_floats)?;
        check_len("matmul input", x, tokens as u64 * k as u64 * 4)?;
        check_len("matmul output", y, out_floats * 4)?;
        if x == y {
            return Err(Error::Aliased { what: "matmul output", other: "matmul input" });
        }
        let tiled = match opts.path {
            MatmulPath::Auto => tokens > MATVEC_MAX_TOKENS,
            MatmulPath::Matvec => false,
            MatmulPath::Tiled => true,
        };
        let (kernel, (rows, toks)) =
            if tiled { (Kernel::Matmul, MATMUL_TILE) } else { (Kernel::Matvec, MATVEC_TILE) };
        let [gx, gy] = grid(n.div_ceil(rows) as u64, "matmul row groups")?;
        let gz = tokens.div_ceil(toks);
        let limit = self.ctx.limits().max_compute_workgroups_per_dimension;
        if gz > limit {
            return Err(Error::BatchTooLarge {
                what: "matmul tokens",
                got: tokens as u64,
                max: (limit * toks) as u64,
            });
        }
        let pipeline = self.ctx.pipeline(
            ShaderVariant { kernel, kv: KvStorage::F32, subgroups: false },
            &Constants::default()
                .set("WTYPE", self.ty().ggml_id())
                .set("K", k)
                .set("N", n)
                .set("Y_STRIDE", stride)
                .set("Y_OFFSET", opts.offset),
        )?;
        self.ctx.dispatch(
            encoder,
            &pipeline,
            &[batch.buffer(), x, &self.scales, &self.quants, y],
            [gx, gy, gz],
        )
    }
}
