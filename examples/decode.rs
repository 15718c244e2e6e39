//! Decodes 256 steps after a 512-token prompt for MHA, GQA and MQA at equal
//! query heads, and prints the time per step and the KV-cache bytes of each.
//!
//! Random activations stand in for a model's Q/K/V projections (the model
//! arrives with `wgqa generate`); everything else is the real path: paged
//! cache, fused-RoPE append, RoPE on Q, attention, one submission per step.

use std::time::Instant;

use wgqa::{
    attend, AttentionConfig, DType, GpuContext, KvCache, KvCacheConfig, Plan, Result, Rope, RopeLayout,
};

const Q_HEADS: u32 = 32;
const HEAD_DIM: u32 = 128;
const LAYERS: usize = 4;
const PROMPT: u32 = 512;
const STEPS: u32 = 256;

fn main() -> Result<()> {
    let ctx = pollster::block_on(GpuContext::new())?;
    let caps = ctx.capabilities();
    println!(
        "adapter: {} ({:?}); shader-f16 {}, subgroups {}",
        ctx.adapter_info().name,
        ctx.adapter_info().backend,
        caps.shader_f16,
        caps.subgroups
    );
    println!(
        "{LAYERS} layers, {Q_HEADS} query heads, head dim {HEAD_DIM}, f16 KV, {PROMPT}-token prompt, {STEPS} decode steps\n"
    );
    println!("{:<6} {:>8} {:>12} {:>12} {:>16}", "", "KV heads", "ms/step", "vs MHA", "KV cache bytes");
    let mut mha_ms = None;
    for (name, kv_heads) in [("MHA", Q_HEADS), ("GQA-8", 8), ("MQA", 1)] {
        let cfg = AttentionConfig::new(Q_HEADS, kv_heads, HEAD_DIM)?.with_dtype(DType::F16);
        let (ms, bytes) = decode(&ctx, &cfg)?;
        let speedup = mha_ms.get_or_insert(ms);
        println!("{name:<6} {kv_heads:>8} {ms:>12.3} {:>11.2}x {bytes:>16}", *speedup / ms);
    }
    Ok(())
}

/// Median ms per decode step, and the cache's bytes in use at the end.
fn decode(ctx: &GpuContext, cfg: &AttentionConfig) -> Result<(f64, u64)> {
    let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg.clone(), LAYERS, 16, PROMPT + STEPS))?;
    let rope = Rope::new(ctx, RopeLayout::Adjacent, 1e4, HEAD_DIM)?;
    let seq = cache.add_sequence();
    let mut plan = Plan::new(ctx);
    let (q_width, kv_width) = ((Q_HEADS * HEAD_DIM) as usize, (cfg.kv_heads * HEAD_DIM) as usize);
    let q = ctx.upload("q", &noise(1, PROMPT as usize * q_width));
    let kv = ctx.upload("kv", &noise(2, PROMPT as usize * kv_width));
    let out = ctx.storage_buffer("out", PROMPT as u64 * q_width as u64 * 4);

    let step = |tokens: u32, cache: &mut KvCache, plan: &mut Plan| -> Result<()> {
        cache.plan_append(plan, &[(seq, tokens)])?;
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        for layer in 0..LAYERS {
            cache.append(&mut enc, plan, layer, &kv, &kv, Some(&rope))?;
            rope.apply(&mut enc, cache, plan, layer, &q)?;
            attend(&mut enc, cache, plan, layer, &q, &out)?;
        }
        ctx.queue().submit([enc.finish()]);
        ctx.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| wgqa::Error::Gpu(e.to_string()))?;
        Ok(())
    };
    step(PROMPT, &mut cache, &mut plan)?;
    let mut times = Vec::with_capacity(STEPS as usize);
    for _ in 0..STEPS {
        let t = Instant::now();
        step(1, &mut cache, &mut plan)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ctx.take_error()?;
    times.sort_by(f64::total_cmp);
    Ok((times[times.len() / 2], cache.bytes_in_use()))
}

/// Deterministic values in [-1, 1).
fn noise(seed: u32, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2654435761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}
