//! The CPU model's weights, f32, dequantised once at load and checked
//! against the config: shared by [`super::CpuModel`] and the converter's
//! calibration, which runs the same blocks with other K/V projections.

use super::ops::Matrix;
use crate::error::Result;
use crate::model::llama::tensors::{bias_tensor, block_tensor, POST_NORMS, QK_NORMS};
use crate::model::{Gguf, LlamaConfig};

/// One transformer block's weights.
pub(crate) struct Block {
    pub attn_norm: Vec<f32>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    pub wo: Matrix,
    pub ffn_norm: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
    /// Q, K and V biases, when the file has them.
    pub qkv_bias: Option<[Vec<f32>; 3]>,
    /// Per-head Q and K norms (`head_dim` wide), when the config has them.
    pub qk_norm: Option<[Vec<f32>; 2]>,
    /// The attention and MLP output norms, when the config has them.
    pub post_norms: Option<[Vec<f32>; 2]>,
}

/// Every weight of a model.
pub(crate) struct Weights {
    pub embedding: Matrix,
    pub blocks: Vec<Block>,
    pub output_norm: Vec<f32>,
    /// `None` when the head is tied to the embedding.
    pub output: Option<Matrix>,
}

impl Weights {
    /// Dequantises every weight `config` names, checking each shape.
    pub(crate) fn load(gguf: &Gguf, config: &LlamaConfig) -> Result<Weights> {
        let (e, f, vocab) = (config.embedding as usize, config.ffn as usize, config.vocab_size as usize);
        let embedding = matrix(gguf, "token_embd.weight", vocab, e)?;
        let blocks = config
            .layers
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let name = |t: &str| block_tensor(i, t);
                let (q, k, v) = (
                    (a.q_heads * a.head_dim) as usize,
                    (a.kv_heads * a.head_dim) as usize,
                    (a.kv_heads * a.v_head_dim) as usize,
                );
                let o_in = (a.q_heads * a.v_head_dim) as usize;
                let d = a.head_dim as usize;
                let pair = |names: [&str; 2], len: usize| -> Result<[Vec<f32>; 2]> {
                    Ok([
                        vector(gguf, &block_tensor(i, names[0]), len)?,
                        vector(gguf, &block_tensor(i, names[1]), len)?,
                    ])
                };
                let qk_norm = config.qk_norm.then(|| pair(QK_NORMS, d)).transpose()?;
                let post_norms = config.post_norms.then(|| pair(POST_NORMS, e)).transpose()?;
                let qkv_bias = match config.qkv_bias {
                    true => Some([
                        vector(gguf, &bias_tensor(i, "attn_q"), q)?,
                        vector(gguf, &bias_tensor(i, "attn_k"), k)?,
                        vector(gguf, &bias_tensor(i, "attn_v"), v)?,
                    ]),
                    false => None,
                };
                Ok(Block {
                    qkv_bias,
                    qk_norm,
                    post_norms,
                    attn_norm: vector(gguf, &name("attn_norm"), e)?,
                    wq: matrix(gguf, &name("attn_q"), q, e)?,
                    wk: matrix(gguf, &name("attn_k"), k, e)?,
                    wv: matrix(gguf, &name("attn_v"), v, e)?,
                    wo: matrix(gguf, &name("attn_output"), e, o_in)?,
                    ffn_norm: vector(gguf, &name("ffn_norm"), e)?,
                    gate: matrix(gguf, &name("ffn_gate"), f, e)?,
                    up: matrix(gguf, &name("ffn_up"), f, e)?,
                    down: matrix(gguf, &name("ffn_down"), e, f)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let output_norm = vector(gguf, "output_norm.weight", e)?;
        let output = match config.tied_output {
            true => None,
            false => Some(matrix(gguf, "output.weight", vocab, e)?),
        };
        Ok(Weights { embedding, blocks, output_norm, output })
    }

    /// The output head: its own matrix, or the embedding when tied.
    pub(crate) fn head(&self) -> &Matrix {
        self.output.as_ref().unwrap_or(&self.embedding)
    }
}

/// A `rows x cols` weight, checked against the tensor's dims (`[cols, rows]`
/// in ggml order).
fn matrix(gguf: &Gguf, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
    gguf.tensor_with_dims(name, &[cols as u64, rows as u64])?;
    Ok(Matrix { rows, cols, data: gguf.dequantize(name)? })
}

/// A 1-D weight (a norm's scale) of `len` values.
fn vector(gguf: &Gguf, name: &str, len: usize) -> Result<Vec<f32>> {
    gguf.tensor_with_dims(name, &[len as u64])?;
    gguf.dequantize(name)
}
