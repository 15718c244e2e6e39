//! The benchmark report (`wgqa bench`): decode attention against a plain
//! copy kernel on the same adapter, and against itself under MHA / GQA / MQA,
//! a naive repeat-KV baseline, split-K, f16, int8 and prefill. Every cell is also
//! held to its roofline: max(bytes / copy bandwidth, FLOPs / FMA rate), both
//! roofs measured by kernels of their own on the same adapter, as is the
//! cost of an empty dispatch. Everything is measured in one run and reported
//! as ratios. Native only.

mod kernels;
mod model;
mod report;
mod setup;
mod timer;

use serde::Serialize;

pub(crate) use kernels::{COPY, FMA, REPEAT_KV};
pub use model::TokenTime;
pub use report::Report;
pub use setup::Decode;
pub use timer::Clock;

use crate::{AttentionConfig, DType, GpuContext, Result, SplitPolicy};
use setup::{Copy, Fma, Naive};
use timer::Timer;

/// How much to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Fewer runs and a smaller copy buffer, for CI.
    pub quick: bool,
    /// A llama GGUF whose decode token is broken into attention, matmuls and
    /// the rest; skipped when `None`.
    pub model: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DecodeCell {
    pub q_heads: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub ctx: u32,
    pub dtype: &'static str,
    pub ms: f64,
    pub gbps: f64,
    pub ratio_to_copy: f64,
    /// Attention FLOPs of the step: 2 (head_dim + v_head_dim) per query head and key.
    pub flops: u64,
    /// max(KV bytes / copy bandwidth, flops / FMA rate).
    pub roofline_ms: f64,
    /// roofline_ms / ms: 1 is as fast as this adapter allows.
    pub ratio_to_roofline: f64,
}

