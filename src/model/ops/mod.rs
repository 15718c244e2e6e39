//! GPU building blocks of the llama and gemma3 forward passes, each with a
//! CPU twin in [`reference`]: matmul on quantised weights ([`QuantMatrix`],
//! and [`ChunkedMatrix`] for tables past one binding), embedding lookup,
//! RMSNorm (per token, per head, or added into the residual), SwiGLU, GeGLU,
//! the residual add, biases and the greedy argmax; the matmul can fold the
//! residual add, SwiGLU, GeGLU or a Q/K/V split into itself. Activations are f32.
//!
//! Every op records into a caller's `wgpu::CommandEncoder` and reads the
//! step's token count from a [`Batch`], so a whole layer is one submission and
//! a changing token count never recompiles a pipeline.
//!
//! ```no_run
//! # async fn demo() -> wgqa::Result<()> {
//! use wgqa::model::ops::{Batch, QuantMatrix};
//! use wgqa::model::Gguf;
//! let ctx = wgqa::GpuContext::new().await?;
//! let gguf = Gguf::open(wgqa::model::DEFAULT_MODEL)?;
//! let wq = QuantMatrix::from_gguf(&ctx, &gguf, "blk.0.attn_q.weight")?;
//! let batch = Batch::new(&ctx, 1)?;
//! let x = ctx.storage_buffer("x", wq.k() as u64 * 4);
//! let q = ctx.storage_buffer("q", wq.n() as u64 * 4);
//! let mut encoder = ctx.device().create_command_encoder(&Default::default());
//! wq.matmul(&mut encoder, &batch, &x, &q)?;
//! ctx.queue().submit([encoder.finish()]);
//! # Ok(()) }
//! ```

mod argmax;
mod batch;
mod chunked;
mod elementwise;
mod embed;
mod head_norm;
pub(crate) mod kernels;
mod matmul;
mod quant_matrix;
mod repack;
mod rms_norm;

pub use argmax::{argmax, ARGMAX_NONE};
pub use batch::Batch;
pub use chunked::ChunkedMatrix;
pub use elementwise::{add, add_bias, geglu, swiglu};
pub use head_norm::HeadNorm;
pub use matmul::{Fusion, MatmulOptions, MatmulPath, Output, MATVEC_MAX_TOKENS};
pub use quant_matrix::QuantMatrix;
pub use repack::{repack, Repacked};
pub use rms_norm::RmsNorm;
