//! Hyperparameters of a llama-family model read from GGUF metadata (the
//! `{arch}.*` keys), checked once so the forward passes (CPU reference and
//! GPU) can trust them. Two architectures share one forward pass: `llama`
//! and `gemma3`, whose differences are the fields below that are set by
//! [`Architecture`].

use super::tensors::{blocks_in_file, check_tensors};
use crate::error::{Error, Result};
use crate::model::{Gguf, MetaArray, MetaValue};
use crate::{AttentionConfig, DType, RopeLayout, RopeScaling};

/// RoPE base llama.cpp assumes when `{arch}.rope.freq_base` is absent.
const DEFAULT_ROPE_BASE: f32 = 10_000.0;

/// Gemma 3's RoPE base of its sliding-window layers when the file has no
/// `gemma3.rope.freq_base_swa` (llama.cpp and the reference implementation
/// fix it at 10000; only the global layers use `rope.freq_base`).
const GEMMA3_LOCAL_ROPE_BASE: f32 = 10_000.0;

/// Gemma 3's layer pattern when the file has no
/// `gemma3.attention.sliding_window_pattern`: five sliding-window layers,
/// then one global.
const GEMMA3_PATTERN: u32 = 6;

/// The model families the forward pass implements
/// (`general.architecture`), which also prefix their metadata keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Architecture {
    Llama,
    /// Llama's graph with Q/K/V biases, and RoPE on halves: its Q/K rows are
    /// not permuted for adjacent pairs as llama files' are.
    Qwen2,
    Gemma3,
}

impl Architecture {
    /// The file's `general.architecture`; any other is
    /// [`Error::GgufArchitecture`].
    pub fn from_gguf(gguf: &Gguf) -> Result<Architecture> {
        match gguf.get_str("general.architecture")? {
            "llama" => Ok(Architecture::Llama),
            "qwen2" => Ok(Architecture::Qwen2),
            "gemma3" => Ok(Architecture::Gemma3),
            other => Err(Error::GgufArchitecture(other.to_string())),
        }
    }

    /// The name as GGUF writes it, and the prefix of its keys.
    pub fn name(self) -> &'static str {
        match self {
            Architecture::Llama => "llama",
            Architecture::Qwen2 => "qwen2",
            Architecture::Gemma3 => "gemma3",
        }
    }
}

/// The gated MLP's activation of the gate projection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: `silu(gate) * up` (llama).
    Silu,
    /// GeGLU: `gelu(gate) * up` with GELU's tanh approximation (Gemma).
    GeluTanh,
}

/// Everything a forward pass needs to know about a model.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Which family's keys and block layout the file follows.
    pub arch: Architecture,
    /// Transformer blocks (`{arch}.block_count`).
    pub n_layers: u32,
    /// Width of the residual stream (`{arch}.embedding_length`).
    pub embedding: u32,
    /// Hidden width of the gated MLP (`{arch}.feed_forward_length`).
    pub ffn: u32,
    /// Query heads (`{arch}.attention.head_count`).
    pub q_heads: u32,
    /// Dimension of one query/key head: `embedding / q_heads` unless
    /// `{arch}.attention.key_length` says otherwise.
    pub head_dim: u32,
    /// Dimension of one value head (`{arch}.attention.value_length`, default `head_dim`).
    pub v_head_dim: u32,
    /// RoPE base of the layers without a sliding window (every layer of a
    /// llama): `{arch}.rope.freq_base`, default 10000.
    pub rope_base: f32,
    /// RoPE base of the sliding-window layers (Gemma 3's local layers:
    /// `gemma3.rope.freq_base_swa`, default 10000); see
    /// [`LlamaConfig::layer_rope_base`].
    pub rope_base_windowed: f32,
    /// Linear position scaling and per-pair frequency factors
    /// (`{arch}.rope.scaling.*`, `rope_freqs.weight`); none by default.
    pub rope_scaling: RopeScaling,
    /// Which pairs RoPE rotates: GGUF llama checkpoints have Q/K permuted so
    /// that it rotates adjacent pairs ([`RopeLayout::Adjacent`], llama.cpp's
    /// convention); Gemma's are not permuted ([`RopeLayout::HalfSplit`]).
    pub rope_layout: RopeLayout,
    /// RMSNorm epsilon (`{arch}.attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// Longest sequence the model was trained for (`{arch}.context_length`).
    pub context_length: u32,
    /// Rows of the embedding and of the output head.
    pub vocab_size: u32,
    /// The Q, K and V projections add biases (`blk.N.attn_q.bias`, ...:
    /// Qwen2-style files); every block then has all three.
    pub qkv_bias: bool,
    /// The output head reuses `token_embd.weight` (no `output.weight` tensor).
    pub tied_output: bool,
    /// The embedding rows are multiplied by this (Gemma: sqrt(embedding); 1
    /// for llama).
    pub embedding_scale: f32,
    /// The MLP's gate activation.
    pub activation: Activation,
    /// Every block RMS-normalises Q and K per head before RoPE
    /// (`attn_q_norm`, `attn_k_norm`, one weight of `head_dim` each: Gemma 3).
    pub qk_norm: bool,
    /// Every block normalises the attention and MLP outputs before adding
    /// them to the residual (`post_attention_norm`, `post_ffw_norm`: Gemma).
    pub post_norms: bool,
    /// Per-layer attention (KV heads may differ per layer, e.g. after a
    /// variable-GQA conversion; Gemma 3's sliding window is set on its local
    /// layers). KV storage is f16 unless changed with
    /// [`LlamaConfig::with_kv_dtype`].
    pub layers: Vec<AttentionConfig>,
}

