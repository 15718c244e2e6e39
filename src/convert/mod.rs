//! Model conversion across the GQA spectrum: a llama GGUF with a different
//! number of KV heads per layer (MHA, GQA, MQA, or Variable GQA under a KV
//! budget), its K/V projections merged or replicated, everything else copied
//! byte for byte.
//!
//! ```no_run
//! # fn demo() -> wgqa::Result<()> {
//! use wgqa::convert::{convert, ConvertOptions, KvTarget, Method};
//! use wgqa::model::Gguf;
//! let gguf = Gguf::open(wgqa::model::DEFAULT_MODEL)?;
//! let opts = ConvertOptions::new(KvTarget::Uniform(1), Method::Mean);
//! let out = convert(&gguf, &opts)?;
//! wgqa::convert::write_new_file("mqa.gguf".as_ref(), &out.bytes, false)?;
//! # Ok(()) }
//! ```

mod allocate;
mod calibrate;
mod fit;
mod gguf_write;
mod heads;
#[cfg(not(target_arch = "wasm32"))]
mod output;
mod quantize;

use std::borrow::Cow;
use std::str::FromStr;

pub use allocate::{allocate, LayerChoice};
pub use calibrate::Calibration;
pub use gguf_write::{array_type, encode_value, value_type, write_gguf, TensorOut};
#[cfg(not(target_arch = "wasm32"))]
pub use output::write_new_file;
pub use quantize::{can_write, quantize};

use crate::error::{Error, Result};
use crate::model::{Gguf, LlamaConfig, MetaArray, MetaValue, TensorType};
use heads::Rng;

/// How many KV heads each layer of the converted model has.
#[derive(Clone, Debug, PartialEq)]
pub enum KvTarget {
    /// The same number in every layer.
    Uniform(u32),
    /// One number per layer.
    PerLayer(Vec<u32>),
    /// Variable GQA: KV bytes per token (f16 K and V, all layers) the
    /// converted model may use; each layer gets the KV heads that lose the
    /// least on the calibration text.
    Budget(u64),
}

/// How a new KV head is built from the source heads it stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Mean-pool the group's heads (Ainslie et al., 2023).
    Mean,
    /// Keep the group's first head.
    First,
    /// Random normal values of the heads' scale (`seed`).
    Random,
    /// Fitted on a calibration text, layer by layer in closed form: K as a
    /// RoPE-commuting (per-pair complex) combination of the group's heads
    /// fitted to the original logits, V by least squares so that each query
    /// head's attention output, with the merged keys, matches the original
    /// model's (see `fit.rs`).
    Calibrated,
}

impl Method {
    pub const NAMES: &'static str = "mean, first, random or calibrated";

    pub fn name(self) -> &'static str {
        match self {
            Method::Mean => "mean",
            Method::First => "first",
            Method::Random => "random",
            Method::Calibrated => "calibrated",
        }
    }
}

impl FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Method> {
        Ok(match s {
            "mean" => Method::Mean,
            "first" => Method::First,
            "random" => Method::Random,
            "calibrated" => Method::Calibrated,
            _ => {
                return Err(Error::ConvertOption {
                    option: "--method",
                    problem: format!("`{s}` is not a method: use {}", Method::NAMES),
                })
            }
        })
    }
}

/// Everything a conversion needs besides the model.
#[derive(Clone, Debug)]
pub struct ConvertOptions {
    pub target: KvTarget,
    pub method: Method,
    /// Seed of [`Method::Random`].
    pub seed: u64,
    /// Type the K/V projections are written in; `None` keeps each one's type.
    pub kv_type: Option<TensorType>,
    /// Token ids of the calibration text ([`Method::Calibrated`] and
    /// [`KvTarget::Budget`] need it; the first `context_length` are used).
    pub calibration: Vec<u32>,
    /// Leading calibration tokens scored for each layer's sensitivity.
    pub sensitivity_tokens: usize,
}

impl ConvertOptions {
    pub fn new(target: KvTarget, method: Method) -> ConvertOptions {
        ConvertOptions {
            target,
            method,
            seed: 0,
            kv_type: None,
            calibration: Vec::new(),
            sensitivity_tokens: 128,
        }
    }

    /// Whether the conversion runs the model over `calibration` (the
    /// calibrated method, or a budget's per-layer sensitivities).
    pub fn needs_calibration(&self) -> bool {
        self.method == Method::Calibrated || matches!(self.target, KvTarget::Budget(_))
    }
}

/// A converted model.
pub struct Converted {
    /// The GGUF file.
    pub bytes: Vec<u8>,
    /// KV heads per layer.
    pub kv_heads: Vec<u32>,
    /// For a budget: each layer's choice and its measured loss increase.
    pub allocation: Option<Vec<LayerChoice>>,
}

fn bad(option: &'static str, problem: String) -> Error {
    Error::ConvertOption { option, problem }
}

