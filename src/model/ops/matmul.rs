//! Host side of `model/matvec.wgsl` (decode) and `model/matmul.wgsl`
//! (prefill): y[t, n] = sum_k x[t, k] * W[n, k] on quantised weights, with
//! the residual add, SwiGLU, GeGLU or a Q/K/V split folded in where asked
//! (`model/matmul_io.wgsl`).

use super::kernels::{MATMUL, MATVEC};
use super::{Batch, QuantMatrix};
use crate::gpu::check_len;
use crate::gpu::shader::{KvStorage, ShaderVariant};
use crate::gpu::Constants;
use crate::gpu::{check_index, grid};
use crate::{Error, Result};

/// Token counts up to this use the matvec kernel under [`MatmulPath::Auto`]:
/// one matvec workgroup row covers them. On lavapipe the tiled kernel is
/// already faster at 8 tokens (576x1536 Q4_1: 7.4 ms vs 12 ms), the matvec
/// 2x faster at one.
pub const MATVEC_MAX_TOKENS: u32 = 4;

/// Rows and tokens one workgroup of each kernel covers (as in the WGSL:
/// the matvec's 16 threads own 4 rows each, or 2 row pairs under SwiGLU).
const MATVEC_TILE: (u32, u32) = (64, 1);
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

/// What a fused matmul reads and writes, beyond `y = x W^T`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Fusion<'a> {
    pub path: MatmulPath,
    pub output: Output<'a>,
}

/// How a fused matmul writes its rows.
#[derive(Clone, Copy, Debug, Default)]
pub enum Output<'a> {
    /// `y = x W^T`, `[tokens, N]`.
    #[default]
    Store,
    /// `y += x W^T`: the residual add.
    Add,
    /// The weight is `[gate; up]` (N/2 rows each): `y = silu(gate) * up`,
    /// `[tokens, N/2]`.
    Swiglu,
    /// As [`Output::Swiglu`] with `gelu(gate)` (tanh approximation): GeGLU.
    Geglu,
    /// Rows `[0, at[0])` to `y`, `[at[0], at[1])` to `rest[0]` and
    /// `[at[1], N)` to `rest[1]`, each dense: Q, K and V of one matmul.
    Split { at: [u32; 2], rest: [&'a wgpu::Buffer; 2] },
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
        let n = self.n();
        let stride = opts.stride.unwrap_or(n);
        if opts.offset as u64 + n as u64 > stride as u64 {
            return Err(Error::InvalidOp {
                op: "matmul",
                why: format!("output offset {} + N {n} exceeds the output stride {stride}", opts.offset),
            });
        }
        let fusion = Fusion { path: opts.path, ..Default::default() };
        self.encode(encoder, batch, x, y, &fusion, (stride, opts.offset))
    }

    /// A matmul with its neighbour folded in (see [`Fusion`]); `y` is dense.
    /// The CPU twins are in [`super::reference`]: `matmul`, then `add`,
    /// `swiglu_halves` or `geglu_halves`.
    pub fn matmul_fused(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        fusion: &Fusion,
    ) -> Result<()> {
        let invalid = |why: String| Err(Error::InvalidOp { op: "matmul", why });
        let n = self.n();
        let width = match fusion.output {
            Output::Swiglu | Output::Geglu if !n.is_multiple_of(2) => {
                return invalid(format!("a gated unit needs an even N, got {n}"))
            }
            Output::Swiglu | Output::Geglu => n / 2,
            Output::Split { at, .. } if !(at[0] <= at[1] && at[1] <= n) => {
                return invalid(format!("split rows {at:?} must be ordered and at most N {n}"))
            }
            Output::Split { at, .. } => at[0],
            _ => n,
        };
        self.encode(encoder, batch, x, y, fusion, (width, 0))
    }

    fn encode(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        batch: &Batch,
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
        fusion: &Fusion,
        (stride, offset): (u32, u32),
    ) -> Result<()> {
        let (k, n, tokens) = (self.k(), self.n(), batch.tokens());
        let t = tokens as u64;
        // Rows the kernel's threads own, and the part of them that goes to `y`.
        let rows = if let Output::Swiglu | Output::Geglu = fusion.output { n / 2 } else { n };
        let y_rows = if let Output::Split { at, .. } = fusion.output { at[0] } else { rows };
        let out_floats = (t - 1) * stride as u64 + offset as u64 + y_rows as u64;
        check_index("matmul activations", t * k as u64)?;
        check_index("matmul outputs", out_floats)?;
        check_len("matmul input", x, t * k as u64 * 4)?;
        check_len("matmul output", y, out_floats * 4)?;
        if x == y {
            return Err(Error::Aliased { what: "matmul output", other: "matmul input" });
        }
        let (split, [y1, y2]) = match fusion.output {
            Output::Split { at, rest } => {
                for (what, buf, w) in
                    [("matmul K output", rest[0], at[1] - at[0]), ("matmul V output", rest[1], n - at[1])]
                {
                    check_len(what, buf, t * w as u64 * 4)?;
                    if buf == x || buf == y {
                        return Err(Error::Aliased { what, other: "another matmul buffer" });
                    }
                }
                if rest[0] == rest[1] {
                    return Err(Error::Aliased { what: "matmul V output", other: "matmul K output" });
                }
                (at, rest)
            }
            // No split: y1 and y2 are never written.
            _ => ([n, n], self.ctx.spare_buffers()),
        };
        let (out, act) = match fusion.output {
            Output::Store | Output::Split { .. } => (0, 0),
            Output::Add => (1, 0),
            Output::Swiglu => (2, 0),
            Output::Geglu => (2, 1),
        };
        let tiled = match fusion.path {
            MatmulPath::Auto => tokens > MATVEC_MAX_TOKENS,
            MatmulPath::Matvec => false,
            MatmulPath::Tiled => true,
        };
        let (kernel, (mut tile_rows, toks)) =
            if tiled { (&MATMUL, MATMUL_TILE) } else { (&MATVEC, MATVEC_TILE) };
        if !tiled && out == 2 {
            tile_rows /= 2;
        }
        let [gx, gy] = grid(rows.div_ceil(tile_rows) as u64, "matmul row groups")?;
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
                .set("Y_OFFSET", offset)
                .set("OUT", out)
                .set("ACT", act)
                .set("N0", split[0])
                .set("N1", split[1]),
        )?;
        self.ctx.dispatch(
            encoder,
            &pipeline,
            &[batch.buffer(), x, &self.scales, &self.quants, y, y1, y2],
            [gx, gy, gz],
        )
    }
}
