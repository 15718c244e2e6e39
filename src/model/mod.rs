//! Model files: the GGUF reader (metadata, tensor infos, tensor data) and CPU
//! dequantisation of the tensor types wgqa supports.
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

mod config;
mod gguf;
mod gguf_meta;
mod gguf_read;
mod gguf_types;
mod kquants;
pub mod ops;
mod reference;
pub(crate) mod reference_ops;
mod sampler;
mod tensors;

pub use config::{Activation, Architecture, LlamaConfig};
pub use gguf::{dequantize, require_llama, Gguf, TensorInfo, DEFAULT_ALIGNMENT, MAX_DIMS};
pub use gguf_meta::{MetaArray, MetaValue};
pub use gguf_types::{ggml_type_name, TensorType, QK, QK_K};
pub use reference::{perplexity, token_nll, ReferenceModel};
pub use sampler::{argmax, find_stop, partial_stop_len, Sampler, SamplerConfig, StopConditions, StopReason};

mod chat;
mod generate;
mod llama;
mod scratch;
mod tokenizer;
mod weights;
pub use chat::{ChatMessage, ChatTemplate};
pub use generate::{GenerateOptions, GenerationStats, Generator};
pub use llama::{GpuMemory, LlamaModel, PREFILL_CHUNK};
pub use tokenizer::{Decoder, PreTokenizer, Tokenizer, TokenizerConfig, TokenizerModel};

/// Where `scripts/fetch-model.sh` puts the default model
/// (SmolLM2-135M-Instruct, Q4_1), relative to the repository root.
pub const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where `scripts/fetch-gemma.sh` puts Gemma-3-270M (Q4_K_M, architecture
/// `gemma3`), relative to the repository root.
pub const GEMMA3_MODEL: &str = "models/gemma-3-270m-q4_k_m.gguf";

/// What to do when a model file is missing.
pub const FETCH_HINT: &str = "run scripts/fetch-model.sh to download the default model \
                              (SmolLM2-135M-Instruct) into models/, or pass --model PATH";