/// The metadata keys of one architecture.
struct Keys(Architecture);

impl Keys {
    fn get(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.0.name())
    }
}

impl LlamaConfig {
    /// Reads and validates the hyperparameters of a llama or gemma3 GGUF.
    pub fn from_gguf(gguf: &Gguf) -> Result<LlamaConfig> {
        let arch = Architecture::from_gguf(gguf)?;
        let keys = Keys(arch);
        let key = |suffix: &str| keys.get(suffix);
        let n_layers = positive(gguf, &key("block_count"))?;
        // Agreed with the tensors before any per-layer vector is sized by it.
        let in_file = blocks_in_file(gguf)?;
        if n_layers != in_file {
            return Err(invalid(
                &key("block_count"),
                format!("is {n_layers}, but the file holds the tensors of {in_file} blocks"),
            ));
        }
        let embedding = positive(gguf, &key("embedding_length"))?;
        let ffn = positive(gguf, &key("feed_forward_length"))?;
        let q_heads = positive(gguf, &key("attention.head_count"))?;
        let context_length = positive(gguf, &key("context_length"))?;
        let key_length = key("attention.key_length");
        if embedding % q_heads != 0 && gguf.get(&key_length).is_none() {
            return Err(invalid(
                &key("attention.head_count"),
                format!("({q_heads}) does not divide {} ({embedding})", key("embedding_length")),
            ));
        }
        let head_dim = match gguf.opt_u32(&key_length)? {
            Some(d) => d,
            None => embedding / q_heads,
        };
        let v_head_dim = gguf.opt_u32(&key("attention.value_length"))?.unwrap_or(head_dim);

        let rope_base = read_rope_base(gguf, &key("rope.freq_base"), DEFAULT_ROPE_BASE)?;
        let rope_base_windowed = match arch {
            Architecture::Llama | Architecture::Qwen2 => rope_base,
            Architecture::Gemma3 => read_rope_base(gguf, &key("rope.freq_base_swa"), GEMMA3_LOCAL_ROPE_BASE)?,
        };
        // Partial rotary embeddings are not implemented: a model rotating
        // fewer dims than the head has would silently decode garbage.
        if let Some(dims) = gguf.opt_u32(&key("rope.dimension_count"))? {
            if dims != head_dim {
                return Err(invalid(
                    &key("rope.dimension_count"),
                    format!("is {dims}, but wgqa rotates whole heads (head_dim {head_dim})"),
                ));
            }
        }
        let rope_scaling = rope_scaling(gguf, &keys, head_dim)?;
        let rms_eps = gguf.get_f32(&key("attention.layer_norm_rms_epsilon"))?;
        if !rms_eps.is_finite() || rms_eps <= 0.0 {
            return Err(invalid(
                &key("attention.layer_norm_rms_epsilon"),
                format!("must be finite and positive, got {rms_eps}"),
            ));
        }
        // Gemma 2's final logit softcap is not implemented; a file asking for
        // it would decode with the wrong distribution.
        let softcap_key = key("final_logit_softcapping");
        if gguf.get(&softcap_key).is_some() {
            return Err(invalid(&softcap_key, "a final logit softcap is not implemented".to_string()));
        }

        let vocab_size = vocab_size(gguf, &keys)?;
        let tied_output = gguf.tensor("output.weight").is_err();
        let qkv_bias = gguf.tensor("blk.0.attn_q.bias").is_ok();
        let windows = windows(gguf, &keys, n_layers)?;
        let scale = gguf.opt_f32(&key("attention.scale"))?;
        let softcap = gguf.opt_f32(&key("attention.logit_softcapping"))?;
        let layers = kv_heads(gguf, &keys, n_layers, q_heads)?
            .into_iter()
            .zip(windows)
            .map(|(kv, window)| {
                // `new` checks the heads; the rest is checked once it is all set.
                let mut cfg = AttentionConfig::new(q_heads, kv, head_dim)
                    .map_err(|e| attention_key(&keys, e))?
                    .with_v_head_dim(v_head_dim);
                cfg.window = window;
                cfg.scale = scale;
                cfg.softcap = softcap;
                cfg.validate().map_err(|e| attention_key(&keys, e))?;
                Ok(cfg.with_dtype(DType::F16))
            })
            .collect::<Result<Vec<_>>>()?;

        let gemma = arch == Architecture::Gemma3;
        let config = LlamaConfig {
            arch,
            n_layers,
            embedding,
            ffn,
            q_heads,
            head_dim,
            v_head_dim,
            rope_base,
            rope_base_windowed,
            rope_scaling,
            rope_layout: match arch {
                Architecture::Llama => RopeLayout::Adjacent,
                Architecture::Qwen2 | Architecture::Gemma3 => RopeLayout::HalfSplit,
            },
            rms_eps,
            context_length,
            vocab_size,
            tied_output,
            qkv_bias,
            embedding_scale: if gemma { (embedding as f32).sqrt() } else { 1.0 },
            activation: if gemma { Activation::GeluTanh } else { Activation::Silu },
            qk_norm: gemma,
            post_norms: gemma,
            layers,
        };
        config.check_file(gguf)?;
        Ok(config)
    }

