//! The GPU llama forward pass on the default model (SmolLM2-135M-Instruct,
//! Q4_1), against the CPU reference and against itself (prefill vs decode),
//! plus its memory and error paths. Every test returns early when the model
//! has not been fetched (`scripts/fetch-model.sh`; CI fetches it first).

use wgqa_testkit::model_file::default_model_path;

use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use wgqa::model::{argmax, CpuModel, Gguf, LlamaModel, Tokenizer};
use wgqa::reference::tolerance;
use wgqa::Error;

/// Tokens decoded one by one vs prefilled, across 13 KV pages (about a
/// minute on lavapipe, where a decode step costs ~0.3 s).
const DECODE_STEPS: usize = 200;
/// KV capacity of the shared model: the 2048 tokens of the memory test.
const KV_TOKENS: u32 = 2048;

struct Smol {
    gguf: Gguf,
    tokenizer: Tokenizer,
    model: Mutex<LlamaModel>,
}

/// The default model on the GPU, loaded once for all tests.
fn smol() -> Option<&'static Smol> {
    static SMOL: OnceLock<Option<Smol>> = OnceLock::new();
    SMOL.get_or_init(|| {
        let path = default_model_path()?;
        let start = Instant::now();
        let gguf = Gguf::open(&path).expect("the default model parses");
        let tokenizer = Tokenizer::from_gguf(&gguf).expect("its tokenizer builds");
        let model =
            LlamaModel::load(wgqa_testkit::ctx(), &gguf, KV_TOKENS, |_, _| {}).expect("it loads on the GPU");
        eprintln!("loaded SmolLM2 on the GPU in {:.2?}", start.elapsed());
        Some(Smol { gguf, tokenizer, model: Mutex::new(model) })
    })
    .as_ref()
}

