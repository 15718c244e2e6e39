//! Models from GGUF files, in four rooms:
//!
//! - [`gguf`]: the file: reader, metadata, tensor types and their CPU
//!   dequantisation.
//! - `llama`: the GPU runtime of llama-family models (llama, qwen2, gemma3):
//!   config, weights, scratch buffers and the forward pass, on the GPU ops
//!   of [`ops`].
//! - `text`: tokenizer, chat template, sampler and the generation loop.
//! - `cpu`: the CPU model, a plain f32 forward pass that the GPU runtime and
//!   the converter are checked against.
//!
//! ```no_run
//! # fn demo() -> wgqa::Result<()> {
//! use wgqa::model::{require_llama, Gguf};
//! let gguf = Gguf::open(wgqa::model::DEFAULT_MODEL)?;
//! require_llama(&gguf)?;
//! let heads = gguf.get_u32("llama.attention.head_count")?;
//! let embd = gguf.dequantize("token_embd.weight")?;
//! # Ok(()) }
//! ```

pub(crate) mod cpu;
pub mod gguf;
pub(crate) mod llama;
pub mod ops;
mod perplexity;
mod text;

pub use cpu::CpuModel;
pub use gguf::{
    dequantize, ggml_type_name, require_llama, Gguf, MetaArray, MetaValue, TensorInfo, TensorType,
    DEFAULT_ALIGNMENT, MAX_DIMS, QK, QK_K,
};
pub use llama::{Activation, Architecture, GpuMemory, LlamaConfig, LlamaModel, PREFILL_CHUNK};
pub use perplexity::token_nll;
pub use text::*;

/// Where `scripts/fetch-model.sh` puts the default model
/// (SmolLM2-135M-Instruct, Q4_1), relative to the repository root.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where `scripts/fetch-gemma.sh` puts Gemma-3-270M (Q4_K_M, architecture
/// `gemma3`), relative to the repository root.
pub const GEMMA3_MODEL: &str = "models/gemma-3-270m-q4_k_m.gguf";

/// What to do when a model file is missing.
pub const FETCH_HINT: &str = "run scripts/fetch-model.sh to download the default model \
                              (SmolLM2-135M-Instruct) into models/, or pass --model PATH";
