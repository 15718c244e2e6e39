//! Llama hyperparameters read from GGUF metadata (`llama.*` keys), checked
//! once so the forward passes (CPU reference and GPU) can trust them.

use super::gguf::{require_llama, Gguf};
use super::gguf_meta::{MetaArray, MetaValue};
use super::tensors::{blocks_in_file, check_tensors};
use crate::error::{Error, Result};
use crate::{AttentionConfig, DType, RopeLayout, RopeScaling};

/// RoPE base llama.cpp assumes when `llama.rope.freq_base` is absent.
const DEFAULT_ROPE_BASE: f32 = 10_000.0;

/// Everything a llama forward pass needs to know about a model.
#[derive(Clone, Debug, PartialEq)]
pub struct LlamaConfig {
    /// Transformer blocks (`llama.block_count`).
    pub n_layers: u32,
    /// Width of the residual stream (`llama.embedding_length`).
    pub embedding: u32,
    /// Hidden width of the SwiGLU MLP (`llama.feed_forward_length`).
    pub ffn: u32,
    /// Query heads (`llama.attention.head_count`).
    pub q_heads: u32,
    /// Dimension of one query/key head: `embedding / q_heads` unless
    /// `llama.attention.key_length` says otherwise.
    pub head_dim: u32,
    /// Dimension of one value head (`llama.attention.value_length`, default `head_dim`).
    pub v_head_dim: u32,
    /// RoPE base (`llama.rope.freq_base`, default 10000).
    pub rope_base: f32,
    /// Linear position scaling and per-pair frequency factors
    /// (`llama.rope.scaling.*`, `rope_freqs.weight`); none by default.
    pub rope_scaling: RopeScaling,
    /// GGUF llama checkpoints have Q/K permuted so that RoPE rotates adjacent
    /// pairs (llama.cpp's convention); always [`RopeLayout::Adjacent`] here.
    pub rope_layout: RopeLayout,
    /// RMSNorm epsilon (`llama.attention.layer_norm_rms_epsilon`).
    pub rms_eps: f32,
    /// Longest sequence the model was trained for (`llama.context_length`).
    pub context_length: u32,
    /// Rows of the embedding and of the output head.
    pub vocab_size: u32,
    /// The Q, K and V projections add biases (`blk.N.attn_q.bias`, ...:
    /// Qwen2-style files); every block then has all three.
    pub qkv_bias: bool,
    /// The output head reuses `token_embd.weight` (no `output.weight` tensor).
    pub tied_output: bool,
    /// Per-layer attention (KV heads may differ per layer, e.g. after a
    /// variable-GQA conversion). KV storage is f16 unless changed with
    /// [`LlamaConfig::with_kv_dtype`].
    pub layers: Vec<AttentionConfig>,
}

