//! The model subcommands of the `wgqa` CLI: generate, perplexity, info and
//! tokenize.

use std::io::Write;
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};
use wgqa::model::{
    Activation, ChatTemplate, GenerateOptions, Generator, Gguf, LlamaConfig, LlamaModel, SamplerConfig,
    StopReason, Tokenizer,
};
use wgqa::{DType, GpuContext};

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// Parses `--kv-type`: f32, f16 or int8.
pub fn kv_type(name: &str) -> Result<DType, String> {
    DType::from_name(name).ok_or_else(|| format!("expected f32, f16 or int8, got {name:?}"))
}

/// Sampling and length options of `wgqa generate`.
#[derive(clap::Args)]
pub struct GenerateArgs {
    #[arg(long, default_value = wgqa::model::DEFAULT_MODEL)]
    model: PathBuf,
    #[arg(long, default_value = "The capital of France is")]
    prompt: String,
    /// Wrap the prompt as a user turn in the model's chat template.
    #[arg(long)]
    chat: bool,
    #[arg(long, default_value_t = 128)]
    max_tokens: usize,
    /// 0 is greedy (the most likely token every step).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Keep the k most likely tokens; 0 keeps all.
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Keep the most likely tokens whose probability reaches p; 1 keeps all.
    #[arg(long, default_value_t = 0.95)]
    top_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Tokens the KV cache holds (prompt + generated).
    #[arg(long, default_value_t = 2048)]
    kv_tokens: u32,
    /// KV-cache storage: f32, f16 or int8 (a byte per value, a scale per row).
    #[arg(long, default_value = "f16", value_parser = kv_type)]
    kv_type: DType,
}

pub fn generate(args: GenerateArgs) -> CliResult {
    // Options are checked before the model is read, so a typo fails at once.
    let opts = GenerateOptions {
        prompt: args.prompt.clone(),
        chat: args.chat,
        sampler: SamplerConfig {
            temperature: args.temperature,
            top_k: args.top_k,
            top_p: args.top_p,
            seed: args.seed,
        },
        max_tokens: Some(args.max_tokens),
        stop_strings: Vec::new(),
    };
    opts.sampler.validate()?;
    let gguf = Gguf::open(&args.model)?;
    let tokenizer = Tokenizer::from_gguf(&gguf)?;
    // A model without a template still generates from plain prompts.
    let template = ChatTemplate::from_gguf(&gguf).ok();
    let model = load(&gguf, args.kv_tokens, args.kv_type)?;
    let adapter = model.context().adapter_info().name.clone();
    if let Some(note) = cpu_note(model.context()) {
        eprintln!("{note}");
    }
    let mut generator = Generator::new(model, tokenizer, template);
    if !args.chat {
        print!("{}", args.prompt);
    }
    let mut stdout = std::io::stdout();
    let stats = pollster::block_on(generator.generate(&opts, |piece| {
        // A closed pipe (`| head`) is not worth failing the run for.
        let _ = write!(stdout, "{piece}");
        let _ = stdout.flush();
    }))?;
    println!();
    let stop = match &stats.stop {
        Some(StopReason::Eos(_)) => "end of text",
        Some(StopReason::MaxTokens) => "--max-tokens",
        Some(StopReason::StopString { .. }) => "stop string",
        Some(StopReason::Cancelled) => "cancelled",
        None => "KV cache or context full",
    };
    eprintln!(
        "prefill: {} tokens, {:.1} tokens/s | decode: {} tokens, {:.1} tokens/s | stopped at {stop} | {adapter}",
        stats.prompt_tokens,
        stats.prefill_tokens_per_second(),
        stats.generated_tokens,
        stats.decode_tokens_per_second(),
    );
    eprintln!(
        "KV cache: {} bytes in use of {} ({:.1} of {:.1} MB)",
        stats.kv_bytes_in_use,
        stats.kv_capacity_bytes,
        stats.kv_bytes_in_use as f64 / 1e6,
        stats.kv_capacity_bytes as f64 / 1e6
    );
    Ok(())
}

/// Perplexity over a text file, in windows of `window` tokens scored
/// independently (each window starts without context, as llama.cpp does).
pub fn perplexity(model: &Path, file: &Path, window: u32, kv_type: DType) -> CliResult {
    let gguf = Gguf::open(model)?;
    let text = std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let tokens = Tokenizer::from_gguf(&gguf)?.encode(&text)?;
    let context = LlamaConfig::from_gguf(&gguf)?.context_length;
    if context < 2 {
        return Err(format!("the model's context ({context} tokens) is too short to score a token").into());
    }
    let window = window.clamp(2, context) as usize;
    let mut model = load(&gguf, window as u32, kv_type)?;
    let (mut nll, mut scored) = (0.0, 0usize);
    for chunk in tokens.chunks(window).filter(|c| c.len() >= 2) {
        let ppl = pollster::block_on(model.perplexity(chunk))?;
        nll += ppl.ln() * (chunk.len() - 1) as f64;
        scored += chunk.len() - 1;
    }
    if scored == 0 {
        return Err(format!("{} has fewer than 2 tokens", file.display()).into());
    }
    let kv = model.config().kv_bytes_per_token();
    println!(
        "perplexity {:.4} over {scored} scored tokens (windows of {window}) | KV bytes/token {kv} ({}) | {}",
        (nll / scored as f64).exp(),
        kv_type.name(),
        model.context().adapter_info().name
    );
    Ok(())
}

