//! Where a decode token's time goes in a real model: attention, matmuls and
//! the rest. Attention and the matmuls are timed alone with the report's
//! timer; the whole step (one greedy decode step, its token read back) by
//! wall time, so "rest" is the difference: RoPE, KV writes, the argmax,
//! submission, readback and what the fused matmuls add. The step is also held
//! to the model's roofline: the weight and KV bytes one token reads, at the
//! copy kernel's bandwidth.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::setup::Decode;
use super::timer::Timer;
use crate::model::ops::{Batch, ChunkedMatrix, QuantMatrix};
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
    pub tokens_per_s: f64,
    /// Weight bytes one decode token reads (every matrix and norm, the
    /// output head, one embedding row).
    pub weight_bytes: u64,
    /// KV-cache bytes one decode token reads at `ctx` cached tokens.
    pub kv_bytes: u64,
    /// (weight_bytes + kv_bytes) / copy bandwidth.
    pub roofline_ms: f64,
    /// roofline_ms / step_ms.
    pub model_ratio_to_roofline: f64,
    /// Kernel dispatches (each in its own compute pass) and queue
    /// submissions of one decode token.
    pub dispatches: usize,
    pub submissions: u64,
}

pub(crate) fn token_time(
    ctx: &GpuContext,
    timer: &Timer,
    path: &Path,
    kv_len: u32,
    copy_gbps: f64,
) -> Result<TokenTime> {
    let gguf = Gguf::open(path)?;
    let cfg = LlamaConfig::from_gguf(&gguf)?;
    let layers = cfg.n_layers as usize;

    let mut attention_ms = 0.0;
    for layer in 0..layers {
        let d = Decode::new(ctx, cfg.attention_config(layer)?, &[kv_len], SplitPolicy::default())?;
        attention_ms += timer.ms(|e| d.encode(e))?;
    }

    let one = Batch::new(ctx, 1)?;
    // The matmuls of a decode token as the model runs them: Q/K/V stacked,
    // O, gate/up stacked, down, per layer, then the head.
    let stacks: Vec<Vec<String>> = (0..layers)
        .flat_map(|i| {
            let name = |t: &str| format!("blk.{i}.{t}.weight");
            [
                vec![name("attn_q"), name("attn_k"), name("attn_v")],
                vec![name("attn_output")],
                vec![name("ffn_gate"), name("ffn_up")],
                vec![name("ffn_down")],
            ]
        })
        .collect();
    let mut matmul_ms = 0.0;
    for names in &stacks {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        // Stacked only where the types agree, as the model loads them
        // (Gemma's V is Q8_0 beside a Q5_0 Q and K).
        let types = names.iter().map(|n| Ok(gguf.tensor(n)?.ty)).collect::<Result<Vec<_>>>()?;
        let groups: Vec<&[&str]> =
            if types.windows(2).all(|t| t[0] == t[1]) { vec![&names] } else { names.chunks(1).collect() };
        for group in groups {
            let m = QuantMatrix::stacked(ctx, &gguf, group)?;
            let x = ctx.storage_buffer("bench x", m.k() as u64 * 4);
            let y = ctx.storage_buffer("bench y", m.n() as u64 * 4);
            matmul_ms += timer.ms(|e| m.matmul(e, &one, &x, &y))?;
        }
    }
    // The head, split by rows as the model loads it where it passes a binding.
    let head = ChunkedMatrix::from_gguf(
        ctx,
        &gguf,
        if cfg.tied_output { "token_embd.weight" } else { "output.weight" },
    )?;
    let x = ctx.storage_buffer("bench x", head.k() as u64 * 4);
    let y = ctx.storage_buffer("bench y", head.n() as u64 * 4);
    matmul_ms += timer.ms(|e| head.matmul(e, &one, &x, &y))?;

    let mut model = LlamaModel::load(ctx, &gguf, kv_len + STEPS as u32, |_, _| {})?;
    let seq = model.cache_mut().add_sequence();
    let prompt: Vec<u32> = (0..kv_len - 1).map(|i| 100 + i % 1000).collect();
    model.forward(seq, &prompt)?;
    ctx.device().poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
    let mut steps = Vec::with_capacity(STEPS);
    let (mut dispatches, mut submissions) = (0, 0);
    for i in 0..STEPS {
        let (d, s) = (ctx.dispatches_recorded(), model.submissions());
        let t = Instant::now();
        // A greedy decode step as `wgqa generate` runs it: the token is
        // picked on the GPU and read back.
        pollster::block_on(model.step_greedy(seq, &[200 + i as u32]))?;
        steps.push(t.elapsed().as_secs_f64() * 1e3);
        (dispatches, submissions) = (ctx.dispatches_recorded() - d, model.submissions() - s);
    }
    steps.sort_by(f64::total_cmp);
    let step_ms = steps[STEPS / 2];
    let weight_bytes = model.weight_bytes_per_token();
    let kv_bytes = kv_len as u64 * model.cache().bytes_per_token();
    let roofline_ms = (weight_bytes + kv_bytes) as f64 / copy_gbps / 1e6;
    Ok(TokenTime {
        model: path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        ctx: kv_len,
        step_ms,
        attention_ms,
        matmul_ms,
        rest_ms: step_ms - attention_ms - matmul_ms,
        tokens_per_s: 1e3 / step_ms,
        weight_bytes,
        kv_bytes,
        roofline_ms,
        model_ratio_to_roofline: roofline_ms / step_ms,
        dispatches,
        submissions,
    })
}
