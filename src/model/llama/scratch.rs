//! Activation buffers of the GPU forward pass, sized once for the largest
//! step so that steps allocate nothing.

use std::cell::Cell;

use super::config::LlamaConfig;
use crate::{GpuContext, Result};

/// Buffers for up to `max_tokens` tokens per step. Widths that vary per
/// layer (variable GQA) take their largest value.
pub(crate) struct Scratch {
    /// Token ids of the step, `[tokens]` u32.
    pub ids: wgpu::Buffer,
    /// The residual stream, `[tokens, embedding]`.
    pub x: wgpu::Buffer,
    /// A normalised copy of the residual, input of the matmuls.
    pub h: wgpu::Buffer,
    /// Queries `[tokens, q_heads, head_dim]`, rotated in place.
    pub q: wgpu::Buffer,
    pub k: wgpu::Buffer,
    pub v: wgpu::Buffer,
    /// Attention output `[tokens, q_heads, v_head_dim]`.
    pub attn: wgpu::Buffer,
    /// SwiGLU of the gate and up projections (the gate alone when the two
    /// are separate matmuls), input of the down projection.
    pub gate: wgpu::Buffer,
    /// The up projection, when it is not stacked with the gate.
    pub up: wgpu::Buffer,
    /// The last token's residual and its normalised copy: the head runs on
    /// them only, so a prefill costs one output-head matvec, not one per token.
    pub last_x: wgpu::Buffer,
    pub last_h: wgpu::Buffer,
    /// The last token's logits, `[vocab]`.
    pub logits: wgpu::Buffer,
    /// Where the logits are copied for reading; mapped only by
    /// `LlamaModel::last_logits`, between steps.
    pub staging: wgpu::Buffer,
    /// Whether `staging` holds this step's logits yet.
    pub logits_staged: Cell<bool>,
    /// The greedy token of the step (one u32) and its readback copy.
    pub token: wgpu::Buffer,
    pub token_staging: wgpu::Buffer,
}

impl Scratch {
    /// Errors (before creating anything) when a buffer would pass the
    /// adapter's buffer or binding limits.
    pub fn new(ctx: &GpuContext, config: &LlamaConfig, max_tokens: u32) -> Result<Scratch> {
        let t = max_tokens as u64;
        let widest =
            |f: fn(&crate::AttentionConfig) -> u32| config.layers.iter().map(f).max().unwrap_or(0) as u64;
        let q = widest(|a| a.q_heads * a.head_dim);
        let k = widest(|a| a.kv_heads * a.head_dim);
        let v = widest(|a| a.kv_heads * a.v_head_dim);
        let attn = widest(|a| a.q_heads * a.v_head_dim);
        let (e, f, vocab) = (config.embedding as u64, config.ffn as u64, config.vocab_size as u64);
        let sizes = [("activations", t * e.max(f).max(q).max(k).max(v).max(attn)), ("logits", vocab)];
        for (what, n) in sizes {
            ctx.check_buffer_size(n * 4, what)?;
        }
        let floats = |label: &str, n: u64| ctx.storage_buffer(label, n * 4);
        let readback = |label: &str, bytes: u64| {
            ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes.next_multiple_of(4),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        Ok(Scratch {
            ids: floats("wgqa token ids", t),
            x: floats("wgqa residual", t * e),
            h: floats("wgqa normed", t * e),
            q: floats("wgqa q", t * q),
            k: floats("wgqa k", t * k),
            v: floats("wgqa v", t * v),
            attn: floats("wgqa attention out", t * attn),
            gate: floats("wgqa gate", t * f),
            up: floats("wgqa up", t * f),
            last_x: floats("wgqa last residual", e),
            last_h: floats("wgqa last normed", e),
            logits: floats("wgqa logits", vocab),
            staging: readback("wgqa logits readback", vocab * 4),
            logits_staged: Cell::new(false),
            token: floats("wgqa greedy token", 1),
            token_staging: readback("wgqa greedy token readback", 4),
        })
    }

    /// GPU bytes of all the buffers.
    pub fn gpu_bytes(&self) -> u64 {
        [
            &self.ids,
            &self.x,
            &self.h,
            &self.q,
            &self.k,
            &self.v,
            &self.attn,
            &self.gate,
            &self.up,
            &self.last_x,
            &self.last_h,
            &self.logits,
            &self.staging,
            &self.token,
            &self.token_staging,
        ]
        .iter()
        .map(|b| b.size())
        .sum()
    }
}
