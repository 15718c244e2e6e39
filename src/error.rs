//! The one error type of wgqa. Invalid input, a full cache and "this adapter
//! cannot" are distinct variants, each naming the values involved.

use crate::kv::SeqId;

/// Everything that can go wrong in wgqa.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    // --- the adapter or device ---
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),
    #[error("the adapter cannot {what}: it lacks the `{feature}` feature")]
    MissingFeature { feature: &'static str, what: String },
    #[error("the adapter cannot {what}: needs {limit} >= {needed}, the adapter has {available}")]
    AdapterLimit { limit: &'static str, needed: u64, available: u64, what: String },
    #[error("GPU error: {0}")]
    Gpu(String),

    // --- attention config ---
    #[error("{field} must be at least 1, got 0")]
    ZeroHeads { field: &'static str },
    #[error("q_heads ({q_heads}) must be a multiple of kv_heads ({kv_heads})")]
    HeadsNotDivisible { q_heads: u32, kv_heads: u32 },
    #[error("{field} must be a multiple of 4 between 4 and 1024, got {value}")]
    InvalidHeadDim { field: &'static str, value: u32 },
    #[error("scale must be finite, positive and at most {max}, got {value}")]
    InvalidScale { value: f32, max: f32 },
    #[error("softcap must be finite, positive and at most {max}, got {value}")]
    InvalidSoftcap { value: f32, max: f32 },
    #[error("sliding window must be at least 1 token, got {0}")]
    InvalidWindow(u32),
    #[error("sink logits: expected one per query head ({expected}), got {got}")]
    SinkCount { expected: usize, got: usize },
    #[error("sink logit of head {head} must be finite, got {value}")]
    InvalidSink { head: usize, value: f32 },
    #[error("RoPE {field} is invalid: {value}")]
    InvalidRope { field: &'static str, value: String },

    // --- KV cache and plans ---
    #[error("KV cache needs at least one layer")]
    NoLayers,
    #[error("page_size must be between 1 and 65536, got {0}")]
    InvalidPageSize(u32),
    #[error("KV cache capacity must be at least one token")]
    ZeroCapacity,
    #[error("KV cache is full: {needed} more pages needed, {free} free (page size {page_size})")]
    CacheFull { needed: usize, free: usize, page_size: u32 },
    #[error(
        "sequence {seq:?}: a query at position {position} needs keys from position {needed}, \
         but its sliding-window layers keep only positions from {kept}"
    )]
    WindowDropped { seq: SeqId, position: u32, needed: u32, kept: u32 },
    #[error("unknown or freed sequence {0:?}, or one of another cache")]
    UnknownSequence(SeqId),
    #[error("sequence {0:?} appears twice in one batch")]
    DuplicateSequence(SeqId),
    #[error("empty batch: give at least one sequence with at least one token")]
    EmptyBatch,
    #[error("position {position} is out of range for sequence {seq:?} of length {len}")]
    PositionOutOfRange { seq: SeqId, position: u32, len: u32 },
    #[error("layer {layer} is out of range: the cache has {layers} layers")]
    LayerOutOfRange { layer: usize, layers: usize },
    #[error("batch has {got} {what}, at most {max} fit one dispatch")]
    BatchTooLarge { what: &'static str, got: u64, max: u64 },
    #[error("the plan is stale: the KV cache changed since it was made")]
    StalePlan,
    #[error("the plan was made for another KV cache")]
    ForeignPlan,
    #[error("the plan only reads the cache; append needs a plan from `plan_append`")]
    PlanCannotAppend,
    #[error("{what}: expected {expected} {unit}, got {got} {unit}")]
    WrongLength { what: &'static str, expected: u64, got: u64, unit: &'static str },
    #[error("{what} must not alias {other}")]
    Aliased { what: &'static str, other: &'static str },

    // --- model files ---
    #[error("GGUF file is truncated or a length in it is wrong: {what} at byte {offset} runs past the end of the file")]
    GgufTruncated { what: String, offset: u64 },
    #[error("not a GGUF file: it starts with {0:?}, expected the magic bytes \"GGUF\"")]
    GgufBadMagic([u8; 4]),
    #[error("GGUF version {0} is not supported: wgqa reads little-endian GGUF v2 and v3")]
    GgufVersion(u32),
    #[error("tensor `{tensor}` has ggml type {ty} ({ty_name}); wgqa reads F32, F16, Q8_0, Q4_0 and Q4_1")]
    GgufUnsupportedType { tensor: String, ty: u32, ty_name: &'static str },
    #[error("model architecture `{0}` is not supported: wgqa runs `llama`, `qwen2` and `gemma3` models")]
    GgufArchitecture(String),
    #[error("corrupt GGUF file: {0}")]
    GgufCorrupt(String),
    #[error("GGUF metadata key `{0}` is missing")]
    GgufMissingKey(String),
    #[error("GGUF metadata key `{key}`: expected {expected}, found {found}")]
    GgufKeyType { key: String, expected: &'static str, found: String },
    #[error("GGUF file has no tensor named `{0}`")]
    GgufMissingTensor(String),
    #[error("model file {path} not found: {hint}")]
    ModelMissing { path: String, hint: String },
    #[error("cannot read model file {path}: {source}")]
    ModelRead { path: String, source: std::io::Error },
    #[error("model config: `{key}` {problem}")]
    ModelConfig { key: String, problem: String },
    #[error("model tensor `{tensor}` has dims {got:?}, expected {expected:?}")]
    TensorShape { tensor: String, expected: Vec<u64>, got: Vec<u64> },
    #[error("token id {token} at index {index} is out of range: the vocabulary has {vocab} tokens")]
    TokenOutOfRange { token: u32, index: usize, vocab: u32 },
    #[error("sequence of {needed} tokens does not fit the model's context of {context} tokens")]
    ContextExceeded { needed: u64, context: u32 },
    #[error("{what} needs at least {needed} tokens, got {got}")]
    TooFewTokens { what: &'static str, needed: usize, got: usize },
    #[error("matrix `{name}` cannot be used: {why}")]
    InvalidMatrix { name: String, why: String },
    #[error("{op}: {why}")]
    InvalidOp { op: &'static str, why: String },
    #[error("sampler: {param} {problem}, got {value}")]
    InvalidSampler { param: &'static str, problem: &'static str, value: f64 },
    #[error("logit {index} is {value}: logits must be finite (or -inf to mask a token)")]
    NonFiniteLogit { index: usize, value: f32 },
    #[error("no token can be sampled: {0}")]
    NothingToSample(&'static str),
    #[error("tokenizer model `{0}` is not supported: wgqa reads GPT-2 byte-level BPE (`gpt2`) and SentencePiece (`llama`) vocabularies")]
    UnsupportedTokenizer(String),
    #[error("pre-tokenizer `{0}` (tokenizer.ggml.pre) is not supported: wgqa knows smollm, gpt2, default, llama-bpe and qwen2")]
    UnsupportedPreTokenizer(String),
    #[error("cannot build the tokenizer: {0}")]
    TokenizerBuild(String),
    #[error("text needs the byte token <0x{byte:02X}> (a character outside the vocabulary), but the vocabulary has none")]
    MissingByteToken { byte: u8 },
    #[error("token id {id} is not in the vocabulary of {vocab} tokens")]
    UnknownTokenId { id: u32, vocab: usize },
    #[error("chat template not supported (wgqa renders ChatML, Llama-3 and Gemma templates): {0}")]
    UnsupportedChatTemplate(String),

    // --- model conversion (`wgqa convert`) ---
    #[error("convert: {option} {problem}")]
    ConvertOption { option: &'static str, problem: String },
    #[error("output file {0} exists: pass --force to overwrite it")]
    OutputExists(String),
    #[error("cannot write {path}: {source}")]
    WriteFile { path: String, source: std::io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