pub fn info(model: &Path, kv_type: DType) -> CliResult {
    let gguf = Gguf::open(model)?;
    let c = LlamaConfig::from_gguf(&gguf)?.with_kv_dtype(kv_type);
    let name = gguf.opt_str("general.name")?.unwrap_or("(unnamed)");
    println!("model:          {name} ({})", model.display());
    println!("architecture:   {}", c.arch.name());
    println!("layers:         {}", c.n_layers);
    println!("embedding:      {}", c.embedding);
    println!("ffn:            {}", c.ffn);
    println!("query heads:    {}", c.q_heads);
    let per_layer: Vec<u32> = c.layers.iter().map(|l| l.kv_heads).collect();
    if per_layer.iter().all(|&g| g == per_layer[0]) {
        println!("KV heads:       {}", c.kv_heads());
        println!("group size:     {} query heads per KV head", c.group_size());
    } else {
        let shown: Vec<String> = per_layer.iter().map(u32::to_string).collect();
        println!("KV heads:       {} (per layer: Variable GQA)", shown.join(","));
    }
    println!("head dim:       {} (values {})", c.head_dim, c.v_head_dim);
    println!("vocabulary:     {}", c.vocab_size);
    println!("context:        {} tokens", c.context_length);
    let s = &c.rope_scaling;
    let factors = if s.factors.is_some() { ", per-pair frequency factors" } else { "" };
    let linear = if s.linear != 1.0 { format!(", positions / {}", s.linear) } else { String::new() };
    let windowed = c.layers.iter().filter(|a| a.window.is_some()).count();
    let local_base = match windowed {
        0 => String::new(),
        _ => format!(" (sliding-window layers: {})", c.rope_base_windowed),
    };
    println!("RoPE:           {:?} pairs, base {}{local_base}{linear}{factors}", c.rope_layout, c.rope_base);
    if windowed > 0 {
        let marks: String = c.layers.iter().map(|a| if a.window.is_some() { 'w' } else { 'G' }).collect();
        println!(
            "attention:      {marks} (w: sliding window, G: global; {windowed} of {} windowed)",
            c.n_layers
        );
    }
    let mlp = match c.activation {
        Activation::Silu => "SwiGLU",
        Activation::GeluTanh => "GeGLU (tanh GELU)",
    };
    println!("MLP:            {mlp}");
    println!("output head:    {}", if c.tied_output { "tied to the embedding" } else { "separate" });
    println!("KV bytes/token: {} ({}, all layers)", c.kv_bytes_per_token(), kv_type.name());
    let context = c.context_length as u64;
    let full = c.kv_bytes_for(context);
    let note = match windowed {
        0 => String::new(),
        _ => format!(
            ", sliding-window layers holding only their window ({:.1} MB if every layer kept every token)",
            (c.kv_bytes_per_token() * context) as f64 / 1e6
        ),
    };
    println!("KV at context:  {:.1} MB for {context} tokens{note}", full as f64 / 1e6);
    match pollster::block_on(GpuContext::new()) {
        Ok(ctx) => {
            let a = ctx.adapter_info();
            println!("adapter:        {} ({:?}, {:?})", a.name, a.backend, a.device_type);
            if let Some(note) = cpu_note(&ctx) {
                println!("{note}");
            }
        }
        Err(e) => println!("adapter:        none ({e})"),
    }
    Ok(())
}

/// What to tell a person whose adapter is a CPU rasteriser, plainly.
fn cpu_note(ctx: &GpuContext) -> Option<String> {
    ctx.is_cpu_adapter().then(|| {
        format!(
            "note: {} runs WebGPU/Vulkan on the CPU here (a software rasteriser, not a GPU), so expect \
             CPU speeds, well below a GPU's: a few tokens/s for SmolLM2-135M on two cores, and slower \
             for larger models. `wgqa bench` measures this adapter's limits.",
            ctx.adapter_info().name
        )
    })
}

pub fn tokenize(model: &Path, text: &str, pieces: bool) -> CliResult {
    let tokenizer = Tokenizer::from_gguf(&Gguf::open(model)?)?;
    let ids = tokenizer.encode(text)?;
    println!("{}", ids.iter().map(u32::to_string).collect::<Vec<_>>().join(" "));
    if pieces {
        let shown = ids.iter().map(|&id| Ok(format!("{:?}", tokenizer.token_piece(id)?)));
        println!("{}", shown.collect::<wgqa::Result<Vec<_>>>()?.join(" "));
    }
    Ok(())
}

/// The model on the default adapter, with a progress bar on stderr.
fn load(gguf: &Gguf, kv_tokens: u32, kv_type: DType) -> wgqa::Result<LlamaModel> {
    let ctx = pollster::block_on(GpuContext::new())?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("loading {bar:40} {binary_bytes}/{binary_total_bytes} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let config = LlamaConfig::from_gguf(gguf)?.with_kv_dtype(kv_type);
    let model = LlamaModel::with_config(&ctx, gguf, config, kv_tokens, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    model
}
