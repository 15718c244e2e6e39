//! The weights of a llama or gemma3 model on the GPU: matrices stay in their
//! file type (Q4_1, Q8_0, ...) and are dequantised inside the kernels; norm
//! scales are f32. The embedding and output tables are split by rows where
//! they pass the adapter's binding limits. Every shape is checked against the [`LlamaConfig`] at load. The Q, K
//! and V projections are stacked into one matrix, as are gate and up, so
//! each pair or triple is one matmul (when their types agree).

use super::config::LlamaConfig;
use super::tensors::{bias_tensor, block_tensor, llama_tensors, POST_NORMS, QK_NORMS};
use crate::error::Result;
use crate::model::ops::{ChunkedMatrix, HeadNorm, QuantMatrix, RmsNorm};
use crate::model::Gguf;
use crate::GpuContext;

/// One transformer block.
pub(crate) struct BlockWeights {
    pub attn_norm: RmsNorm,
    /// Q, K and V stacked (`[q + k + v, embedding]`), or the three apart
    /// when their types differ.
    pub qkv: Vec<QuantMatrix>,
    pub wo: QuantMatrix,
    pub ffn_norm: RmsNorm,
    /// Gate and up stacked (`[2 ffn, embedding]`), or the two apart.
    pub gate_up: Vec<QuantMatrix>,
    pub down: QuantMatrix,
    /// Q, K and V biases (f32), when the file has them.
    pub qkv_bias: Option<[wgpu::Buffer; 3]>,
    /// Per-head Q and K norms, when the config has them.
    pub qk_norm: Option<[HeadNorm; 2]>,
    /// Norms of the attention and MLP outputs, when the config has them.
    pub post_norms: Option<[RmsNorm; 2]>,
}

/// Every weight of the model.
pub(crate) struct Weights {
    pub embedding: ChunkedMatrix,
    pub blocks: Vec<BlockWeights>,
    pub output_norm: RmsNorm,
    /// `None` when the head is tied to the embedding.
    pub output: Option<ChunkedMatrix>,
}

impl Weights {
    /// Uploads every tensor the config names, calling `progress(done, total)`
    /// in bytes of tensor data after each one.
    pub fn load(
        ctx: &GpuContext,
        gguf: &Gguf,
        config: &LlamaConfig,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Weights> {
        let mut total = 0;
        for (name, _) in llama_tensors(config) {
            total += gguf.tensor(&name)?.n_bytes;
        }
        let mut loader = Loader { ctx, gguf, config, done: 0, total, progress: &mut progress };

        let (e, f, vocab) = (config.embedding, config.ffn, config.vocab_size);
        let embedding = loader.table("token_embd.weight", vocab, e)?;
        let output_norm = loader.norm("output_norm.weight")?;
        let output = match config.tied_output {
            true => None,
            false => Some(loader.table("output.weight", vocab, e)?),
        };
        let mut blocks = Vec::with_capacity(config.layers.len());
        for (i, a) in config.layers.iter().enumerate() {
            let name = |t: &str| format!("blk.{i}.{t}.weight");
            let (q, k, v) = (a.q_heads * a.head_dim, a.kv_heads * a.head_dim, a.kv_heads * a.v_head_dim);
            let qk_norm = match config.qk_norm {
                true => {
                    let [qn, kn] = QK_NORMS.map(|t| block_tensor(i, t));
                    Some([loader.head_norm(&qn, a.head_dim)?, loader.head_norm(&kn, a.head_dim)?])
                }
                false => None,
            };
            let post_norms = match config.post_norms {
                true => {
                    let [attn, ffw] = POST_NORMS.map(|t| block_tensor(i, t));
                    Some([loader.norm(&attn)?, loader.norm(&ffw)?])
                }
                false => None,
            };
            blocks.push(BlockWeights {
                attn_norm: loader.norm(&name("attn_norm"))?,
                qkv: loader.stack(&[(name("attn_q"), q), (name("attn_k"), k), (name("attn_v"), v)], e)?,
                wo: loader.matrix(&name("attn_output"), e, a.q_heads * a.v_head_dim)?,
                ffn_norm: loader.norm(&name("ffn_norm"))?,
                gate_up: loader.stack(&[(name("ffn_gate"), f), (name("ffn_up"), f)], e)?,
                down: loader.matrix(&name("ffn_down"), e, f)?,
                qkv_bias: match config.qkv_bias {
                    true => Some([
                        loader.vector(&bias_tensor(i, "attn_q"), q)?,
                        loader.vector(&bias_tensor(i, "attn_k"), k)?,
                        loader.vector(&bias_tensor(i, "attn_v"), v)?,
                    ]),
                    false => None,
                },
                qk_norm,
                post_norms,
            });
        }
        Ok(Weights { embedding, blocks, output_norm, output })
    }

    /// The output head: `output.weight`, or the embedding when tied.
    pub fn head(&self) -> &ChunkedMatrix {
        self.output.as_ref().unwrap_or(&self.embedding)
    }

    /// Bytes one decode token reads: everything but the embedding table, of
    /// which the lookup reads one row (a tied head reads all of it).
    pub fn bytes_read_per_token(&self) -> u64 {
        let e = &self.embedding;
        let row = e.gpu_bytes().div_ceil(e.n() as u64);
        let table = if self.output.is_none() { e.gpu_bytes() } else { 0 };
        self.gpu_bytes() - e.gpu_bytes() + table + row
    }

    /// GPU bytes of every weight buffer.
    pub fn gpu_bytes(&self) -> u64 {
        let norm = |n: &RmsNorm| n.width() as u64 * 4;
        let blocks: u64 = (self.blocks.iter())
            .map(|b| {
                (b.qkv.iter().chain(&b.gate_up).chain([&b.wo, &b.down]))
                    .map(QuantMatrix::gpu_bytes)
                    .sum::<u64>()
                    + norm(&b.attn_norm)
                    + norm(&b.ffn_norm)
                    + b.post_norms.iter().flatten().map(norm).sum::<u64>()
                    + b.qk_norm.iter().flatten().map(|n| n.head_dim() as u64 * 4).sum::<u64>()
                    + b.qkv_bias.iter().flatten().map(wgpu::Buffer::size).sum::<u64>()
            })
            .sum();
        self.embedding.gpu_bytes()
            + self.output.as_ref().map_or(0, ChunkedMatrix::gpu_bytes)
            + norm(&self.output_norm)
            + blocks
    }
}

/// Uploads tensors one by one, checking shapes and reporting progress.
struct Loader<'a, P: FnMut(u64, u64)> {
    ctx: &'a GpuContext,
    gguf: &'a Gguf,
    config: &'a LlamaConfig,
    done: u64,
    total: u64,
    progress: &'a mut P,
}

