//! The gemma3 forward pass (per-head Q/K norms, post-norms, GeGLU, a scaled
//! embedding, local and global RoPE bases, sliding-window layers, a tied
//! head split by rows) on the GPU against the CPU reference: on a small
//! gemma3 built in memory, and on Gemma-3-270M (Q4_K_M) when it has been
//! fetched (`scripts/fetch-gemma.sh`; those tests return early otherwise).
//!
//! Token ids are fed directly (wgqa's SentencePiece tokenizer is not in
//! yet): they are the file's own `tokenizer.ggml.tokens` entries, looked up
//! once by exact piece: `<bos>` 2, `The` 818, `▁The` 669, `▁capital` 5279,
//! `▁of` 529, `▁France` 7001, `▁Germany` 9405, `▁is` 563, `▁Berlin` 15687,
//! `.` 236761, `▁Paris` 9079.

use std::sync::OnceLock;
use std::time::Instant;

use wgqa::model::{Architecture, CpuModel, Gguf, LlamaConfig, LlamaModel, MetaValue};
use wgqa::reference::tolerance;
use wgqa::{ContextOptions, GpuContext};
use wgqa_testkit::gguf_writer::{build, f32_weights};
use wgqa_testkit::model_file::gemma3_model_path;

/// `<bos>The capital of Germany is Berlin. The capital of France is`.
const PROMPT: [u32; 13] = [2, 818, 5279, 529, 9405, 563, 15687, 236761, 669, 5279, 529, 7001, 563];
/// `▁Paris`.
const PARIS: u32 = 9079;

/// Largest |a - b| over all rows.
fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// A context with WebGPU's default limits (128 MiB storage bindings, 256 MiB
/// buffers), or smaller bindings and buffers of `bytes`.
fn limited_ctx(bytes: Option<u64>) -> GpuContext {
    let mut limits = wgpu::Limits::default();
    if let Some(b) = bytes {
        (limits.max_storage_buffer_binding_size, limits.max_buffer_size) = (b, b);
    }
    let opts = ContextOptions { limits: Some(limits), ..Default::default() };
    pollster::block_on(GpuContext::with_options(opts)).expect("a GPU adapter (lavapipe on CI)")
}

// --- A small gemma3 ---------------------------------------------------------

const E: u64 = 128;
const FFN: u64 = 128;
const VOCAB: u64 = 512;
const HQ: u64 = 4;
const D: u64 = 32;
const LAYERS: u32 = 3;
const WINDOW: u32 = 5;

/// Three layers with a window of 5 on the first two (pattern 3), MQA, and
/// norm weights near 1 (the file's norms hold 1 + the trained weight).
fn small_gemma3() -> Gguf {
    small_gemma3_with(&[], "")
}