    /// Checks that this config can drive `gguf`: every width the forward
    /// passes compute fits in u32, and every tensor the model reads is in the
    /// file with the shape the config implies. [`LlamaConfig::from_gguf`]
    /// runs it; the loaders run it again on a caller's config.
    pub fn check_file(&self, gguf: &Gguf) -> Result<()> {
        let keys = Keys(self.arch);
        let key = |suffix: &str| keys.get(suffix);
        if self.layers.len() != self.n_layers as usize {
            return Err(invalid(
                &key("block_count"),
                format!("is {}, but the config has {} layers", self.n_layers, self.layers.len()),
            ));
        }
        for a in &self.layers {
            let heads =
                [(key("attention.head_count"), a.q_heads), (key("attention.head_count_kv"), a.kv_heads)];
            let dims =
                [(key("attention.key_length"), a.head_dim), (key("attention.value_length"), a.v_head_dim)];
            for ((head_key, n), (dim_key, d)) in heads.iter().flat_map(|h| dims.iter().map(move |d| (h, d))) {
                if n.checked_mul(*d).is_none() {
                    return Err(invalid(head_key, format!("({n}) times {dim_key} ({d}) overflows 32 bits")));
                }
            }
        }
        check_tensors(gguf, self)
    }

    /// The same model with its KV cache stored as `dtype` in every layer.
    pub fn with_kv_dtype(mut self, dtype: DType) -> Self {
        for layer in &mut self.layers {
            layer.dtype = dtype;
        }
        self
    }

    /// KV heads of the first layer (all layers, for plain llama GGUFs).
    pub fn kv_heads(&self) -> u32 {
        self.layers[0].kv_heads
    }

    /// Query heads per KV head of the first layer.
    pub fn group_size(&self) -> u32 {
        self.layers[0].group_size()
    }

