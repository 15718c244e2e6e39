//! The llama config and the CPU reference forward pass: on small GGUF files
//! built in memory (config errors, shapes, prefill = decode), and on the
//! default model SmolLM2-135M-Instruct when it has been fetched (known
//! hyperparameters, "The capital of France is" → " Paris", perplexity).

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use wgqa::model::{CpuModel, Gguf, LlamaConfig, MetaArray, MetaValue};
use wgqa::{DType, Error};
use wgqa_testkit::gguf_writer::{build, f32_weights, tensor, RawTensor};
use wgqa_testkit::model_file::default_model_path;

// ---------------------------------------------------------------------------
// A tiny llama built in memory: 2 layers, width 8, 2 query heads sharing one
// KV head of dim 4, FFN 12, 10 tokens, deterministic pseudo-random weights.

const F32: u32 = 0;

fn tiny_metadata() -> Vec<(&'static str, MetaValue)> {
    vec![
        ("general.architecture", MetaValue::Str("llama".into())),
        ("llama.block_count", MetaValue::U32(2)),
        ("llama.embedding_length", MetaValue::U32(8)),
        ("llama.feed_forward_length", MetaValue::U32(12)),
        ("llama.attention.head_count", MetaValue::U32(2)),
        ("llama.attention.head_count_kv", MetaValue::U32(1)),
        ("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-5)),
        ("llama.context_length", MetaValue::U32(32)),
        ("llama.vocab_size", MetaValue::U32(10)),
    ]
}

fn weights(name: &str, dims: &[u64]) -> RawTensor {
    f32_weights(name, dims, 1.0)
}

fn tiny_tensors() -> Vec<RawTensor> {
    tiny_tensors_with_kv_heads([1, 1])
}

/// The tiny tensors with K and V projections for `kv_heads[i]` heads in block i.
fn tiny_tensors_with_kv_heads(kv_heads: [u64; 2]) -> Vec<RawTensor> {
    let mut t = vec![weights("token_embd.weight", &[8, 10]), weights("output_norm.weight", &[8])];
    for (i, kv) in kv_heads.into_iter().enumerate() {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        t.extend([
            weights(&n("attn_norm"), &[8]),
            weights(&n("attn_q"), &[8, 8]),
            weights(&n("attn_k"), &[8, 4 * kv]),
            weights(&n("attn_v"), &[8, 4 * kv]),
            weights(&n("attn_output"), &[8, 8]),
            weights(&n("ffn_norm"), &[8]),
            weights(&n("ffn_gate"), &[8, 12]),
            weights(&n("ffn_up"), &[8, 12]),
            weights(&n("ffn_down"), &[12, 8]),
        ]);
    }
    t
}

fn tiny(kvs: &[(&'static str, MetaValue)], tensors: &[RawTensor]) -> Gguf {
    Gguf::from_vec(build(3, 32, kvs, tensors).buf).expect("a valid GGUF")
}

/// The tiny metadata with `key` replaced (or removed when `value` is None).
fn with_key(key: &'static str, value: Option<MetaValue>) -> Gguf {
    let mut kvs: Vec<_> = tiny_metadata().into_iter().filter(|(k, _)| *k != key).collect();
    kvs.extend(value.map(|v| (key, v)));
    tiny(&kvs, &tiny_tensors())
}

fn config_err(gguf: &Gguf) -> String {
    LlamaConfig::from_gguf(gguf).expect_err("the config should be rejected").to_string()
}

#[test]
fn tiny_config_defaults_and_sizes() {
    let cfg = LlamaConfig::from_gguf(&tiny(&tiny_metadata(), &tiny_tensors())).unwrap();
    assert_eq!((cfg.n_layers, cfg.embedding, cfg.ffn, cfg.q_heads, cfg.head_dim), (2, 8, 12, 2, 4));
    assert_eq!((cfg.kv_heads(), cfg.group_size(), cfg.vocab_size), (1, 2, 10));
    assert_eq!(cfg.rope_base, 10_000.0, "the default RoPE base");
    assert!(cfg.tied_output, "no output.weight means a tied head");
    assert_eq!(cfg.attention_config(1).unwrap().dtype, DType::F16, "f16 KV by default");
    // Per token: 2 layers x 1 KV head x (4 + 4) dims x 2 bytes.
    assert_eq!(cfg.kv_bytes_per_token(), 32);
    assert_eq!(cfg.clone().with_kv_dtype(DType::F32).kv_bytes_per_token(), 64);
    assert!(matches!(cfg.attention_config(2), Err(Error::LayerOutOfRange { layer: 2, layers: 2 })));

    let without = |key| tiny_metadata().into_iter().filter(move |(k, _)| *k != key);
    let mha_file = tiny(
        &without("llama.attention.head_count_kv").collect::<Vec<_>>(),
        &tiny_tensors_with_kv_heads([2, 2]),
    );
    let mha = LlamaConfig::from_gguf(&mha_file).unwrap();
    assert_eq!(mha.kv_heads(), 2, "absent head_count_kv means MHA");
    let per_layer = MetaValue::Array(MetaArray::I32(vec![1, 2]));
    let kvs: Vec<_> = without("llama.attention.head_count_kv")
        .chain([("llama.attention.head_count_kv", per_layer)])
        .collect();
    let var = LlamaConfig::from_gguf(&tiny(&kvs, &tiny_tensors_with_kv_heads([1, 2]))).unwrap();
    assert_eq!(var.layers.iter().map(|l| l.kv_heads).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn invalid_configs_name_the_key_and_value() {
    let cases: Vec<(Gguf, &str)> = vec![
        (with_key("llama.block_count", None), "key `llama.block_count` is missing"),
        (
            with_key("llama.embedding_length", Some(MetaValue::U32(0))),
            "`llama.embedding_length` must be at least 1",
        ),
        (
            with_key("llama.attention.head_count", Some(MetaValue::U32(3))),
            "head_count` (3) does not divide llama.embedding_length (8)",
        ),
        (
            with_key("llama.attention.head_count_kv", Some(MetaValue::U32(3))),
            "q_heads (2) must be a multiple of kv_heads (3)",
        ),
        (
            with_key("llama.attention.head_count_kv", Some(MetaValue::Array(MetaArray::U32(vec![1])))),
            "has 1 entries for 2 layers",
        ),
        (
            with_key("llama.rope.freq_base", Some(MetaValue::F32(f32::NAN))),
            "freq_base` must be finite and > 1",
        ),
        (
            with_key("llama.rope.dimension_count", Some(MetaValue::U32(2))),
            "is 2, but wgqa rotates whole heads",
        ),
        (
            with_key("llama.attention.layer_norm_rms_epsilon", Some(MetaValue::F32(-1.0))),
            "must be finite and positive, got -1",
        ),
        (with_key("llama.vocab_size", None), "key `tokenizer.ggml.tokens` is missing"),
        (with_key("llama.context_length", Some(MetaValue::Str("long".into()))), "expected an integer"),
        (with_key("general.architecture", Some(MetaValue::Str("gpt2".into()))), "architecture `gpt2`"),
    ];
    for (gguf, msg) in cases {
        let err = config_err(&gguf);
        assert!(err.contains(msg), "{err:?} should contain {msg:?}");
    }
}

#[test]
fn tiny_model_checks_shapes_and_inputs() {
    let mut tensors = tiny_tensors();
    tensors[3] = weights("blk.0.attn_q.weight", &[8, 4]);
    let err = CpuModel::load(&tiny(&tiny_metadata(), &tensors)).err().expect("wrong shape").to_string();
    assert!(err.contains("`blk.0.attn_q.weight` has dims [8, 4], expected [8, 8]"), "{err}");

    let mut model = CpuModel::load(&tiny(&tiny_metadata(), &tiny_tensors())).unwrap();
    let err = model.forward(&[1, 10]).unwrap_err().to_string();
    assert!(err.contains("token id 10 at index 1 is out of range: the vocabulary has 10"), "{err}");
    model.forward(&[1; 30]).unwrap();
    let err = model.forward(&[1; 3]).unwrap_err().to_string();
    assert!(err.contains("33 tokens does not fit the model's context of 32"), "{err}");
    assert_eq!(model.len(), 30, "failed calls leave the cache as it was");
    model.reset();
    assert!(model.is_empty() && model.forward(&[]).unwrap().is_empty());
    assert!(matches!(model.perplexity(&[1]), Err(Error::TooFewTokens { .. })));
    assert!(matches!(model.perplexity(&[1, 99]), Err(Error::TokenOutOfRange { index: 1, .. })));
}

#[test]
fn tiny_model_decode_equals_prefill() {
    let gguf = tiny(&tiny_metadata(), &tiny_tensors());
    let mut model = CpuModel::load(&gguf).unwrap();
    let tokens = [3, 1, 4, 1, 5, 9, 2, 6];
    let prefill = model.forward(&tokens).unwrap();
    model.reset();
    let decode: Vec<Vec<f32>> = tokens.iter().flat_map(|&t| model.forward(&[t]).unwrap()).collect();
    assert_eq!(prefill, decode);
    assert!(prefill.iter().flatten().all(|l| l.is_finite()));
}

// ---------------------------------------------------------------------------
// SmolLM2-135M-Instruct.

struct Smol {
    gguf: Gguf,
    model: Mutex<CpuModel>,
}

/// The default model, loaded once for all tests (its f32 weights take
/// ~0.5 GB); `None`, with a note, when it has not been fetched.
fn smol() -> Option<&'static Smol> {
    static SMOL: OnceLock<Option<Smol>> = OnceLock::new();
    SMOL.get_or_init(|| {
        let path = default_model_path()?;
        let gguf = Gguf::open(&path).unwrap();
        let start = Instant::now();
        let model = CpuModel::load(&gguf).unwrap();
        eprintln!("reference model loaded in {:.2?}", start.elapsed());
        Some(Smol { gguf, model: Mutex::new(model) })
    })
    .as_ref()
}

impl Smol {
    /// The model, reset; tests take turns with it.
    fn model(&self) -> MutexGuard<'_, CpuModel> {
        let mut m = self.model.lock().unwrap_or_else(|e| e.into_inner());
        m.reset();
        m
    }

    fn vocab(&self) -> &[String] {
        self.gguf.get_str_array("tokenizer.ggml.tokens").unwrap()
    }

    /// Token ids of GPT-2 byte-level pieces (`Ġ` is a leading space),
    /// without a tokenizer: each piece must be one token of the vocabulary.
    fn ids(&self, pieces: &[&str]) -> Vec<u32> {
        let vocab = self.vocab();
        let id =
            |p: &str| vocab.iter().position(|v| v == p).unwrap_or_else(|| panic!("{p:?} is not a token"));
        pieces.iter().map(|p| id(p) as u32).collect()
    }
}

/// Split plain English into word pieces the way GPT-2 BPE does when every
/// word is in the vocabulary: a word takes its leading space (`Ġ`),
/// punctuation stands alone.
fn word_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    for (i, word) in text.split(' ').enumerate() {
        let (body, punct) = word.split_at(word.trim_end_matches([',', '.']).len());
        pieces.push(if i == 0 { body.to_string() } else { format!("Ġ{body}") });
        pieces.extend(punct.chars().map(String::from));
    }
    pieces
}

fn top2(logits: &[f32]) -> ((usize, f32), f32) {
    let mut best = (0, f32::NEG_INFINITY);
    let mut second = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l > best.1 {
            second = best.1;
            best = (i, l);
        } else if l > second {
            second = l;
        }
    }
    (best, second)
}

#[test]
fn smollm2_config_matches_known_numbers() {
    let Some(smol) = smol() else { return };
    let cfg = LlamaConfig::from_gguf(&smol.gguf).unwrap();
    assert_eq!(cfg.n_layers, 30);
    assert_eq!((cfg.embedding, cfg.ffn), (576, 1536));
    assert_eq!((cfg.q_heads, cfg.kv_heads(), cfg.group_size(), cfg.head_dim), (9, 3, 3, 64));
    assert_eq!((cfg.rope_base, cfg.rms_eps), (100_000.0, 1e-5));
    assert_eq!((cfg.vocab_size, cfg.context_length), (49152, 8192));
    assert!(cfg.tied_output);
    // 30 layers x 3 KV heads x (64 + 64) dims x 2 bytes (f16).
    assert_eq!(cfg.kv_bytes_per_token(), 23_040);
}

#[test]
fn greedy_continues_the_capital_of_france_with_paris() {
    let Some(smol) = smol() else { return };
    let prompt = smol.ids(&["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"]);
    let mut model = smol.model();
    let start = Instant::now();
    let logits = model.forward(&prompt).unwrap();
    let prefill = start.elapsed();
    assert!(logits.iter().flatten().all(|l| l.is_finite()), "non-finite logits");
    let ((best, top), second) = top2(&logits[logits.len() - 1]);
    let piece = &smol.vocab()[best];
    eprintln!(
        "prefill of {} tokens: {prefill:.2?}; next {piece:?}, margin {:.3}",
        prompt.len(),
        top - second
    );
    assert_eq!(piece, "ĠParis");

    // A few more greedy steps, to time decode and show the continuation.
    let (mut text, mut next, steps) = (piece.clone(), best as u32, 8);
    let start = Instant::now();
    for _ in 0..steps {
        let logits = model.forward(&[next]).unwrap();
        next = top2(&logits[0]).0 .0 as u32;
        text.push_str(&smol.vocab()[next as usize]);
    }
    let per_token = start.elapsed() / steps;
    eprintln!("decode: {per_token:.2?}/token; greedy text: {:?}", text.replace('Ġ', " ").replace('Ċ', "\n"));
}

#[test]
fn smollm2_prefill_equals_one_token_at_a_time() {
    let Some(smol) = smol() else { return };
    let pieces = word_pieces("The quick brown fox jumps over the lazy dog, and the cat sat.");
    let tokens = smol.ids(&pieces.iter().map(String::as_str).collect::<Vec<_>>());
    let mut model = smol.model();
    let prefill = model.forward(&tokens).unwrap();
    model.reset();
    let decode: Vec<Vec<f32>> = tokens.iter().flat_map(|&t| model.forward(&[t]).unwrap()).collect();
    for (pos, (p, d)) in prefill.iter().zip(&decode).enumerate() {
        let scale = p.iter().fold(0f32, |m, l| m.max(l.abs()));
        let (i, diff) = p.iter().zip(d).map(|(a, b)| (a - b).abs()).enumerate().fold((0, 0f32), |m, x| {
            if x.1 > m.1 {
                x
            } else {
                m
            }
        });
        assert!(diff <= 1e-4 * scale, "position {pos}, logit {i}: prefill {} vs decode {}", p[i], d[i]);
        assert!(p.iter().all(|l| l.is_finite()), "non-finite logit at position {pos}");
    }
}

/// Plain English of common words, each a single token of SmolLM2's vocabulary.
const PARAGRAPH: &str = "The sun rises in the east and sets in the west. Every morning, people wake up \
    and go to work. Children walk to school with their friends, and the streets are full of cars. In the \
    evening, families sit down together to eat dinner and talk about their day.";

#[test]
fn perplexity_of_plain_english_is_sane() {
    let Some(smol) = smol() else { return };
    let pieces = word_pieces(PARAGRAPH);
    let tokens = smol.ids(&pieces.iter().map(String::as_str).collect::<Vec<_>>());
    let mut model = smol.model();
    let start = Instant::now();
    let ppl = model.perplexity(&tokens).unwrap();
    eprintln!("perplexity {ppl:.2} over {} tokens ({:.2?})", tokens.len(), start.elapsed());
    // A 135M model on simple, predictable English: well below a unigram
    // model's hundreds, well above a memorised text's ~1.
    assert!((3.0..40.0).contains(&ppl), "perplexity {ppl}");
}

/// RoPE scaling from the file: linear (and its older key), per-pair factors
/// from `rope_freqs.weight`, which change the logits; a factor table of the
/// wrong length or an unimplemented scaling type is an error naming it.
#[test]
fn tiny_rope_scaling_is_read_and_used() {
    let str_key = |k: &'static str, v: &str| (k, MetaValue::Str(v.into()));
    let meta =
        |extra: Vec<(&'static str, MetaValue)>| tiny_metadata().into_iter().chain(extra).collect::<Vec<_>>();
    let linear = meta(vec![
        str_key("llama.rope.scaling.type", "linear"),
        ("llama.rope.scaling.factor", MetaValue::F32(4.0)),
    ]);
    assert_eq!(LlamaConfig::from_gguf(&tiny(&linear, &tiny_tensors())).unwrap().rope_scaling.linear, 4.0);
    let old = meta(vec![("llama.rope.scale_linear", MetaValue::F32(2.0))]);
    assert_eq!(LlamaConfig::from_gguf(&tiny(&old, &tiny_tensors())).unwrap().rope_scaling.linear, 2.0);

    let factors = |values: &[f32]| {
        let data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let mut t = tiny_tensors();
        t.push(tensor("rope_freqs.weight", &[values.len() as u64], F32, data));
        t
    };
    let cfg = LlamaConfig::from_gguf(&tiny(&tiny_metadata(), &factors(&[2.0, 8.0]))).unwrap();
    assert_eq!(cfg.rope_scaling.factors, Some(vec![2.0, 8.0]));
    let tokens = [3, 1, 4, 1, 5, 9, 2, 6];
    let plain = CpuModel::load(&tiny(&tiny_metadata(), &tiny_tensors())).unwrap().forward(&tokens).unwrap();
    let scaled =
        CpuModel::load(&tiny(&tiny_metadata(), &factors(&[2.0, 8.0]))).unwrap().forward(&tokens).unwrap();
    assert_ne!(plain, scaled, "per-pair factors change the logits");
    let err = config_err(&tiny(&tiny_metadata(), &factors(&[2.0, -1.0])));
    assert!(err.contains("rope_freqs.weight") && err.contains("-1"), "{err}");

    let err = config_err(&tiny(&tiny_metadata(), &factors(&[1.0; 3])));
    assert!(err.contains("rope_freqs.weight") && err.contains("3 factors"), "{err}");
    let yarn = meta(vec![str_key("llama.rope.scaling.type", "yarn")]);
    let err = config_err(&tiny(&yarn, &tiny_tensors()));
    assert!(err.contains("llama.rope.scaling.type") && err.contains("yarn"), "{err}");
}