impl LlamaConfig {
    /// Reads and validates the hyperparameters of a llama GGUF.
    pub fn from_gguf(gguf: &Gguf) -> Result<LlamaConfig> {
        require_llama(gguf)?;
        let n_layers = positive(gguf, "llama.block_count")?;
        // Agreed with the tensors before any per-layer vector is sized by it.
        let in_file = blocks_in_file(gguf)?;
        if n_layers != in_file {
            return Err(invalid(
                "llama.block_count",
                format!("is {n_layers}, but the file holds the tensors of {in_file} blocks"),
            ));
        }
        let embedding = positive(gguf, "llama.embedding_length")?;
        let ffn = positive(gguf, "llama.feed_forward_length")?;
        let q_heads = positive(gguf, "llama.attention.head_count")?;
        let context_length = positive(gguf, "llama.context_length")?;
        if embedding % q_heads != 0 && gguf.get("llama.attention.key_length").is_none() {
            return Err(invalid(
                "llama.attention.head_count",
                format!("({q_heads}) does not divide llama.embedding_length ({embedding})"),
            ));
        }
        let head_dim = match gguf.opt_u32("llama.attention.key_length")? {
            Some(d) => d,
            None => embedding / q_heads,
        };
        let v_head_dim = gguf.opt_u32("llama.attention.value_length")?.unwrap_or(head_dim);

        let rope_base = gguf.opt_f32("llama.rope.freq_base")?.unwrap_or(DEFAULT_ROPE_BASE);
        if !rope_base.is_finite() || rope_base <= 1.0 {
            return Err(invalid("llama.rope.freq_base", format!("must be finite and > 1, got {rope_base}")));
        }
        // Partial rotary embeddings are not implemented: a model rotating
        // fewer dims than the head has would silently decode garbage.
        if let Some(dims) = gguf.opt_u32("llama.rope.dimension_count")? {
            if dims != head_dim {
                return Err(invalid(
                    "llama.rope.dimension_count",
                    format!("is {dims}, but wgqa rotates whole heads (head_dim {head_dim})"),
                ));
            }
        }
        let rope_scaling = rope_scaling(gguf, head_dim)?;
        let rms_eps = gguf.get_f32("llama.attention.layer_norm_rms_epsilon")?;
        if !rms_eps.is_finite() || rms_eps <= 0.0 {
            return Err(invalid(
                "llama.attention.layer_norm_rms_epsilon",
                format!("must be finite and positive, got {rms_eps}"),
            ));
        }

        let vocab_size = vocab_size(gguf)?;
        let tied_output = gguf.tensor("output.weight").is_err();
        let qkv_bias = gguf.tensor("blk.0.attn_q.bias").is_ok();
        let layers = kv_heads(gguf, n_layers, q_heads)?
            .into_iter()
            .map(|kv| {
                // `new` checks the heads; v_head_dim is checked after it is set.
                let cfg = AttentionConfig::new(q_heads, kv, head_dim).map_err(attention_key)?;
                let cfg = cfg.with_v_head_dim(v_head_dim);
                cfg.validate().map_err(attention_key)?;
                Ok(cfg.with_dtype(DType::F16))
            })
            .collect::<Result<Vec<_>>>()?;

        let config = LlamaConfig {
            n_layers,
            embedding,
            ffn,
            q_heads,
            head_dim,
            v_head_dim,
            rope_base,
            rope_scaling,
            rope_layout: RopeLayout::Adjacent,
            rms_eps,
            context_length,
            vocab_size,
            tied_output,
            qkv_bias,
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
        if self.layers.len() != self.n_layers as usize {
            return Err(invalid(
                "llama.block_count",
                format!("is {}, but the config has {} layers", self.n_layers, self.layers.len()),
            ));
        }
        for a in &self.layers {
            let heads =
                [("llama.attention.head_count", a.q_heads), ("llama.attention.head_count_kv", a.kv_heads)];
            let dims =
                [("llama.attention.key_length", a.head_dim), ("llama.attention.value_length", a.v_head_dim)];
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

    /// Attention config of `layer`.
    pub fn attention_config(&self, layer: usize) -> Result<&AttentionConfig> {
        self.layers.get(layer).ok_or(Error::LayerOutOfRange { layer, layers: self.layers.len() })
    }
}

fn invalid(key: &str, problem: String) -> Error {
    Error::ModelConfig { key: key.to_string(), problem }
}

/// An attention-config error, named by the metadata key it came from.
fn attention_key(e: Error) -> Error {
    let key = match &e {
        Error::ZeroHeads { .. } | Error::HeadsNotDivisible { .. } => "llama.attention.head_count_kv",
        Error::InvalidHeadDim { field: "head_dim", .. } => "llama.attention.key_length",
        Error::InvalidHeadDim { .. } => "llama.attention.value_length",
        _ => return e,
    };
    invalid(key, e.to_string())
}

/// A required integer key that must be at least 1.
fn positive(gguf: &Gguf, key: &str) -> Result<u32> {
    match gguf.get_u32(key)? {
        0 => Err(invalid(key, "must be at least 1, got 0".to_string())),
        v => Ok(v),
    }
}

/// The vocabulary size: `llama.vocab_size` if present, else the length of
/// the token list.
fn vocab_size(gguf: &Gguf) -> Result<u32> {
    let n = match gguf.opt_u32("llama.vocab_size")? {
        Some(n) => n,
        None => {
            let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?.len();
            u32::try_from(tokens)
                .map_err(|_| invalid("tokenizer.ggml.tokens", format!("has {tokens} entries")))?
        }
    };
    if n == 0 {
        return Err(invalid("llama.vocab_size", "the vocabulary is empty".to_string()));
    }
    Ok(n)
}

/// KV heads per layer. llama.cpp allows `head_count_kv` to be one number or
/// one per layer; absent means MHA.
fn kv_heads(gguf: &Gguf, n_layers: u32, q_heads: u32) -> Result<Vec<u32>> {
    const KEY: &str = "llama.attention.head_count_kv";
    let per_layer: Vec<i128> = match gguf.get(KEY) {
        None => return Ok(vec![q_heads; n_layers as usize]),
        Some(MetaValue::Array(a)) => int_array(a).ok_or_else(|| Error::GgufKeyType {
            key: KEY.to_string(),
            expected: "an integer or an array of integers",
            found: "an array of another type".to_string(),
        })?,
        Some(_) => vec![gguf.get_u32(KEY)? as i128; n_layers as usize],
    };
    if per_layer.len() != n_layers as usize {
        return Err(invalid(KEY, format!("has {} entries for {n_layers} layers", per_layer.len())));
    }
    per_layer
        .into_iter()
        .map(|v| match u32::try_from(v) {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(invalid(KEY, format!("must be between 1 and {q_heads}, got {v}"))),
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

/// RoPE scaling as llama.cpp reads it: `llama.rope.scaling.type` "none" or
/// "linear" with `llama.rope.scaling.factor` (or the older
/// `llama.rope.scale_linear`), and the optional `rope_freqs.weight` tensor of
/// per-pair factors. Other scaling types (YaRN, LongRoPE) are errors.
fn rope_scaling(gguf: &Gguf, head_dim: u32) -> Result<RopeScaling> {
    let linear = match gguf.opt_str("llama.rope.scaling.type")? {
        None | Some("none") => gguf.opt_f32("llama.rope.scale_linear")?.unwrap_or(1.0),
        Some("linear") => gguf.get_f32("llama.rope.scaling.factor")?,
        Some(other) => {
            return Err(invalid(
                "llama.rope.scaling.type",
                format!("is {other:?}; wgqa implements none and linear"),
            ))
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
        .map_err(|e| invalid("llama.rope.scaling / rope_freqs.weight", e.to_string()))?;
    Ok(scaling)
}
