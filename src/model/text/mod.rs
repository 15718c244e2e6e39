//! Text in and out of a model: the tokenizer, the chat template, the sampler
//! and the generation loop that joins them to the GPU model.

mod chat;
mod generate;
mod sampler;
mod tokenizer;

pub use chat::{ChatMessage, ChatTemplate};
pub use generate::{GenerateOptions, GenerationStats, Generator};
pub use sampler::{argmax, find_stop, partial_stop_len, Sampler, SamplerConfig, StopConditions, StopReason};
pub use tokenizer::{Decoder, PreTokenizer, Tokenizer, TokenizerConfig, TokenizerModel};
