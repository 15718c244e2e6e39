//! The price of each point on the GQA spectrum, measured in one run for the
//! default model: perplexity on a shipped public-domain text, KV bytes per
//! token and at 2048 tokens, and decode ms/token at a long context, for the
//! model as shipped, expanded to MHA, MQA by each method, Variable GQA at two
//! budgets, and f32 and int8 instead of f16 KV storage (for the shipped
//! model and calibrated MQA).
//!
//! ```text
//! cargo run --release --example gqa_spectrum [-- --ctx 2048 --window 512]
//! ```
//!
//! Perplexity comes from the CPU reference forward pass (the twin the GPU
//! forward pass is tested against, with the same KV storage rounding): on a
//! CPU adapter it is several times faster than the GPU path. Decode time is
//! the GPU path on the default adapter: the cache is reserved up to the
//! context (its contents do not change the work) and single-token steps
//! are timed, median of several.

use std::time::Instant;

use wgqa::convert::{convert, ConvertOptions, KvTarget, Method};
use wgqa::model::{CpuModel, Gguf, LlamaConfig, LlamaModel, Tokenizer, DEFAULT_MODEL};
use wgqa::{DType, GpuContext, Plan, Result};

const TEXT: &str = "texts/pride-and-prejudice-ch1.txt";
const CALIBRATION: &str = "texts/calibration.txt";
const CALIBRATION_TOKENS: usize = 512;
const STEPS: usize = 3;

struct Args {
    ctx: u32,
    window: usize,
    /// Only the CPU perplexity of this model file.
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args { ctx: 2048, window: 512, only: None };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).and_then(|v| v.parse().ok());
        match (pair[0].as_str(), value) {
            ("--ctx", Some(v)) => a.ctx = v as u32,
            ("--window", Some(v)) => a.window = v,
            ("--only", _) => a.only = pair.get(1).cloned(),
            _ => eprintln!("ignoring {pair:?}: use --ctx N, --window N, --only MODEL"),
        }
    }
    a
}

struct Variant {
    name: String,
    gguf: Gguf,
    kv: DType,
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let args = args();
    let ctx = pollster::block_on(GpuContext::new())?;
    let adapter = ctx.adapter_info().name.clone();
    let src = Gguf::open(DEFAULT_MODEL)?;
    let cfg = LlamaConfig::from_gguf(&src)?;
    let tokenizer = Tokenizer::from_gguf(&src)?;
    let read = |p: &str| std::fs::read_to_string(p).map_err(|e| format!("reading {p}: {e}"));
    let text = tokenizer.encode(&read(TEXT)?)?;
    let mut calibration = tokenizer.encode(&read(CALIBRATION)?)?;
    calibration.truncate(CALIBRATION_TOKENS);
    println!(
        "adapter: {adapter} | text: {TEXT} ({} tokens, windows of {}) | calibration: {CALIBRATION} ({} tokens)",
        text.len(),
        args.window,
        calibration.len()
    );

    if let Some(path) = &args.only {
        let gguf = Gguf::open(path)?;
        let ppl = perplexity(&gguf, LlamaConfig::from_gguf(&gguf)?, &text, args.window)?;
        println!("{path}: perplexity {ppl:.2}");
        return Ok(());
    }
    let shipped = cfg.kv_bytes_per_token();
    let conv = |target: KvTarget, method: Method| -> Result<(Gguf, f64)> {
        let mut opts = ConvertOptions::new(target, method);
        opts.calibration = calibration.clone();
        let t = Instant::now();
        let out = convert(&src, &opts)?;
        if out.allocation.is_some() {
            let heads: Vec<String> = out.kv_heads.iter().map(u32::to_string).collect();
            println!("{:?}: --kv-heads-per-layer {}", opts.target, heads.join(","));
        }
        Ok((Gguf::from_vec(out.bytes)?, t.elapsed().as_secs_f64()))
    };
    let mut variants =
        vec![Variant { name: "shipped (GQA-3)".into(), gguf: Gguf::open(DEFAULT_MODEL)?, kv: DType::F16 }];
    let mut add = |name: String, target: KvTarget, method: Method, kv: DType| -> Result<()> {
        let (gguf, secs) = conv(target, method)?;
        eprintln!("converted {name} in {secs:.1} s");
        variants.push(Variant { name, gguf, kv });
        Ok(())
    };
    add("MHA (replicated)".into(), KvTarget::Uniform(cfg.q_heads), Method::Mean, DType::F16)?;
    for m in [Method::Mean, Method::First, Method::Random, Method::Calibrated] {
        add(format!("MQA, {}", m.name()), KvTarget::Uniform(1), m, DType::F16)?;
    }
    for (num, den) in [(2, 3), (1, 2)] {
        let budget = shipped * num / den;
        add(
            format!("Variable GQA {num}/{den}, calibrated"),
            KvTarget::Budget(budget),
            Method::Calibrated,
            DType::F16,
        )?;
    }
    for kv in [DType::F32, DType::Int8] {
        let name = format!("shipped, {} KV", kv.name());
        variants.push(Variant { name, gguf: Gguf::open(DEFAULT_MODEL)?, kv });
    }
    let mqa = variants.iter().find(|v| v.name == "MQA, calibrated").expect("converted above");
    let gguf = Gguf::from_vec(mqa.gguf.bytes().to_vec())?;
    variants.push(Variant { name: "MQA, calibrated, int8 KV".into(), gguf, kv: DType::Int8 });

