//! Where a decode token's time goes in a real model: attention, matmuls and
//! the rest. Attention and the matmuls are timed alone with the report's
//! timer; the whole step (one `forward` of one token, submitted and waited
//! for) by wall time, so "rest" is the difference: norms, RoPE, KV writes,
//! the small element-wise dispatches and submission.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::setup::Decode;
use super::timer::Timer;
use crate::model::ops::{Batch, QuantMatrix};
use crate::model::{Gguf, LlamaConfig, LlamaModel};
use crate::{Error, GpuContext, Result, SplitPolicy};

/// Decode steps timed for the whole-step figure (median).
const STEPS: usize = 8;

#[derive(Clone, Debug, Serialize)]
pub struct TokenTime {
    pub model: String,
    /// Tokens in the cache when the timed token is decoded.
    pub ctx: u32,
    pub step_ms: f64,
    pub attention_ms: f64,
    pub matmul_ms: f64,
    pub rest_ms: f64,
}

pub(crate) fn token_time(ctx: &GpuContext, timer: &Timer, path: &Path, kv_len: u32) -> Result<TokenTime> {
    let gguf = Gguf::open(path)?;
    let cfg = LlamaConfig::from_gguf(&gguf)?;
    let layers = cfg.n_layers as usize;

    let mut attention_ms = 0.0;
    for layer in 0..layers {
        let d = Decode::new(ctx, cfg.attention_config(layer)?, &[kv_len], SplitPolicy::default())?;
        attention_ms += timer.ms(|e| d.encode(e))?;
    }

    let one = Batch::new(ctx, 1)?;
    let mut names: Vec<String> = (0..layers)
        .flat_map(|i| {
            ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
                .map(|t| format!("blk.{i}.{t}.weight"))
        })
        .collect();
    names.push(if cfg.tied_output { "token_embd.weight" } else { "output.weight" }.into());
    let mut matmul_ms = 0.0;
    for name in &names {
        let m = QuantMatrix::from_gguf(ctx, &gguf, name)?;
        let x = ctx.storage_buffer("bench x", m.k() as u64 * 4);
        let y = ctx.storage_buffer("bench y", m.n() as u64 * 4);
        matmul_ms += timer.ms(|e| m.matmul(e, &one, &x, &y))?;
    }

    let mut model = LlamaModel::load(ctx, &gguf, kv_len + STEPS as u32, |_, _| {})?;
    let seq = model.cache_mut().add_sequence();
    let prompt: Vec<u32> = (0..kv_len - 1).map(|i| 100 + i % 1000).collect();
    model.forward(seq, &prompt)?;
    let wait =
        || ctx.device().poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()));
    wait()?;
    let mut steps = Vec::with_capacity(STEPS);
    for i in 0..STEPS {
        let t = Instant::now();
        model.forward(seq, &[200 + i as u32])?;
        wait()?;
        steps.push(t.elapsed().as_secs_f64() * 1e3);
    }
    steps.sort_by(f64::total_cmp);
    let step_ms = steps[STEPS / 2];
    Ok(TokenTime {
        model: path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        ctx: kv_len,
        step_ms,
        attention_ms,
        matmul_ms,
        rest_ms: step_ms - attention_ms - matmul_ms,
    })
}
