//! The `wgqa` command line.

mod convert_cli;
mod model_cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(version, about = "WebGPU grouped-query attention kernels")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the adapter wgqa picks (WGQA_ADAPTER forces one) and what it can do.
    Adapter,
    /// Measure the kernels on this adapter: a table of ratios, and JSON.
    Bench {
        /// Fewer runs and smaller buffers (for CI).
        #[arg(long)]
        quick: bool,
        /// Also write the report as JSON here.
        #[arg(long)]
        json: Option<std::path::PathBuf>,
        /// Break a decode token of this model into attention, matmuls and the
        /// rest (skipped when the file is absent).
        #[arg(long, default_value = wgqa::model::DEFAULT_MODEL)]
        model: PathBuf,
    },
    /// Convert a llama GGUF to other KV-head counts: MHA, GQA, MQA or
    /// Variable GQA under a KV budget.
    Convert(convert_cli::ConvertArgs),
    /// Generate text with a llama GGUF model on the GPU, streaming it to stdout.
    Generate(model_cli::GenerateArgs),
    /// Perplexity of a model over a text file.
    Perplexity {
        #[arg(long, default_value = wgqa::model::DEFAULT_MODEL)]
        model: PathBuf,
        #[arg(long)]
        file: PathBuf,
        /// Tokens per independently scored window.
        #[arg(long, default_value_t = 512)]
        window: u32,
        /// KV-cache storage: f32, f16 or int8.
        #[arg(long, default_value = "f16", value_parser = model_cli::kv_type)]
        kv_type: wgqa::DType,
    },
    /// A model's architecture: heads, KV heads, group size, KV bytes per token.
    Info {
        #[arg(long, default_value = wgqa::model::DEFAULT_MODEL)]
        model: PathBuf,
        /// KV-cache storage the bytes per token are given for: f32, f16 or int8.
        #[arg(long, default_value = "f16", value_parser = model_cli::kv_type)]
        kv_type: wgqa::DType,
    },
    /// Token ids of a text, on one line.
    Tokenize {
        #[arg(long, default_value = wgqa::model::DEFAULT_MODEL)]
        model: PathBuf,
        text: String,
        /// Also print each token's piece.
        #[arg(long)]
        pieces: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Adapter => adapter(),
        Command::Bench { quick, json, model } => bench(quick, json, model),
        Command::Convert(args) => convert_cli::run(args),
        Command::Generate(args) => model_cli::generate(args),
        Command::Perplexity { model, file, window, kv_type } => {
            model_cli::perplexity(&model, &file, window, kv_type)
        }
        Command::Info { model, kv_type } => model_cli::info(&model, kv_type),
        Command::Tokenize { model, text, pieces } => model_cli::tokenize(&model, &text, pieces),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn adapter() -> Result<(), Box<dyn std::error::Error>> {
    let ctx = pollster::block_on(wgqa::GpuContext::new())?;
    let info = ctx.adapter_info();
    let caps = ctx.capabilities();
    let limits = ctx.limits();
    println!("adapter:   {} ({:?}, {:?})", info.name, info.backend, info.device_type);
    println!("driver:    {} {}", info.driver, info.driver_info);
    println!("f16:       {}", if caps.shader_f16 { "native shader-f16" } else { "packed in u32" });
    println!("subgroups: {}", caps.subgroups);
    println!("timestamp: {}", caps.timestamp_query);
    match caps.loop_trip_limit {
        Some(n) => println!("loop trips: at most {n} per invocation (long attention rows are split)"),
        None => println!("loop trips: no known limit"),
    }
    println!("workgroup storage: {} bytes", limits.max_compute_workgroup_storage_size);
    println!("storage binding:   {} bytes", limits.max_storage_buffer_binding_size);
    Ok(())
}

fn bench(quick: bool, json: Option<PathBuf>, model: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    let ctx = pollster::block_on(wgqa::GpuContext::new())?;
    if !model.exists() {
        eprintln!(
            "{} is absent: no per-token breakdown (scripts/fetch-model.sh fetches it)",
            model.display()
        );
    }
    let model = model.exists().then_some(model);
    let report = wgqa::bench::run(&ctx, wgqa::bench::BenchOptions { quick, model })?;
    print!("{report}");
    if let Some(path) = json {
        std::fs::write(&path, report.to_json()).map_err(|e| format!("writing {}: {e}", path.display()))?;
        println!("\nJSON written to {}", path.display());
    }
    Ok(())
}