    println!(
        "\n| model | KV heads per layer | perplexity | KV bytes/token | KV bytes at 2048 tokens | decode ms/token at {} tokens |",
        args.ctx
    );
    println!("|---|---|---|---|---|---|");
    for v in &variants {
        let config = LlamaConfig::from_gguf(&v.gguf)?.with_kv_dtype(v.kv);
        let t = Instant::now();
        let ppl = perplexity(&v.gguf, config.clone(), &text, args.window)?;
        let ppl_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let ms = decode_ms(&ctx, &v.gguf, config.clone(), args.ctx)?;
        eprintln!(
            "{}: perplexity in {ppl_s:.0} s, decode timing in {:.0} s",
            v.name,
            t.elapsed().as_secs_f64()
        );
        println!(
            "| {} | {} | {:.2} | {} | {:.2} MB | {:.1} |",
            v.name,
            heads_summary(&config),
            ppl,
            config.kv_bytes_per_token(),
            config.kv_bytes_per_token() as f64 * 2048.0 / 1e6,
            ms
        );
    }
    Ok(())
}

/// "3" when every layer has 3 KV heads, else a count per value ("12x3 18x1").
fn heads_summary(cfg: &LlamaConfig) -> String {
    let heads: Vec<u32> = cfg.layers.iter().map(|l| l.kv_heads).collect();
    if heads.iter().all(|&h| h == heads[0]) {
        return heads[0].to_string();
    }
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for h in heads {
        match counts.iter_mut().find(|c| c.0 == h) {
            Some(c) => c.1 += 1,
            None => counts.push((h, 1)),
        }
    }
    counts.iter().map(|(h, n)| format!("{n}x{h}")).collect::<Vec<_>>().join(" ")
}

/// Perplexity over `tokens` in independent windows (as `wgqa perplexity`).
fn perplexity(gguf: &Gguf, config: LlamaConfig, tokens: &[u32], window: usize) -> Result<f64> {
    let mut model = CpuModel::with_config(gguf, config)?;
    let (mut nll, mut scored) = (0.0, 0usize);
    for chunk in tokens.chunks(window).filter(|c| c.len() >= 2) {
        let ppl = model.perplexity(chunk)?;
        nll += ppl.ln() * (chunk.len() - 1) as f64;
        scored += chunk.len() - 1;
    }
    Ok((nll / scored as f64).exp())
}

/// Median ms of a one-token decode step with `kv_len - 1` tokens already cached.
fn decode_ms(ctx: &GpuContext, gguf: &Gguf, config: LlamaConfig, kv_len: u32) -> Result<f64> {
    let mut model = LlamaModel::with_config(ctx, gguf, config, kv_len + STEPS as u32 + 1, |_, _| {})?;
    let seq = model.cache_mut().add_sequence();
    let mut plan = Plan::new(ctx);
    model.cache_mut().plan_append(&mut plan, &[(seq, kv_len - 1)])?;
    let wait = || {
        ctx.device().poll(wgpu::PollType::wait_indefinitely()).map_err(|e| wgqa::Error::Gpu(e.to_string()))
    };
    model.forward(seq, &[200])?; // warm-up: pipelines built, caches touched
    wait()?;
    let mut steps = Vec::with_capacity(STEPS);
    for i in 0..STEPS {
        let t = Instant::now();
        model.forward(seq, &[201 + i as u32])?;
        wait()?;
        steps.push(t.elapsed().as_secs_f64() * 1e3);
    }
    steps.sort_by(f64::total_cmp);
    Ok(steps[STEPS / 2])
}
