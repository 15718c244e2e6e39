//! The GPU llama forward pass against the CPU reference on a small llama
//! built in memory with the details real files carry beyond SmolLM2: Q/K/V
//! biases (Qwen2-style) and RoPE scaling (linear and Llama 3.x's per-pair
//! frequency factors), and the same model as a `qwen2` file. Widths are
//! multiples of 32, as the GPU matmuls need.

use wgqa::model::{CpuModel, Gguf, LlamaModel, MetaValue};
use wgqa::reference::tolerance;
use wgqa_testkit::gguf_writer::{build, f32_weights, tensor};

const F32: u32 = 0;
const E: u64 = 64;
const FFN: u64 = 96;
const VOCAB: u64 = 40;
const HQ: u64 = 4;
const HKV: u64 = 2;
const D: u64 = 16;

fn model_file(bias: bool, rope_scaling: bool) -> Gguf {
    model_file_without("llama", bias, rope_scaling, "")
}

/// The test model of architecture `arch`, with or without biases and RoPE
/// scaling, lacking the tensor named `missing` (none when empty).
fn model_file_without(arch: &str, bias: bool, rope_scaling: bool, missing: &str) -> Gguf {
    let k = |suffix: &str| format!("{arch}.{suffix}");
    let mut kvs = vec![
        ("general.architecture".to_string(), MetaValue::Str(arch.into())),
        (k("block_count"), MetaValue::U32(2)),
        (k("embedding_length"), MetaValue::U32(E as u32)),
        (k("feed_forward_length"), MetaValue::U32(FFN as u32)),
        (k("attention.head_count"), MetaValue::U32(HQ as u32)),
        (k("attention.head_count_kv"), MetaValue::U32(HKV as u32)),
        (k("attention.layer_norm_rms_epsilon"), MetaValue::F32(1e-5)),
        (k("context_length"), MetaValue::U32(64)),
        (k("vocab_size"), MetaValue::U32(VOCAB as u32)),
    ];
    let mut t = vec![
        f32_weights("token_embd.weight", &[E, VOCAB], 2.0),
        f32_weights("output_norm.weight", &[E], 2.0),
    ];
    if rope_scaling {
        kvs.push((k("rope.scaling.type"), MetaValue::Str("linear".into())));
        kvs.push((k("rope.scaling.factor"), MetaValue::F32(3.0)));
        let factors = (0..D / 2).flat_map(|i| (1.0 + i as f32).to_le_bytes()).collect();
        t.push(tensor("rope_freqs.weight", &[D / 2], F32, factors));
    }
    for i in 0..2 {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        t.extend([
            f32_weights(&n("attn_norm"), &[E], 2.0),
            f32_weights(&n("attn_q"), &[E, HQ * D], 1.0),
            f32_weights(&n("attn_k"), &[E, HKV * D], 1.0),
            f32_weights(&n("attn_v"), &[E, HKV * D], 1.0),
            f32_weights(&n("attn_output"), &[HQ * D, E], 0.5),
            f32_weights(&n("ffn_norm"), &[E], 2.0),
            f32_weights(&n("ffn_gate"), &[E, FFN], 0.5),
            f32_weights(&n("ffn_up"), &[E, FFN], 0.5),
            f32_weights(&n("ffn_down"), &[FFN, E], 0.5),
        ]);
        if bias {
            for (p, w) in [("attn_q", HQ * D), ("attn_k", HKV * D), ("attn_v", HKV * D)] {
                t.push(f32_weights(&format!("blk.{i}.{p}.bias"), &[w], 2.0));
            }
        }
    }
    t.retain(|t| t.name != missing);
    let kvs: Vec<(&str, MetaValue)> = kvs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    Gguf::from_vec(build(3, 32, &kvs, &t).buf).expect("a valid GGUF")
}

fn logits(gguf: &Gguf, tokens: &[u32]) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let want = CpuModel::load(gguf).unwrap().forward(tokens).unwrap();
    let mut model = LlamaModel::load(wgqa_testkit::ctx(), gguf, 64, |_, _| {}).unwrap();
    let seq = model.cache_mut().add_sequence();
    let got = pollster::block_on(model.forward_all(seq, tokens)).unwrap();
    (got, want)
}

#[test]
fn biases_and_rope_scaling_match_the_reference_on_the_gpu() {
    let tokens: Vec<u32> = (0..24).map(|i| (i * 7 + 3) % VOCAB as u32).collect();
    let (plain, _) = logits(&model_file(false, false), &tokens);
    for (bias, scaling) in [(true, false), (false, true), (true, true)] {
        let (got, want) = logits(&model_file(bias, scaling), &tokens);
        let case = format!("bias {bias}, rope scaling {scaling}");
        let mut worst = 0f32;
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            worst = worst.max((g - w).abs());
        }
        // Logits of order 1-10; f16 KV on both sides, f32 sums in other orders.
        assert!(worst < tolerance::LOGITS_VS_REFERENCE, "{case}: max |gpu - reference| = {worst}");
        let moved =
            got.iter().flatten().zip(plain.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(moved > 0.1, "{case}: the feature changed the logits by only {moved}");
    }
}

#[test]
fn a_missing_bias_is_an_error_naming_it() {
    let err = LlamaModel::load(
        wgqa_testkit::ctx(),
        &model_file_without("llama", true, false, "blk.1.attn_k.bias"),
        64,
        |_, _| {},
    )
    .err()
    .expect("block 1 lacks its K bias")
    .to_string();
    assert!(err.contains("blk.1.attn_k.bias"), "{err}");
}

#[test]
fn qwen2_files_rotate_halves_and_match_the_reference() {
    let tokens: Vec<u32> = (0..24).map(|i| (i * 5 + 1) % VOCAB as u32).collect();
    let qwen = model_file_without("qwen2", true, false, "");
    let config = wgqa::model::LlamaConfig::from_gguf(&qwen).unwrap();
    assert_eq!(config.rope_layout, wgqa::RopeLayout::HalfSplit, "Qwen2's Q/K rows are not permuted");
    let (got, want) = logits(&qwen, &tokens);
    let worst =
        got.iter().flatten().zip(want.iter().flatten()).map(|(g, w)| (g - w).abs()).fold(0f32, f32::max);
    assert!(worst < tolerance::LOGITS_VS_REFERENCE, "max |gpu - reference| = {worst}");
    // The same weights read as llama rotate adjacent pairs: other logits.
    let (llama, _) = logits(&model_file(true, false), &tokens);
    let moved =
        got.iter().flatten().zip(llama.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(moved > 0.1, "the RoPE layout changed the logits by only {moved}");
}