    /// Bytes of K and V one token takes in the cache, summed over all layers,
    /// in each layer's KV storage type (f16 by default).
    pub fn kv_bytes_per_token(&self) -> u64 {
        self.layers.iter().map(AttentionConfig::kv_bytes_per_token).sum()
    }

    /// K and V bytes of a sequence of `tokens`, all layers, sliding-window
    /// layers counting only their window ([`AttentionConfig::kv_bytes_for`]).
    pub fn kv_bytes_for(&self, tokens: u64) -> u64 {
        self.layers.iter().map(|a| a.kv_bytes_for(tokens)).sum()
    }

    /// The RoPE base of `layer`: [`LlamaConfig::rope_base_windowed`] where
    /// it has a sliding window, [`LlamaConfig::rope_base`] elsewhere.
    pub fn layer_rope_base(&self, layer: usize) -> f32 {
        match self.layers.get(layer).and_then(|a| a.window) {
            Some(_) => self.rope_base_windowed,
            None => self.rope_base,
        }
    }

    /// Attention config of `layer`.
    pub fn attention_config(&self, layer: usize) -> Result<&AttentionConfig> {
        self.layers.get(layer).ok_or(Error::LayerOutOfRange { layer, layers: self.layers.len() })
    }
}

fn invalid(key: &str, problem: String) -> Error {
    Error::ModelConfig { key: key.to_string(), problem }
}

/// An attention-config error, named by the metadata key it came from.
fn attention_key(keys: &Keys, e: Error) -> Error {
    let key = match &e {
        Error::ZeroHeads { .. } | Error::HeadsNotDivisible { .. } => "attention.head_count_kv",
        Error::InvalidHeadDim { field: "head_dim", .. } => "attention.key_length",
        Error::InvalidHeadDim { .. } => "attention.value_length",
        Error::InvalidSoftcap { .. } => "attention.logit_softcapping",
        Error::InvalidScale { .. } => "attention.scale",
        _ => return e,
    };
    invalid(&keys.get(key), e.to_string())
}

/// A required integer key that must be at least 1.
fn positive(gguf: &Gguf, key: &str) -> Result<u32> {
    match gguf.get_u32(key)? {
        0 => Err(invalid(key, "must be at least 1, got 0".to_string())),
        v => Ok(v),
    }
}

/// A RoPE base: `key`, or `default` when absent; finite and above 1.
fn read_rope_base(gguf: &Gguf, key: &str, default: f32) -> Result<f32> {
    let base = gguf.opt_f32(key)?.unwrap_or(default);
    if !base.is_finite() || base <= 1.0 {
        return Err(invalid(key, format!("must be finite and > 1, got {base}")));
    }
    Ok(base)
}

/// The vocabulary size: `{arch}.vocab_size` if present, else the length of
/// the token list.
fn vocab_size(gguf: &Gguf, keys: &Keys) -> Result<u32> {
    let key = keys.get("vocab_size");
    let n = match gguf.opt_u32(&key)? {
        Some(n) => n,
        None => {
            let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?.len();
            u32::try_from(tokens)
                .map_err(|_| invalid("tokenizer.ggml.tokens", format!("has {tokens} entries")))?
        }
    };
    if n == 0 {
        return Err(invalid(&key, "the vocabulary is empty".to_string()));
    }
    Ok(n)
}

/// Each layer's sliding window. Llama and Qwen2 layers have none (llama.cpp ignores
/// the key for llama too). Gemma 3's
/// `gemma3.attention.sliding_window` applies to the local layers, which
/// `gemma3.attention.sliding_window_pattern` names: a period P (layer i is
/// global when i % P == P - 1; 6 when absent) or one bool per layer (true:
/// windowed).
fn windows(gguf: &Gguf, keys: &Keys, n_layers: u32) -> Result<Vec<Option<u32>>> {
    if keys.0 != Architecture::Gemma3 {
        return Ok(vec![None; n_layers as usize]);
    }
    let (window_key, pattern_key) =
        (keys.get("attention.sliding_window"), keys.get("attention.sliding_window_pattern"));
    let window = gguf.opt_u32(&window_key)?;
    if window == Some(0) {
        return Err(invalid(&window_key, "must be at least 1, got 0".to_string()));
    }
    let windowed: Vec<bool> = match gguf.get(&pattern_key) {
        Some(MetaValue::Array(MetaArray::Bool(v))) if v.len() == n_layers as usize => v.clone(),
        Some(MetaValue::Array(_)) => {
            return Err(invalid(
                &pattern_key,
                format!("must be a period or an array of one bool per layer ({n_layers})"),
            ))
        }
        found => {
            let period = match found {
                None => GEMMA3_PATTERN,
                Some(_) => positive(gguf, &pattern_key)?,
            };
            (0..n_layers).map(|i| i % period != period - 1).collect()
        }
    };
    Ok(windowed.into_iter().map(|w| window.filter(|_| w)).collect())
}