impl Smol {
    /// The model, for one test at a time (tests add and free their own sequences).
    fn model(&self) -> MutexGuard<'_, LlamaModel> {
        self.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Largest |a - b| over two rows, and where.
fn max_diff(a: &[f32], b: &[f32]) -> (f32, usize) {
    assert_eq!(a.len(), b.len());
    (a.iter().zip(b).map(|(x, y)| (x - y).abs()).enumerate()).fold((0.0, 0), |(m, at), (i, d)| {
        if d > m {
            (d, i)
        } else {
            (m, at)
        }
    })
}

#[test]
fn greedy_capital_of_france_is_paris() {
    let Some(smol) = smol() else { return };
    let prompt = smol.tokenizer.encode("The capital of France is").unwrap();
    let mut model = smol.model();
    let seq = model.cache_mut().add_sequence();
    let logits = pollster::block_on(model.step_logits(seq, &prompt)).unwrap();
    let first = argmax(&logits).unwrap();
    // Two more greedy steps through the decode path, to show the continuation.
    let mut ids = vec![first];
    for _ in 0..2 {
        let logits = pollster::block_on(model.step_logits(seq, &[*ids.last().unwrap()])).unwrap();
        ids.push(argmax(&logits).unwrap());
    }
    model.cache_mut().free(seq).unwrap();
    let text = smol.tokenizer.decode(&ids).unwrap();
    eprintln!("The capital of France is{text}");
    assert_eq!(smol.tokenizer.decode(&[first]).unwrap(), " Paris", "continuation: {text:?}");
}

#[test]
fn greedy_on_the_gpu_equals_argmax_of_the_logits() {
    let Some(smol) = smol() else { return };
    let prompt = smol.tokenizer.encode("The capital of France is").unwrap();
    let mut model = smol.model();
    let (gpu, cpu) = (model.cache_mut().add_sequence(), model.cache_mut().add_sequence());
    let mut on_gpu = pollster::block_on(model.step_greedy(gpu, &prompt)).unwrap();
    // The logits of a greedy step can still be read, and agree with its token.
    let logits = pollster::block_on(model.last_logits()).unwrap();
    assert_eq!(argmax(&logits).unwrap(), on_gpu);
    let mut on_cpu = argmax(&pollster::block_on(model.step_logits(cpu, &prompt)).unwrap()).unwrap();
    for step in 0..4 {
        assert_eq!(on_gpu, on_cpu, "step {step}");
        on_gpu = pollster::block_on(model.step_greedy(gpu, &[on_gpu])).unwrap();
        on_cpu = argmax(&pollster::block_on(model.step_logits(cpu, &[on_cpu])).unwrap()).unwrap();
    }
    model.cache_mut().free(gpu).unwrap();
    model.cache_mut().free(cpu).unwrap();
}

#[test]
fn gpu_logits_match_the_cpu_reference() {
    let Some(smol) = smol() else { return };
    let tokens = smol.tokenizer.encode("Grouped-query attention shares keys, 42 times.").unwrap();
    let mut reference = CpuModel::load(&smol.gguf).unwrap();
    let want = reference.forward(&tokens).unwrap();
    let mut model = smol.model();
    let seq = model.cache_mut().add_sequence();
    let got = pollster::block_on(model.forward_all(seq, &tokens)).unwrap();
    model.cache_mut().free(seq).unwrap();
    assert_eq!(got.len(), tokens.len());
    let mut worst = 0f32;
    for (pos, (g, w)) in got.iter().zip(&want).enumerate() {
        let (d, at) = max_diff(g, w);
        worst = worst.max(d);
        assert!(
            d <= tolerance::LOGITS_VS_REFERENCE,
            "position {pos}, logit {at}: gpu {} vs reference {}",
            g[at],
            w[at]
        );
        assert_eq!(argmax(g).unwrap(), argmax(w).unwrap(), "top-1 differs at position {pos}");
    }
    eprintln!("{} positions: max |gpu - reference| = {worst:.2e}", tokens.len());
}

#[test]
fn decoding_token_by_token_equals_prefill() {
    let Some(smol) = smol() else { return };
    let text = "The history of the printing press begins in the fifteenth century, when Johannes \
                Gutenberg combined movable metal type, oil-based ink and a wooden screw press. \
                Books became cheaper, literacy spread across Europe, and scientists could share \
                their results quickly and precisely with colleagues in distant cities. Within fifty \
                years, presses were running in more than two hundred towns, and millions of volumes \
                had been printed: bibles, grammars, almanacs, maps and pamphlets of every kind. \
                Printers became publishers, booksellers and editors at once, and the workshops \
                where they set type turned into meeting places for scholars, merchants and artists. \
                Standard spellings slowly emerged, because a printer who sold books in many regions \
                preferred one form of each word, and readers grew used to it. Later, steam power, \
                rotary presses and cheap paper made newspapers possible, and by the nineteenth \
                century a worker in a large city could read the news of the whole world each morning \
                for the price of a loaf of bread.";
    // Twice over, to reach DECODE_STEPS tokens.
    let tokens = smol.tokenizer.encode(&format!("{text} {text}")).unwrap();
    assert!(tokens.len() >= DECODE_STEPS, "{} tokens", tokens.len());
    let tokens = &tokens[..DECODE_STEPS];
    let mut model = smol.model();
    let seq = model.cache_mut().add_sequence();
    let prefill = pollster::block_on(model.forward_all(seq, tokens)).unwrap();
    model.cache_mut().reset(seq).unwrap();
    let start = Instant::now();
    let mut worst = 0f32;
    for (pos, &t) in tokens.iter().enumerate() {
        let decoded = pollster::block_on(model.step_logits(seq, &[t])).unwrap();
        let (d, at) = max_diff(&decoded, &prefill[pos]);
        worst = worst.max(d);
        assert!(
            d <= tolerance::LOGITS_DECODE_VS_PREFILL,
            "position {pos}, logit {at}: decode {} vs prefill {}",
            decoded[at],
            prefill[pos][at]
        );
    }
    let per_step = start.elapsed() / DECODE_STEPS as u32;
    assert_eq!(model.cache().len(seq).unwrap(), DECODE_STEPS as u32);
    model.cache_mut().free(seq).unwrap();
    eprintln!("{DECODE_STEPS} decode steps ({per_step:.2?} each): max |decode - prefill| = {worst:.2e}");
}

#[test]
fn perplexity_on_the_gpu_is_sane() {
    let Some(smol) = smol() else { return };
    let paragraph = "The sun rose over the quiet village. Children walked to school, and their \
                     parents went to work in the fields. In the evening, everyone gathered in \
                     the square to talk about the day.";
    let tokens = smol.tokenizer.encode(paragraph).unwrap();
    let ppl = pollster::block_on(smol.model().perplexity(&tokens)).unwrap();
    eprintln!("GPU perplexity {ppl:.2} over {} tokens", tokens.len());
    // As for the CPU reference: well below a unigram model's hundreds, well
    // above a memorised text's ~1.
    assert!((3.0..40.0).contains(&ppl), "perplexity {ppl}");
}

#[test]
fn smollm2_with_a_2048_token_cache_fits_200_mb() {
    let Some(smol) = smol() else { return };
    let model = smol.model();
    let mem = model.gpu_memory();
    assert_eq!(model.cache().capacity_tokens(), KV_TOKENS as u64);
    eprintln!(
        "GPU memory: weights {} + KV cache {} + scratch {} = {} bytes ({:.1} MB)",
        mem.weights,
        mem.kv_cache,
        mem.scratch,
        mem.total(),
        mem.total() as f64 / 1e6
    );
    assert!(mem.total() <= 200_000_000, "{} bytes", mem.total());
}

#[test]
fn prompts_beyond_the_context_or_the_cache_are_errors() {
    let Some(smol) = smol() else { return };
    let mut model = smol.model();
    let context = model.config().context_length;
    let seq = model.cache_mut().add_sequence();
    model.forward(seq, &[1, 2, 3]).unwrap();

    let too_long = vec![1; context as usize];
    let err = model.forward(seq, &too_long).unwrap_err();
    assert!(matches!(err, Error::ContextExceeded { needed, .. } if needed == context as u64 + 3), "{err}");
    // Within the context, beyond the KV cache's 2048 tokens.
    let err = model.forward(seq, &vec![1; KV_TOKENS as usize]).unwrap_err();
    assert!(matches!(err, Error::CacheFull { .. }), "{err}");
    let vocab = model.config().vocab_size;
    let err = model.forward(seq, &[1, vocab]).unwrap_err();
    assert!(matches!(err, Error::TokenOutOfRange { index: 1, .. }), "{err}");
    assert!(matches!(model.forward(seq, &[]), Err(Error::EmptyBatch)));
    // Every failure left the sequence as it was.
    assert_eq!(model.cache().len(seq).unwrap(), 3);
    model.cache_mut().free(seq).unwrap();
}

#[test]
fn missing_truncated_and_corrupt_model_files_are_errors() {
    let missing = Gguf::open("models/no-such-model.gguf").expect_err("a missing file is an error");
    assert!(matches!(missing, Error::ModelMissing { .. }), "{missing}");
    assert!(missing.to_string().contains("scripts/fetch-model.sh"), "{missing}");

    // The CLI says the same.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wgqa"))
        .args(["info", "--model", "models/no-such-model.gguf"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("scripts/fetch-model.sh"), "{stderr}");

    let Some(smol) = smol() else { return };
    let bytes = smol.gguf.bytes();
    let truncated = Gguf::parse(&bytes[..bytes.len() * 3 / 5]).expect_err("a truncated file is an error");
    assert!(matches!(truncated, Error::GgufTruncated { .. }), "{truncated}");

    let mut corrupt = bytes[..4096.min(bytes.len())].to_vec();
    corrupt[..4].copy_from_slice(b"GGML");
    assert!(matches!(Gguf::parse(&corrupt), Err(Error::GgufBadMagic(_))));
}