impl<P: FnMut(u64, u64)> Loader<'_, P> {
    /// An `[rows, cols]` matrix (ggml dims `[cols, rows]`).
    fn matrix(&mut self, name: &str, rows: u32, cols: u32) -> Result<QuantMatrix> {
        self.gguf.tensor_with_dims(name, &[cols as u64, rows as u64])?;
        let m = QuantMatrix::from_gguf(self.ctx, self.gguf, name)?;
        self.advance(name)?;
        Ok(m)
    }

    /// An `[rows, cols]` table (embedding or output head), split by rows
    /// where it passes the adapter's limits.
    fn table(&mut self, name: &str, rows: u32, cols: u32) -> Result<ChunkedMatrix> {
        self.gguf.tensor_with_dims(name, &[cols as u64, rows as u64])?;
        let m = ChunkedMatrix::from_gguf(self.ctx, self.gguf, name)?;
        self.advance(name)?;
        Ok(m)
    }

    /// `[rows, cols]` matrices stacked into one of their summed rows when
    /// they share a type, else each apart.
    fn stack(&mut self, parts: &[(String, u32)], cols: u32) -> Result<Vec<QuantMatrix>> {
        for (name, rows) in parts {
            self.gguf.tensor_with_dims(name, &[cols as u64, *rows as u64])?;
        }
        let ty = self.gguf.tensor(&parts[0].0)?.ty;
        let mut same = true;
        for (name, _) in parts {
            same &= self.gguf.tensor(name)?.ty == ty;
        }
        let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
        let out = match same {
            true => vec![QuantMatrix::stacked(self.ctx, self.gguf, &names)?],
            false => {
                names.iter().map(|n| QuantMatrix::from_gguf(self.ctx, self.gguf, n)).collect::<Result<_>>()?
            }
        };
        for name in names {
            self.advance(name)?;
        }
        Ok(out)
    }

    /// A norm scale of one value per embedding element.
    fn norm(&mut self, name: &str) -> Result<RmsNorm> {
        self.gguf.tensor_with_dims(name, &[self.config.embedding as u64])?;
        let n = RmsNorm::from_gguf(self.ctx, self.gguf, name, self.config.rms_eps)?;
        self.advance(name)?;
        Ok(n)
    }

    /// A per-head norm scale of `head_dim` values.
    fn head_norm(&mut self, name: &str, head_dim: u32) -> Result<HeadNorm> {
        self.gguf.tensor_with_dims(name, &[head_dim as u64])?;
        let n = HeadNorm::from_gguf(self.ctx, self.gguf, name, self.config.rms_eps)?;
        self.advance(name)?;
        Ok(n)
    }

    /// An f32 vector of `len` (a bias).
    fn vector(&mut self, name: &str, len: u32) -> Result<wgpu::Buffer> {
        self.gguf.tensor_with_dims(name, &[len as u64])?;
        let b = self.ctx.upload(name, &self.gguf.dequantize(name)?);
        self.advance(name)?;
        Ok(b)
    }

    fn advance(&mut self, name: &str) -> Result<()> {
        self.done += self.gguf.tensor(name)?.n_bytes;
        (self.progress)(self.done, self.total);
        Ok(())
    }
}
