//! `wgqa convert`: on a small llama GGUF built in memory (4 query heads,
//! 2 KV heads, 3 layers, K/V stored as Q4_1, Q8_0 and F32 in turn) and on the
//! default model when it has been fetched: expansion to MHA keeps the logits,
//! mean pooling writes the means, every other tensor is copied byte for byte,
//! per-layer counts round-trip through the array form of
//! `head_count_kv`, the budget allocation is optimal, and each bad option is
//! a clear error that leaves no file behind.

use std::borrow::Cow;

use wgqa::convert::{
    allocate, convert, quantize, write_gguf, write_new_file, ConvertOptions, KvTarget, Method, TensorOut,
};
use wgqa::model::{CpuModel, Gguf, LlamaConfig, MetaArray, MetaValue, TensorType};
use wgqa::Error;
use wgqa_testkit::model_file::default_model_path;

const E: u64 = 64;
const HEADS: u32 = 4;
const KV: u32 = 2;
const D: u64 = 16;
const FFN: u64 = 64;
const VOCAB: u64 = 40;
const LAYERS: usize = 3;
/// K/V storage of each layer: the converter must keep each one's type.
const KV_TYPES: [TensorType; LAYERS] = [TensorType::Q4_1, TensorType::Q8_0, TensorType::F32];

fn values(name: &str, n: usize) -> Vec<f32> {
    let salt = name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    (0..n as u32)
        .map(|i| {
            ((i.wrapping_mul(2_654_435_761).wrapping_add(salt.wrapping_mul(97))) >> 8) as f32
                / (1 << 24) as f32
                - 0.5
        })
        .collect()
}

fn tensor(name: &str, dims: &[u64], ty: TensorType) -> TensorOut<'static> {
    let n = dims.iter().product::<u64>() as usize;
    let mut v = values(name, n);
    if name.ends_with("norm.weight") {
        v.iter_mut().for_each(|x| *x += 1.0);
    }
    TensorOut { name: name.into(), dims: dims.into(), ty, data: Cow::Owned(quantize(ty, &v).unwrap()) }
}