/// KV heads per layer for a fixed target, checked against the model.
fn fixed_heads(cfg: &LlamaConfig, target: &KvTarget) -> Result<Option<Vec<u32>>> {
    let (n, h) = (cfg.n_layers as usize, cfg.q_heads);
    let (option, heads) = match target {
        KvTarget::Uniform(g) => ("--kv-heads", vec![*g; n]),
        KvTarget::PerLayer(v) if v.len() != n => {
            return Err(bad(
                "--kv-heads-per-layer",
                format!("has {} entries, the model has {n} layers", v.len()),
            ))
        }
        KvTarget::PerLayer(v) => ("--kv-heads-per-layer", v.clone()),
        KvTarget::Budget(_) => return Ok(None),
    };
    if let Some((layer, g)) = heads.iter().enumerate().find(|(_, &g)| g == 0 || h % g != 0) {
        return Err(bad(
            option,
            format!(
                "{g} KV heads (layer {layer}) must divide the {h} query heads: use one of {:?}",
                divisors(h)
            ),
        ));
    }
    Ok(Some(heads))
}

/// The divisors of `n`, ascending: the KV-head counts a layer of `n` query heads can have.
pub fn divisors(n: u32) -> Vec<u32> {
    (1..=n).filter(|d| n.is_multiple_of(*d)).collect()
}

/// f16 KV bytes per token of a model with `heads[l]` KV heads in layer `l`.
pub fn kv_bytes_per_token(cfg: &LlamaConfig, heads: &[u32]) -> u64 {
    heads.iter().map(|&g| head_bytes(cfg) * g as u64).sum()
}

/// f16 K and V bytes of one KV head for one token.
fn head_bytes(cfg: &LlamaConfig) -> u64 {
    (cfg.head_dim + cfg.v_head_dim) as u64 * 2
}

fn check_budget(cfg: &LlamaConfig, budget: u64) -> Result<()> {
    let n = cfg.n_layers as usize;
    let (mqa, mha) = (kv_bytes_per_token(cfg, &vec![1; n]), kv_bytes_per_token(cfg, &vec![cfg.q_heads; n]));
    if budget < mqa || budget > mha {
        return Err(bad(
            "--kv-budget",
            format!("{budget} bytes per token is outside what this model can have: from {mqa} (MQA) to {mha} (MHA)"),
        ));
    }
    Ok(())
}

/// Checks the target and the K/V type of `opts` against a model, as
/// [`convert`] does first (the calibration text is checked there).
pub fn check(cfg: &LlamaConfig, opts: &ConvertOptions) -> Result<()> {
    if let Some(ty) = opts.kv_type {
        if !matches!(ty, TensorType::F16 | TensorType::Q8_0) {
            return Err(bad("--kv-type", format!("{} is not offered: use f16 or q8_0", ty.name())));
        }
    }
    fixed_heads(cfg, &opts.target)?;
    match opts.target {
        KvTarget::Budget(b) => check_budget(cfg, b),
        _ => Ok(()),
    }
}

/// Converts `gguf` (a llama model) as `opts` says. Every option is checked
/// before any work is done.
pub fn convert(gguf: &Gguf, opts: &ConvertOptions) -> Result<Converted> {
    let cfg = LlamaConfig::from_gguf(gguf)?;
    // Conversion writes `llama.*` keys and fits K with one RoPE base.
    if cfg.arch != crate::model::Architecture::Llama {
        return Err(bad("model", format!("is {}; conversion handles llama models", cfg.arch.name())));
    }
    check(&cfg, opts)?;
    if opts.kv_type.is_none() {
        for layer in 0..cfg.n_layers {
            for which in ["attn_k", "attn_v"] {
                let info = gguf.tensor(&format!("blk.{layer}.{which}.weight"))?;
                if !can_write(info.ty) {
                    return Err(bad(
                        "--kv-type",
                        format!(
                            "is needed: {} is {}, which wgqa cannot write back; pass f16 or q8_0",
                            info.name,
                            info.ty.name()
                        ),
                    ));
                }
            }
        }
    }
    let fixed = fixed_heads(&cfg, &opts.target)?;
    let needs_calibration = opts.needs_calibration();
    if needs_calibration && opts.calibration.len() < 2 {
        return Err(bad(
            "--calib",
            format!(
                "has {} tokens: method {} and --kv-budget need a calibration text",
                opts.calibration.len(),
                opts.method.name()
            ),
        ));
    }
    let calibration = match needs_calibration {
        true => Some(Calibration::run(gguf, &cfg, &opts.calibration, opts.sensitivity_tokens)?),
        false => None,
    };
    let source =
        Source { gguf, cfg: &cfg, calibration: calibration.as_ref(), method: opts.method, seed: opts.seed };
    let (kv_heads, allocation) = match (fixed, &opts.target) {
        (Some(h), _) => (h, None),
        (None, KvTarget::Budget(budget)) => {
            let calibration = calibration.as_ref().ok_or_else(|| bad("--calib", "is missing".into()))?;
            let choices = allocate(&cfg, *budget, |layer, g| {
                let (k, v) = source.layer_kv(layer, g)?;
                calibration.loss_increase(layer, g, &k, &v)
            })?;
            (choices.iter().map(|c| c.kv_heads).collect(), Some(choices))
        }
        (None, _) => unreachable!("fixed_heads returns None only for a budget"),
    };
    let bytes = source.write(&kv_heads, opts.kv_type)?;
    Ok(Converted { bytes, kv_heads, allocation })
}

