//! `wgqa convert`: a model with other KV-head counts (MHA, GQA, MQA or
//! Variable GQA under a KV budget).

use std::path::PathBuf;

use wgqa::convert::{convert, kv_bytes_per_token, write_new_file, ConvertOptions, KvTarget, Method};
use wgqa::model::{Gguf, LlamaConfig, TensorType, Tokenizer};

/// Where `wgqa convert` reads its calibration text by default.
const DEFAULT_CALIBRATION: &str = "texts/calibration.txt";

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["kv_heads", "kv_heads_per_layer", "kv_budget"])))]
pub struct ConvertArgs {
    #[arg(long, default_value = wgqa::model::DEFAULT_MODEL)]
    model: PathBuf,
    /// The converted GGUF to write (refused if it exists, unless --force).
    #[arg(long)]
    out: PathBuf,
    /// KV heads in every layer (a divisor of the query heads).
    #[arg(long)]
    kv_heads: Option<u32>,
    /// KV heads per layer, comma-separated, one per layer.
    #[arg(long, value_delimiter = ',')]
    kv_heads_per_layer: Option<Vec<u32>>,
    /// Variable GQA: f16 KV bytes per token for all layers together; each
    /// layer gets the KV heads that cost the least loss on the calibration text.
    #[arg(long)]
    kv_budget: Option<u64>,
    /// How merged heads are built: mean, first, random or calibrated.
    #[arg(long, default_value = "mean")]
    method: String,
    /// Seed of --method random.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Write the K/V projections as f16 or q8_0 (default: their source type).
    #[arg(long)]
    kv_type: Option<String>,
    /// Calibration text for --method calibrated and --kv-budget.
    #[arg(long, default_value = DEFAULT_CALIBRATION)]
    calib: PathBuf,
    /// Calibration tokens used (at most the model's context).
    #[arg(long, default_value_t = 512)]
    calib_tokens: usize,
    /// Leading calibration tokens scored per layer for --kv-budget.
    #[arg(long, default_value_t = 128)]
    sensitivity_tokens: usize,
    /// Overwrite --out if it exists.
    #[arg(long)]
    force: bool,
}

pub fn run(args: ConvertArgs) -> Result<(), Box<dyn std::error::Error>> {
    let method: Method = args.method.parse()?;
    let kv_type = match args.kv_type.as_deref() {
        None => None,
        Some("f16") => Some(TensorType::F16),
        Some("q8_0") => Some(TensorType::Q8_0),
        Some(other) => {
            return Err(wgqa::Error::ConvertOption {
                option: "--kv-type",
                problem: format!("`{other}` is not offered: use f16 or q8_0"),
            }
            .into())
        }
    };
    // Refuse an existing output before the (possibly long) conversion.
    if args.out.exists() && !args.force {
        return Err(wgqa::Error::OutputExists(args.out.display().to_string()).into());
    }
    let target = match (args.kv_heads, args.kv_heads_per_layer, args.kv_budget) {
        (Some(g), _, _) => KvTarget::Uniform(g),
        (_, Some(v), _) => KvTarget::PerLayer(v),
        (_, _, Some(b)) => KvTarget::Budget(b),
        _ => unreachable!("clap requires one of the three"),
    };
    let gguf = Gguf::open(&args.model)?;
    let cfg = LlamaConfig::from_gguf(&gguf)?;
    let mut opts = ConvertOptions::new(target.clone(), method);
    opts.seed = args.seed;
    opts.kv_type = kv_type;
    opts.sensitivity_tokens = args.sensitivity_tokens;
    wgqa::convert::check(&cfg, &opts)?;
    if opts.needs_calibration() {
        let text = std::fs::read_to_string(&args.calib)
            .map_err(|e| format!("reading the calibration text {}: {e}", args.calib.display()))?;
        let mut tokens = Tokenizer::from_gguf(&gguf)?.encode(&text)?;
        tokens.truncate(args.calib_tokens);
        opts.calibration = tokens;
    }
    let started = std::time::Instant::now();
    let out = convert(&gguf, &opts)?;
    if let Some(choices) = &out.allocation {
        println!(
            "Variable GQA allocation (loss increase per layer, nats/token, on {}):",
            args.calib.display()
        );
        for c in choices {
            println!("  layer {:>2}: {} KV heads  (+{:.4})", c.layer, c.kv_heads, c.loss_increase);
        }
        let heads: Vec<String> = out.kv_heads.iter().map(u32::to_string).collect();
        println!("  --kv-heads-per-layer {}", heads.join(","));
    }
    write_new_file(&args.out, &out.bytes, args.force)?;
    let src_heads: Vec<u32> = cfg.layers.iter().map(|l| l.kv_heads).collect();
    println!(
        "wrote {} ({} bytes, method {}, {:.1} s): KV bytes/token {} -> {} (f16)",
        args.out.display(),
        out.bytes.len(),
        method.name(),
        started.elapsed().as_secs_f64(),
        kv_bytes_per_token(&cfg, &src_heads),
        kv_bytes_per_token(&cfg, &out.kv_heads),
    );
    Ok(())
}