fn metadata(arch: &str) -> Vec<(String, MetaValue)> {
    let kv: Vec<(&str, MetaValue)> = vec![
        ("general.architecture", MetaValue::Str(arch.into())),
        ("general.name", MetaValue::Str("tiny".into())),
        ("llama.block_count", MetaValue::U32(LAYERS as u32)),
        ("llama.embedding_length", MetaValue::U32(E as u32)),
        ("llama.feed_forward_length", MetaValue::U32(FFN as u32)),
        ("llama.attention.head_count", MetaValue::U32(HEADS)),
        ("llama.attention.head_count_kv", MetaValue::U32(KV)),
        ("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-5)),
        ("llama.context_length", MetaValue::U32(64)),
        ("llama.vocab_size", MetaValue::U32(VOCAB as u32)),
    ];
    kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn tiny_bytes(arch: &str) -> Vec<u8> {
    let mut t = vec![tensor("token_embd.weight", &[E, VOCAB], TensorType::Q8_0)];
    for (i, kv_ty) in KV_TYPES.into_iter().enumerate() {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        t.extend([
            tensor(&n("attn_norm"), &[E], TensorType::F32),
            tensor(&n("attn_q"), &[E, HEADS as u64 * D], TensorType::Q4_1),
            tensor(&n("attn_k"), &[E, KV as u64 * D], kv_ty),
            tensor(&n("attn_v"), &[E, KV as u64 * D], kv_ty),
            tensor(&n("attn_output"), &[HEADS as u64 * D, E], TensorType::F16),
            tensor(&n("ffn_norm"), &[E], TensorType::F32),
            tensor(&n("ffn_gate"), &[E, FFN], TensorType::Q4_0),
            tensor(&n("ffn_up"), &[E, FFN], TensorType::Q4_0),
            tensor(&n("ffn_down"), &[FFN, E], TensorType::Q8_0),
        ]);
    }
    t.push(tensor("output_norm.weight", &[E], TensorType::F32));
    write_gguf(&metadata(arch), &t, 32)
}

fn tiny() -> Gguf {
    Gguf::from_vec(tiny_bytes("llama")).unwrap()
}

fn converted(gguf: &Gguf, opts: &ConvertOptions) -> Gguf {
    Gguf::from_vec(convert(gguf, opts).unwrap().bytes).expect("the converted file parses")
}

fn logits(gguf: &Gguf, tokens: &[u32]) -> Vec<Vec<f32>> {
    CpuModel::load(gguf).unwrap().forward(tokens).unwrap()
}

fn assert_logits_close(got: &[Vec<f32>], want: &[Vec<f32>], tol: f32, case: &str) {
    for (t, (g, w)) in got.iter().zip(want).enumerate() {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{case}: token {t} logit {i}: {a} vs {b}");
        }
    }
}

fn tokens() -> Vec<u32> {
    (0..24).map(|i| (i * 7 + 3) % VOCAB as u32).collect()
}

#[test]
fn expanding_to_mha_keeps_the_logits() {
    let src = tiny();
    let mha = converted(&src, &ConvertOptions::new(KvTarget::Uniform(HEADS), Method::Mean));
    let cfg = LlamaConfig::from_gguf(&mha).unwrap();
    assert!(cfg.layers.iter().all(|l| l.kv_heads == HEADS));
    // Replicated heads re-encode dequantised blocks, which gives their bytes
    // back: the only difference left is summation order.
    assert_logits_close(&logits(&mha, &tokens()), &logits(&src, &tokens()), 1e-5, "MHA");
}

#[test]
fn mean_pooling_writes_the_mean_and_copies_every_other_tensor() {
    let src = tiny();
    let mqa = converted(&src, &ConvertOptions::new(KvTarget::Uniform(1), Method::Mean));
    assert_eq!(mqa.get_u32("llama.attention.head_count_kv").unwrap(), 1);
    assert_eq!(mqa.alignment(), src.alignment());
    for info in src.tensors() {
        let out = mqa.tensor(&info.name).unwrap();
        if info.name.contains("attn_k") || info.name.contains("attn_v") {
            assert_eq!(out.ty, info.ty, "{}: type kept", info.name);
            assert_eq!(out.dims, [E, D], "{}", info.name);
            let w = src.dequantize(&info.name).unwrap();
            let (h0, h1) = w.split_at((D * E) as usize);
            let got = mqa.dequantize(&info.name).unwrap();
            for (i, ((a, b), g)) in h0.iter().zip(h1).zip(&got).enumerate() {
                let want = (a + b) / 2.0;
                let tol = if info.ty == TensorType::F32 { 1e-7 } else { 0.05 };
                assert!((g - want).abs() <= tol, "{} element {i}: {g} vs mean {want}", info.name);
            }
        } else {
            assert_eq!(out.dims, info.dims, "{}", info.name);
            assert_eq!(out.ty, info.ty, "{}", info.name);
            assert_eq!(
                mqa.tensor_bytes(out).unwrap(),
                src.tensor_bytes(info).unwrap(),
                "{} copied",
                info.name
            );
        }
    }
    let kept: Vec<_> = src.metadata().filter(|(k, _)| !k.ends_with("head_count_kv")).collect();
    let out: Vec<_> = mqa.metadata().filter(|(k, _)| !k.ends_with("head_count_kv")).collect();
    assert_eq!(out, kept, "metadata other than head_count_kv is copied");
    let l = logits(&mqa, &tokens());
    assert!(l.iter().flatten().all(|x| x.is_finite()));
}

#[test]
fn first_and_random_pick_what_they_say() {
    let src = tiny();
    let first = converted(&src, &ConvertOptions::new(KvTarget::Uniform(1), Method::First));
    let w = src.dequantize("blk.2.attn_v.weight").unwrap();
    assert_eq!(
        first.dequantize("blk.2.attn_v.weight").unwrap(),
        w[..(D * E) as usize],
        "F32 head 0 kept exactly"
    );
    let mut opts = ConvertOptions::new(KvTarget::Uniform(1), Method::Random);
    let a = converted(&src, &opts).dequantize("blk.2.attn_k.weight").unwrap();
    let b = converted(&src, &opts).dequantize("blk.2.attn_k.weight").unwrap();
    opts.seed = 1;
    let c = converted(&src, &opts).dequantize("blk.2.attn_k.weight").unwrap();
    assert_eq!(a, b, "same seed, same heads");
    assert_ne!(a, c, "another seed, other heads");
}

#[test]
fn per_layer_counts_use_the_array_form_and_load() {
    let src = tiny();
    let out = converted(&src, &ConvertOptions::new(KvTarget::PerLayer(vec![4, 1, 2]), Method::Mean));
    match out.get("llama.attention.head_count_kv") {
        Some(MetaValue::Array(MetaArray::U32(v))) => assert_eq!(v, &[4, 1, 2]),
        other => panic!("expected a u32 array, got {other:?}"),
    }
    let cfg = LlamaConfig::from_gguf(&out).unwrap();
    assert_eq!(cfg.layers.iter().map(|l| l.kv_heads).collect::<Vec<_>>(), [4, 1, 2]);
    // Layer 2 kept its two heads, so its K/V bytes are the source's.
    let (a, b) = (out.tensor("blk.2.attn_k.weight").unwrap(), src.tensor("blk.2.attn_k.weight").unwrap());
    assert_eq!(out.tensor_bytes(a).unwrap(), src.tensor_bytes(b).unwrap());
    assert!(logits(&out, &tokens()).iter().flatten().all(|x| x.is_finite()));
}

#[test]
fn kv_type_override_rewrites_k_and_v() {
    let src = tiny();
    let mut opts = ConvertOptions::new(KvTarget::Uniform(KV), Method::Mean);
    opts.kv_type = Some(TensorType::F16);
    let out = converted(&src, &opts);
    for i in 0..LAYERS {
        assert_eq!(out.tensor(&format!("blk.{i}.attn_k.weight")).unwrap().ty, TensorType::F16);
    }
    assert_logits_close(&logits(&out, &tokens()), &logits(&src, &tokens()), 2e-2, "f16 K/V");
    opts.kv_type = Some(TensorType::Q4_0);
    assert!(matches!(convert(&src, &opts), Err(Error::ConvertOption { option: "--kv-type", .. })));
}

#[test]
fn calibrated_keeps_heads_that_are_already_equal() {
    // Make both KV heads of every layer identical: merging them loses
    // nothing, so the calibrated method must give back that head.
    let mut gguf_bytes = tiny_bytes("llama");
    let src = Gguf::from_vec(gguf_bytes.clone()).unwrap();
    let mut patched = Vec::new();
    for info in src.tensors() {
        let mut data = src.tensor_bytes(info).unwrap().to_vec();
        if info.name.contains("attn_k") || info.name.contains("attn_v") {
            let w = src.dequantize(&info.name).unwrap();
            let head = &w[..(D * E) as usize];
            data = quantize(info.ty, &[head, head].concat()).unwrap();
        }
        patched.push(TensorOut {
            name: info.name.clone(),
            dims: info.dims.clone(),
            ty: info.ty,
            data: Cow::Owned(data),
        });
    }
    gguf_bytes = write_gguf(&metadata("llama"), &patched, 32);
    let src = Gguf::from_vec(gguf_bytes).unwrap();
    let mut opts = ConvertOptions::new(KvTarget::Uniform(1), Method::Calibrated);
    opts.calibration = tokens();
    let out = converted(&src, &opts);
    assert_logits_close(&logits(&out, &tokens()), &logits(&src, &tokens()), 1e-3, "calibrated");
}

#[test]
fn budget_allocation_is_optimal_and_printed_per_layer() {
    let cfg = LlamaConfig::from_gguf(&tiny()).unwrap();
    let unit = 2 * D * 2; // f16 K and V of one head
                          // Made-up losses: layer 0 is sensitive, layer 2 barely.
    let loss = |layer: usize, g: u32| -> f64 { [3.0, 1.0, 0.1][layer] / g as f64 };
    for heads in 3..=12u64 {
        let budget = heads * unit;
        let choices = allocate(&cfg, budget, |l, g| Ok(loss(l, g))).unwrap();
        let total: u64 = choices.iter().map(|c| c.kv_heads as u64).sum();
        assert!(total * unit <= budget);
        let cost = |g: &[u32]| {
            g.iter().enumerate().map(|(l, &g)| if g < KV { loss(l, g) } else { 0.0 }).sum::<f64>()
        };
        let got = cost(&choices.iter().map(|c| c.kv_heads).collect::<Vec<_>>());
        let mut best = f64::INFINITY;
        for a in [1, 2, 4] {
            for b in [1, 2, 4] {
                for c in [1, 2, 4] {
                    if (a + b + c) as u64 <= heads {
                        best = best.min(cost(&[a, b, c]));
                    }
                }
            }
        }
        assert_eq!(got, best, "budget of {heads} heads");
    }
}

#[test]
fn budget_conversion_measures_and_stays_under_budget() {
    let src = tiny();
    let unit = 2 * D * 2;
    let mut opts = ConvertOptions::new(KvTarget::Budget(4 * unit), Method::Mean);
    opts.calibration = tokens();
    let out = convert(&src, &opts).unwrap();
    let choices = out.allocation.expect("a budget reports its allocation");
    assert_eq!(choices.len(), LAYERS);
    assert!(out.kv_heads.iter().sum::<u32>() <= 4);
    assert!(choices.iter().all(|c| c.loss_increase.is_finite()));
    let cfg = LlamaConfig::from_gguf(&Gguf::from_vec(out.bytes).unwrap()).unwrap();
    assert_eq!(cfg.layers.iter().map(|l| l.kv_heads).collect::<Vec<_>>(), out.kv_heads);
}

fn err(target: KvTarget, method: Method, calibration: Vec<u32>) -> String {
    let mut opts = ConvertOptions::new(target, method);
    opts.calibration = calibration;
    match convert(&tiny(), &opts) {
        Ok(_) => panic!("{:?} should be refused", opts.target),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_options_are_clear_errors() {
    let unit = 2 * D * 2;
    let e = err(KvTarget::Uniform(3), Method::Mean, vec![]);
    assert!(e.contains("--kv-heads") && e.contains("divide the 4 query heads"), "{e}");
    let e = err(KvTarget::PerLayer(vec![1, 2]), Method::Mean, vec![]);
    assert!(e.contains("has 2 entries, the model has 3 layers"), "{e}");
    let e = err(KvTarget::PerLayer(vec![1, 0, 2]), Method::Mean, vec![]);
    assert!(e.contains("layer 1"), "{e}");
    let e = err(KvTarget::Budget(3 * unit - 1), Method::Mean, tokens());
    assert!(e.contains("--kv-budget") && e.contains("(MQA)"), "{e}");
    let e = err(KvTarget::Budget(12 * unit + 1), Method::Mean, tokens());
    assert!(e.contains("(MHA)"), "{e}");
    let e = err(KvTarget::Uniform(1), Method::Calibrated, vec![]);
    assert!(e.contains("calibration text"), "{e}");
    let e = "median".parse::<Method>().unwrap_err().to_string();
    assert!(e.contains("`median` is not a method") && e.contains("calibrated"), "{e}");
    let gpt2 = Gguf::from_vec(tiny_bytes("gpt2")).unwrap();
    let e = convert(&gpt2, &ConvertOptions::new(KvTarget::Uniform(1), Method::Mean)).err().unwrap();
    assert!(matches!(e, Error::GgufArchitecture(ref a) if a == "gpt2"), "{e}");
    assert!(matches!(Gguf::from_vec(b"not a model at all".to_vec()), Err(Error::GgufBadMagic(_))));
}

#[test]
fn output_is_never_overwritten_or_left_half_written() {
    let dir = std::env::temp_dir().join(format!("wgqa-convert-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out.gguf");
    std::fs::write(&out, b"keep me").unwrap();
    let e = write_new_file(&out, b"new", false).unwrap_err();
    assert!(matches!(e, Error::OutputExists(_)) && e.to_string().contains("--force"), "{e}");
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    write_new_file(&out, b"new", true).unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"new");
    // A folder that does not exist: an error, and no temporary file anywhere.
    let missing = dir.join("no-such-dir").join("x.gguf");
    assert!(matches!(write_new_file(&missing, b"x", false), Err(Error::WriteFile { .. })));
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("out.gguf")], "nothing but the output");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn default_model_expanded_to_mha_gives_the_same_logits() {
    let Some(path) = default_model_path() else { return };
    let src = Gguf::open(&path).unwrap();
    let mha = converted(&src, &ConvertOptions::new(KvTarget::Uniform(9), Method::Mean));
    assert_eq!(LlamaConfig::from_gguf(&mha).unwrap().kv_heads(), 9);
    let prompt = [504, 3575, 282, 4649, 314];
    assert_logits_close(&logits(&mha, &prompt), &logits(&src, &prompt), 1e-4, "SmolLM2 MHA");
}

/// Runs `wgqa convert` with `args`; returns (success, stderr).
fn cli(args: &[&str]) -> (bool, String) {
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_wgqa")).arg("convert").args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn cli_refuses_bad_input_and_leaves_no_file() {
    let dir = std::env::temp_dir().join(format!("wgqa-convert-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("tiny.gguf");
    std::fs::write(&model, tiny_bytes("llama")).unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a model").unwrap();
    let out = dir.join("out.gguf");
    let (m, o) = (model.to_str().unwrap(), out.to_str().unwrap());
    let cases: [(&[&str], &str); 6] = [
        (&["--model", m, "--out", o, "--kv-heads", "3"], "must divide the 4 query heads"),
        (&["--model", m, "--out", o, "--kv-heads-per-layer", "1,2"], "has 2 entries, the model has 3 layers"),
        (&["--model", m, "--out", o, "--kv-budget", "10"], "(MQA)"),
        (&["--model", m, "--out", o, "--kv-heads", "1", "--method", "median"], "`median` is not a method"),
        (&["--model", text.to_str().unwrap(), "--out", o, "--kv-heads", "1"], "not a GGUF file"),
        (&["--model", m, "--out", o, "--kv-heads", "1", "--kv-type", "q4_0"], "use f16 or q8_0"),
    ];
    for (args, want) in cases {
        let (ok, err) = cli(args);
        assert!(!ok && err.contains(want), "{args:?}: {err}");
        assert!(!out.exists(), "{args:?} left {o}");
    }
    let (ok, err) = cli(&["--model", m, "--out", o, "--kv-heads", "1"]);
    assert!(ok, "{err}");
    let (ok, err) = cli(&["--model", m, "--out", o, "--kv-heads", "4"]);
    assert!(!ok && err.contains("exists") && err.contains("--force"), "{err}");
    assert_eq!(Gguf::open(&out).unwrap().get_u32("llama.attention.head_count_kv").unwrap(), 1);
    let (ok, err) = cli(&["--model", m, "--out", o, "--kv-heads", "4", "--force"]);
    assert!(ok, "{err}");
    assert_eq!(Gguf::open(&out).unwrap().get_u32("llama.attention.head_count_kv").unwrap(), 4);
    let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