/// [`small_gemma3`] with metadata `extra` added (or replacing a key) and
/// the tensor named `missing` left out (none when empty).
fn small_gemma3_with(extra: &[(&str, MetaValue)], missing: &str) -> Gguf {
    let mut kvs = vec![
        ("general.architecture", MetaValue::Str("gemma3".into())),
        ("gemma3.block_count", MetaValue::U32(LAYERS)),
        ("gemma3.embedding_length", MetaValue::U32(E as u32)),
        ("gemma3.feed_forward_length", MetaValue::U32(FFN as u32)),
        ("gemma3.attention.head_count", MetaValue::U32(HQ as u32)),
        ("gemma3.attention.head_count_kv", MetaValue::U32(1)),
        ("gemma3.attention.key_length", MetaValue::U32(D as u32)),
        ("gemma3.attention.value_length", MetaValue::U32(D as u32)),
        ("gemma3.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-6)),
        ("gemma3.attention.sliding_window", MetaValue::U32(WINDOW)),
        ("gemma3.attention.sliding_window_pattern", MetaValue::U32(3)),
        ("gemma3.rope.freq_base", MetaValue::F32(1e6)),
        ("gemma3.context_length", MetaValue::U32(64)),
        ("gemma3.vocab_size", MetaValue::U32(VOCAB as u32)),
    ];
    for (key, value) in extra {
        kvs.retain(|(k, _)| k != key);
        kvs.push((key, value.clone()));
    }
    let norm = |name: &str, len: u64| {
        let mut t = f32_weights(name, &[len], 0.5);
        for w in t.data.chunks_exact_mut(4) {
            let v = f32::from_le_bytes(w.try_into().unwrap()) + 1.0;
            w.copy_from_slice(&v.to_le_bytes());
        }
        t
    };
    let mut t = vec![f32_weights("token_embd.weight", &[E, VOCAB], 0.2), norm("output_norm.weight", E)];
    for i in 0..LAYERS {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        t.extend([
            norm(&n("attn_norm"), E),
            f32_weights(&n("attn_q"), &[E, HQ * D], 0.5),
            f32_weights(&n("attn_k"), &[E, D], 0.5),
            f32_weights(&n("attn_v"), &[E, D], 1.0),
            norm(&n("attn_q_norm"), D),
            norm(&n("attn_k_norm"), D),
            f32_weights(&n("attn_output"), &[HQ * D, E], 0.5),
            norm(&n("post_attention_norm"), E),
            norm(&n("ffn_norm"), E),
            f32_weights(&n("ffn_gate"), &[E, FFN], 0.5),
            f32_weights(&n("ffn_up"), &[E, FFN], 0.5),
            f32_weights(&n("ffn_down"), &[FFN, E], 0.5),
            norm(&n("post_ffw_norm"), E),
        ]);
    }
    t.retain(|t| t.name != missing);
    Gguf::from_vec(build(3, 32, &kvs, &t).buf).expect("a valid GGUF")
}

#[test]
fn small_gemma3_config_follows_the_metadata() {
    let cfg = LlamaConfig::from_gguf(&small_gemma3()).unwrap();
    assert_eq!(cfg.arch, Architecture::Gemma3);
    let windows: Vec<_> = cfg.layers.iter().map(|a| a.window).collect();
    assert_eq!(windows, [Some(WINDOW), Some(WINDOW), None]);
    assert_eq!((cfg.layer_rope_base(0), cfg.layer_rope_base(2)), (10_000.0, 1e6));
    assert_eq!(cfg.embedding_scale, (E as f32).sqrt());
    assert!(cfg.tied_output && cfg.qk_norm && cfg.post_norms);
    assert_eq!((cfg.kv_heads(), cfg.layers[0].scale()), (1, 1.0 / (D as f32).sqrt()));
}

#[test]
fn gemma3_metadata_and_tensor_errors_name_their_key() {
    let err = |extra: &[(&str, MetaValue)], missing: &str| {
        LlamaConfig::from_gguf(&small_gemma3_with(extra, missing)).unwrap_err().to_string()
    };
    use wgqa::model::MetaArray;
    let cases = [
        (
            err(&[("gemma3.attention.sliding_window", MetaValue::U32(0))], ""),
            "gemma3.attention.sliding_window",
        ),
        (
            err(&[("gemma3.attention.sliding_window_pattern", MetaValue::U32(0))], ""),
            "sliding_window_pattern",
        ),
        (
            err(
                &[(
                    "gemma3.attention.sliding_window_pattern",
                    MetaValue::Array(MetaArray::Bool(vec![true; 2])),
                )],
                "",
            ),
            "one bool per layer (3)",
        ),
        (err(&[("gemma3.rope.freq_base_swa", MetaValue::F32(0.5))], ""), "gemma3.rope.freq_base_swa"),
        (err(&[("gemma3.final_logit_softcapping", MetaValue::F32(30.0))], ""), "softcap is not implemented"),
        (err(&[("gemma3.attention.scale", MetaValue::F32(-1.0))], ""), "gemma3.attention.scale"),
        (err(&[], "blk.2.attn_k_norm.weight"), "blk.2.attn_k_norm.weight"),
        (err(&[], "blk.1.post_ffw_norm.weight"), "blk.1.post_ffw_norm.weight"),
    ];
    for (err, needle) in cases {
        assert!(err.contains(needle), "{needle:?} not in {err:?}");
    }
    // A per-layer pattern is read as given.
    let pattern = MetaValue::Array(MetaArray::Bool(vec![false, true, false]));
    let cfg = LlamaConfig::from_gguf(&small_gemma3_with(
        &[("gemma3.attention.sliding_window_pattern", pattern)],
        "",
    ))
    .unwrap();
    assert_eq!(cfg.layers.iter().map(|a| a.window).collect::<Vec<_>>(), [None, Some(WINDOW), None]);
}

#[test]
fn small_gemma3_matches_the_reference_on_the_gpu() {
    let gguf = small_gemma3();
    // Past the window, so the local layers mask what the global one sees.
    let tokens: Vec<u32> = (0..24).map(|i| (i * 37 + 5) % VOCAB as u32).collect();
    let want = CpuModel::load(&gguf).unwrap().forward(&tokens).unwrap();
    // The adapter's limits (one table), and bindings of 192 KiB: the
    // 256 KiB f32 embedding and tied head then run as two row chunks.
    for (case, ctx) in
        [("one table", wgqa_testkit::ctx().clone()), ("split table", limited_ctx(Some(192 << 10)))]
    {
        let mut model = LlamaModel::load(&ctx, &gguf, 64, |_, _| {}).unwrap();
        let seq = model.cache_mut().add_sequence();
        let got = pollster::block_on(model.forward_all(seq, &tokens)).unwrap();
        let worst = max_diff(&got, &want);
        eprintln!("{case}: max |gpu - reference| = {worst}");
        assert!(worst < tolerance::LOGITS_VS_REFERENCE, "{case}: max |gpu - reference| = {worst}");
        // Decoding on, token by token, stays with the reference too.
        let mut reference = CpuModel::load(&gguf).unwrap();
        reference.forward(&tokens).unwrap();
        for &t in &tokens[..4] {
            let got = pollster::block_on(model.step_logits(seq, &[t])).unwrap();
            let want = reference.forward(&[t]).unwrap();
            let worst = max_diff(&[got], &want);
            assert!(worst < tolerance::LOGITS_VS_REFERENCE, "{case} decode: max |gpu - reference| = {worst}");
        }
    }
}

// --- Gemma-3-270M -----------------------------------------------------------

fn gemma() -> Option<&'static Gguf> {
    static GGUF: OnceLock<Option<Gguf>> = OnceLock::new();
    GGUF.get_or_init(|| Some(Gguf::open(gemma3_model_path()?).expect("the Gemma file parses"))).as_ref()
}