/// KV heads per layer. llama.cpp allows `head_count_kv` to be one number or
/// one per layer; absent means MHA.
fn kv_heads(gguf: &Gguf, keys: &Keys, n_layers: u32, q_heads: u32) -> Result<Vec<u32>> {
    let key = keys.get("attention.head_count_kv");
    let per_layer: Vec<i128> = match gguf.get(&key) {
        None => return Ok(vec![q_heads; n_layers as usize]),
        Some(MetaValue::Array(a)) => int_array(a).ok_or_else(|| Error::GgufKeyType {
            key: key.clone(),
            expected: "an integer or an array of integers",
            found: "an array of another type".to_string(),
        })?,
        Some(_) => vec![gguf.get_u32(&key)? as i128; n_layers as usize],
    };
    if per_layer.len() != n_layers as usize {
        return Err(invalid(&key, format!("has {} entries for {n_layers} layers", per_layer.len())));
    }
    per_layer
        .into_iter()
        .map(|v| match u32::try_from(v) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(invalid(&key, format!("must be between 1 and {q_heads}, got {v}"))),
        })
        .collect()
}

fn int_array(a: &MetaArray) -> Option<Vec<i128>> {
    fn widen<T: Copy + Into<i128>>(v: &[T]) -> Vec<i128> {
        v.iter().map(|&x| x.into()).collect()
    }
    Some(match a {
        MetaArray::U8(v) => widen(v),
        MetaArray::I8(v) => widen(v),
        MetaArray::U16(v) => widen(v),
        MetaArray::I16(v) => widen(v),
        MetaArray::U32(v) => widen(v),
        MetaArray::I32(v) => widen(v),
        MetaArray::U64(v) => widen(v),
        MetaArray::I64(v) => widen(v),
        _ => return None,
    })
}

/// RoPE scaling as llama.cpp reads it: `{arch}.rope.scaling.type` "none" or
/// "linear" with `{arch}.rope.scaling.factor` (or the older
/// `{arch}.rope.scale_linear`), and the optional `rope_freqs.weight` tensor of
/// per-pair factors. Other scaling types (YaRN, LongRoPE) are errors.
fn rope_scaling(gguf: &Gguf, keys: &Keys, head_dim: u32) -> Result<RopeScaling> {
    let type_key = keys.get("rope.scaling.type");
    let linear = match gguf.opt_str(&type_key)? {
        None | Some("none") => gguf.opt_f32(&keys.get("rope.scale_linear"))?.unwrap_or(1.0),
        Some("linear") => gguf.get_f32(&keys.get("rope.scaling.factor"))?,
        Some(other) => {
            return Err(invalid(&type_key, format!("is {other:?}; wgqa implements none and linear")))
        }
    };
    let factors = match gguf.tensor("rope_freqs.weight") {
        Ok(info) if info.n_elements != head_dim as u64 / 2 => {
            return Err(invalid(
                "rope_freqs.weight",
                format!(
                    "has {} factors, one per pair of head_dim {head_dim} is {}",
                    info.n_elements,
                    head_dim / 2
                ),
            ))
        }
        Ok(_) => Some(gguf.dequantize("rope_freqs.weight")?),
        Err(_) => None,
    };
    let scaling = RopeScaling { linear, factors };
    scaling
        .validate(head_dim)
        .map_err(|e| invalid(&format!("{} / rope_freqs.weight", keys.get("rope.scaling")), e.to_string()))?;
    Ok(scaling)
}