/// The model being converted.
struct Source<'a> {
    gguf: &'a Gguf,
    cfg: &'a LlamaConfig,
    calibration: Option<&'a Calibration>,
    method: Method,
    seed: u64,
}

impl Source<'_> {
    fn src_heads(&self, layer: usize) -> u32 {
        self.cfg.layers[layer].kv_heads
    }

    /// The K and V projections (f32, `[heads * dim, embedding]`) of `layer`
    /// with `new_heads` KV heads.
    fn layer_kv(&self, layer: usize, new_heads: u32) -> Result<(Vec<f32>, Vec<f32>)> {
        let (cfg, g0) = (self.cfg, self.src_heads(layer));
        let e = cfg.embedding as usize;
        let (d, dv) = (cfg.head_dim as usize, cfg.v_head_dim as usize);
        let k = self.projection(layer, "attn_k", d)?;
        let v = self.projection(layer, "attn_v", dv)?;
        if let (Method::Calibrated, Some(c)) = (self.method, self.calibration) {
            return Ok(fit::layer(c, layer, &k, &v, g0, new_heads));
        }
        let mut rng = Rng::new(self.seed ^ (layer as u64).wrapping_mul(0x2545_F491_4F6C_DD1D));
        let mut build = |w: &[f32], dim: usize| -> Vec<f32> {
            (0..new_heads)
                .flat_map(|j| {
                    let src = heads::sources(cfg.q_heads, g0, new_heads, j);
                    match self.method {
                        Method::Mean | Method::Calibrated => heads::mean(w, &src, dim, e),
                        Method::First => heads::first(w, &src, dim, e),
                        Method::Random => heads::random(w, &src, dim, e, &mut rng),
                    }
                })
                .collect()
        };
        let k_new = build(&k, d);
        let v_new = build(&v, dv);
        Ok((k_new, v_new))
    }

    /// A K or V projection of the source, dequantised, its shape checked.
    fn projection(&self, layer: usize, which: &str, dim: usize) -> Result<Vec<f32>> {
        let name = format!("blk.{layer}.{which}.weight");
        let rows = self.src_heads(layer) as u64 * dim as u64;
        self.gguf.tensor_with_dims(&name, &[self.cfg.embedding as u64, rows])?;
        self.gguf.dequantize(&name)
    }

    /// The converted file.
    fn write(&self, kv_heads: &[u32], kv_type: Option<TensorType>) -> Result<Vec<u8>> {
        let mut tensors = Vec::with_capacity(self.gguf.tensors().len());
        let mut new_kv = std::collections::HashMap::new();
        for (layer, &g) in kv_heads.iter().enumerate() {
            let unchanged = g == self.src_heads(layer);
            let kv = if unchanged { None } else { Some(self.layer_kv(layer, g)?) };
            for (i, which) in ["attn_k", "attn_v"].into_iter().enumerate() {
                let name = format!("blk.{layer}.{which}.weight");
                let info = self.gguf.tensor(&name)?;
                let ty = kv_type.unwrap_or(info.ty);
                let values = match (&kv, unchanged && ty == info.ty) {
                    (_, true) => None,
                    (Some((k, v)), _) => Some(if i == 0 { k.clone() } else { v.clone() }),
                    (None, false) => Some(self.gguf.dequantize(&name)?),
                };
                if let Some(values) = values {
                    let rows = (values.len() / self.cfg.embedding as usize) as u64;
                    new_kv.insert(name, (vec![self.cfg.embedding as u64, rows], ty, quantize(ty, &values)?));
                }
            }
        }
        for info in self.gguf.tensors() {
            tensors.push(match new_kv.remove(&info.name) {
                Some((dims, ty, data)) => {
                    TensorOut { name: info.name.clone(), dims, ty, data: Cow::Owned(data) }
                }
                None => TensorOut {
                    name: info.name.clone(),
                    dims: info.dims.clone(),
                    ty: info.ty,
                    data: Cow::Borrowed(self.gguf.tensor_bytes(info)?),
                },
            });
        }
        Ok(write_gguf(&self.metadata(kv_heads), &tensors, self.gguf.alignment()))
    }

    /// The source's metadata with the new KV-head counts: one number when
    /// every layer has the same, else the per-layer array llama.cpp reads.
    fn metadata(&self, kv_heads: &[u32]) -> Vec<(String, MetaValue)> {
        const KEY: &str = "llama.attention.head_count_kv";
        let value = match kv_heads.iter().all(|&g| g == kv_heads[0]) {
            true => MetaValue::U32(kv_heads[0]),
            false => MetaValue::Array(MetaArray::U32(kv_heads.to_vec())),
        };
        let mut meta: Vec<(String, MetaValue)> = self
            .gguf
            .metadata()
            .filter(|(k, _)| *k != KEY)
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let at =
            meta.iter().position(|(k, _)| k == "llama.attention.head_count").map_or(meta.len(), |i| i + 1);
        // A non-default alignment came from `general.alignment`, copied here.
        meta.insert(at, (KEY.to_string(), value));
        meta
    }
}