/// The cost of a dispatch that does nothing, and how many a model token takes.
#[derive(Clone, Debug, Serialize)]
pub struct DispatchOverhead {
    /// One empty dispatch in its own compute pass, as every kernel is recorded.
    pub empty_dispatch_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct GroupCell {
    pub q_heads: u32,
    pub ms: f64,
    pub relative_time: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Speedups {
    pub mha_over_gqa8: f64,
    pub mha_over_mqa: f64,
    pub over_naive_g4: f64,
    pub over_naive_g8: f64,
    pub split_k: f64,
    pub f16_over_f32: f64,
    pub int8_over_f16: f64,
    pub int8_over_f32: f64,
    pub prefill_over_decode: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Prefill {
    pub tokens: u32,
    pub ms: f64,
    pub tokens_per_s: f64,
    pub token_by_token_ms: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Batch {
    pub sequences: usize,
    pub lens: Vec<u32>,
    pub ms: f64,
    pub steps_per_s: f64,
    pub gbps: f64,
    pub ratio_to_copy: f64,
}

/// Empty dispatches per timed run of the dispatch-overhead figure.
const EMPTY_DISPATCHES: usize = 64;

/// Runs every figure on `ctx`'s adapter.
pub fn run(ctx: &GpuContext, opts: BenchOptions) -> Result<Report> {
    let timer = if opts.quick { Timer::new(ctx, 3, 2) } else { Timer::new(ctx, 7, 3) };
    let copy = Copy::new(ctx, if opts.quick { 32 << 20 } else { 128 << 20 });
    let copy_gbps = copy.bytes() as f64 / timer.ms(|e| copy.encode(e))? / 1e6;
    let fma = Fma::new(ctx, if opts.quick { 64 } else { 256 }, 4096);
    let fma_gflops = fma.flops() as f64 / timer.ms(|e| fma.encode(e))? / 1e6;
    let empty = Fma::new(ctx, 1, 0);
    let empty_dispatch_ms =
        timer.ms(|e| (0..EMPTY_DISPATCHES).try_for_each(|_| empty.encode(e)))? / EMPTY_DISPATCHES as f64;
    let roofline_ms =
        |bytes: u64, flops: u64| (bytes as f64 / copy_gbps).max(flops as f64 / fma_gflops) / 1e6;

    let cfg = |q, kv, d, dtype| AttentionConfig::new(q, kv, d).map(|c| c.with_dtype(dtype));
    let decode_run = |c: &AttentionConfig, lens: &[u32], split| -> Result<((f64, u64), u64)> {
        let d = Decode::new(ctx, c, lens, split)?;
        Ok(((timer.ms(|e| d.encode(e))?, d.kv_bytes()), d.flops()))
    };
    let decode_ms = |c: &AttentionConfig, lens: &[u32], split| -> Result<(f64, u64)> {
        Ok(decode_run(c, lens, split)?.0)
    };
    let auto = SplitPolicy::default();

    let mut decode = Vec::new();
    for (q, kv, d) in [(32, 32, 128), (32, 8, 128), (32, 1, 128), (9, 3, 64)] {
        for len in [512, 2048, 8192] {
            for dtype in DType::ALL {
                let ((ms, bytes), flops) = decode_run(&cfg(q, kv, d, dtype)?, &[len], auto)?;
                let gbps = bytes as f64 / ms / 1e6;
                let roof = roofline_ms(bytes, flops);
                decode.push(DecodeCell {
                    q_heads: q,
                    kv_heads: kv,
                    head_dim: d,
                    ctx: len,
                    dtype: dtype.name(),
                    ms,
                    gbps,
                    ratio_to_copy: gbps / copy_gbps,
                    flops,
                    roofline_ms: roof,
                    ratio_to_roofline: roof / ms,
                });
            }
        }
    }

    let f32_4096 = |q, kv| -> Result<f64> { Ok(decode_ms(&cfg(q, kv, 128, DType::F32)?, &[4096], auto)?.0) };
    let mut group_scaling = Vec::new();
    for q in [8, 16, 32, 64] {
        let ms = f32_4096(q, 8)?;
        let base = group_scaling.first().map_or(ms, |g: &GroupCell| g.ms);
        group_scaling.push(GroupCell { q_heads: q, ms, relative_time: ms / base });
    }
    let (mha, gqa8, gqa4, mqa) = (f32_4096(32, 32)?, f32_4096(32, 8)?, f32_4096(32, 4)?, f32_4096(32, 1)?);
    let naive = |kv| -> Result<f64> {
        let n = Naive::new(ctx, &cfg(32, kv, 128, DType::F32)?, 4096)?;
        timer.ms(|e| n.encode(e))
    };
    let mqa_8192 = cfg(32, 1, 128, DType::F32)?;
    let split_none = decode_ms(&mqa_8192, &[8192], SplitPolicy::Fixed(1))?.0;
    let split_auto = decode_ms(&mqa_8192, &[8192], auto)?.0;
    let f32_8192 = decode_ms(&cfg(32, 8, 128, DType::F32)?, &[8192], auto)?.0;
    let f16_8192 = decode_ms(&cfg(32, 8, 128, DType::F16)?, &[8192], auto)?.0;
    let int8_8192 = decode_ms(&cfg(32, 8, 128, DType::Int8)?, &[8192], auto)?.0;

    let prefill = prefill(ctx, &timer, &cfg(32, 8, 128, DType::F32)?, 512)?;

    let lens: Vec<u32> = (0..16).map(|i| 256 + i * (4096 - 256) / 15).collect();
    let (ms, bytes) = decode_ms(&cfg(32, 8, 128, DType::F16)?, &lens, auto)?;
    let gbps = bytes as f64 / ms / 1e6;
    let batch = Batch {
        sequences: lens.len(),
        lens,
        ms,
        steps_per_s: 1e3 / ms,
        gbps,
        ratio_to_copy: gbps / copy_gbps,
    };

    let token = match &opts.model {
        Some(path) => Some(model::token_time(ctx, &timer, path, 256, copy_gbps)?),
        None => None,
    };

    Ok(Report {
        adapter: report::Adapter::of(ctx),
        clock: timer.clock(),
        runs: timer.runs,
        reps: timer.reps,
        copy_gbps,
        fma_gflops,
        dispatch: DispatchOverhead { empty_dispatch_ms },
        decode,
        group_scaling,
        speedups: Speedups {
            mha_over_gqa8: mha / gqa8,
            mha_over_mqa: mha / mqa,
            over_naive_g4: naive(8)? / gqa8,
            over_naive_g8: naive(4)? / gqa4,
            split_k: split_none / split_auto,
            f16_over_f32: f32_8192 / f16_8192,
            int8_over_f16: f16_8192 / int8_8192,
            int8_over_f32: f32_8192 / int8_8192,
            prefill_over_decode: prefill.token_by_token_ms / prefill.ms,
        },
        prefill,
        batch,
        token,
    })
}

/// A causal prompt of `tokens` in one plan, against the same tokens one
/// decode step at a time (append + attention in both).
fn prefill(ctx: &GpuContext, timer: &Timer, cfg: &AttentionConfig, tokens: u32) -> Result<Prefill> {
    use crate::{KvCache, KvCacheConfig, Plan};
    let cache_cfg = KvCacheConfig::uniform(cfg.clone(), 1, setup::PAGE_SIZE, tokens);
    let n = tokens as u64;
    let q = ctx.storage_buffer("bench q", n * (cfg.q_heads * cfg.head_dim) as u64 * 4);
    let kv = ctx.storage_buffer("bench kv", n * (cfg.kv_heads * cfg.head_dim.max(cfg.v_head_dim)) as u64 * 4);
    let out = ctx.storage_buffer("bench out", n * (cfg.q_heads * cfg.v_head_dim) as u64 * 4);
    let step = |cache: &mut KvCache, plan: &Plan, enc: &mut wgpu::CommandEncoder| -> Result<()> {
        cache.append(enc, plan, 0, &kv, &kv, None)?;
        crate::attend(enc, cache, plan, 0, &q, &out)
    };

    let mut cache = KvCache::new(ctx, cache_cfg.clone())?;
    let seq = cache.add_sequence();
    let mut plan = Plan::new(ctx);
    cache.plan_append(&mut plan, &[(seq, tokens)])?;
    let ms = timer.ms(|e| step(&mut cache, &plan, e))?;

    let mut cache = KvCache::new(ctx, cache_cfg)?;
    let seq = cache.add_sequence();
    let one = Timer::new(ctx, 1, 1);
    let mut token_by_token_ms = 0.0;
    for _ in 0..tokens {
        cache.plan_append(&mut plan, &[(seq, 1)])?;
        token_by_token_ms += one.ms(|e| step(&mut cache, &plan, e))?;
    }
    Ok(Prefill { tokens, ms, tokens_per_s: tokens as f64 / ms * 1e3, token_by_token_ms })
}