/// Gemma-3-270M loaded under WebGPU's default limits, where its 160 MiB
/// Q8_0 embedding (tied to the head) must be split; GPU vs CPU reference on
/// the prompt, then greedy decoding names Paris.
#[test]
fn gemma3_270m_matches_the_reference_and_names_paris() {
    let Some(gguf) = gemma() else { return };
    let start = Instant::now();
    let ctx = limited_ctx(None);
    let mut model = LlamaModel::load(&ctx, gguf, 64, |_, _| {}).unwrap();
    eprintln!("loaded on the GPU (default limits) in {:.2?}", start.elapsed());
    let seq = model.cache_mut().add_sequence();
    let got = pollster::block_on(model.forward_all(seq, &PROMPT)).unwrap();
    eprintln!("GPU prefill of {} tokens done at {:.2?}", PROMPT.len(), start.elapsed());
    let want = CpuModel::load(gguf).unwrap().forward(&PROMPT).unwrap();
    eprintln!("reference done at {:.2?}", start.elapsed());
    let worst = max_diff(&got, &want);
    eprintln!("max |gpu - reference| over {} x {} logits: {worst}", got.len(), got[0].len());
    assert!(worst < tolerance::LOGITS_VS_REFERENCE, "max |gpu - reference| = {worst}");

    model.cache_mut().reset(seq).unwrap();
    let next = pollster::block_on(model.step_greedy(seq, &PROMPT)).unwrap();
    assert_eq!(next, PARIS, "greedy after `... The capital of France is`");
    eprintln!("total {:.2?}", start.elapsed());
}
