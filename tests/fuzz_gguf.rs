//! A fixed-seed fuzz run over everything that reads a model file: the GGUF
//! reader, the llama config, the tokenizer, the chat template and the CPU
//! reference model (loaded and run on two tokens). Mutated files must give
//! `Ok` or an `Error`, never a panic, an abort, a hang or an allocation
//! above the budget. Runs on stable Rust inside `cargo test`; the case count
//! comes from `WGQA_FUZZ_CASES` (default 100,000) and the seed from
//! `WGQA_FUZZ_SEED`, so a failure is reproduced by its printed case number.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use wgqa::model::{ChatTemplate, CpuModel, Gguf, LlamaConfig, MetaArray, MetaValue, Tokenizer};
use wgqa_testkit::gguf_writer::{self, build, tensor, RawTensor};
use wgqa_testkit::model_file;

// ---------------------------------------------------------------------------
// Allocation budget: live bytes of this thread, their peak, and a hard cap
// on one request so that a runaway size fails here, naming its case, instead
// of exhausting the machine.

/// No single allocation of any case may ask for more than this.
const HARD_CAP: usize = 1 << 30;
/// Peak live bytes one case may reach: the parsed copy of the file, its
/// tables, f32 weights dequantised from it (up to 8x for 4-bit types) and
/// the tokenizer's maps, plus a fixed allowance.
fn budget(file_len: usize) -> u64 {
    40 * file_len as u64 + (8 << 20)
}

thread_local! {
    static LIVE: Cell<u64> = const { Cell::new(0) };
    static PEAK: Cell<u64> = const { Cell::new(0) };
}
/// The case being run, for the messages of the cap and the watchdog, and
/// when it began (milliseconds since the run's start).
static CASE: AtomicU64 = AtomicU64::new(u64::MAX);
static CASE_STARTED_MS: AtomicU64 = AtomicU64::new(0);
static RUN_START: OnceLock<Instant> = OnceLock::new();

fn now_ms() -> u64 {
    RUN_START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

fn grow(bytes: usize) {
    let _ = LIVE.try_with(|l| {
        l.set(l.get() + bytes as u64);
        let _ = PEAK.try_with(|p| p.set(p.get().max(l.get())));
    });
}
fn shrink(bytes: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(bytes as u64)));
}

struct Budgeted;

unsafe impl GlobalAlloc for Budgeted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_CAP {
            over_cap(layout.size());
        }
        grow(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() > HARD_CAP {
            over_cap(layout.size());
        }
        grow(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > HARD_CAP {
            over_cap(new_size);
        }
        grow(new_size);
        shrink(layout.size());
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        shrink(layout.size());
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Reports the case and aborts: unwinding out of an allocator is not allowed.
fn over_cap(size: usize) -> ! {
    use std::io::Write;
    let case = CASE.load(Ordering::Relaxed);
    let _ = writeln!(std::io::stderr(), "fuzz case {case}: one allocation of {size} bytes (cap {HARD_CAP})");
    std::process::abort();
}

#[global_allocator]
static GLOBAL: Budgeted = Budgeted;

/// Aborts the run, naming the case, when one case takes longer than `limit`.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_millis(500));
        let case = CASE.load(Ordering::Relaxed);
        let running = now_ms().saturating_sub(CASE_STARTED_MS.load(Ordering::Relaxed));
        if case != u64::MAX && running > limit.as_millis() as u64 {
            eprintln!("fuzz case {case} has run for more than {limit:?}: a hang");
            std::process::abort();
        }
    });
}

// ---------------------------------------------------------------------------
// Seeds: small llama files with a tokenizer and chat template, in every
// tensor type the reader knows, and the default model's own metadata.

fn weights(name: &str, dims: &[u64], ty: u32) -> RawTensor {
    let n = dims.iter().product::<u64>() as usize;
    let salt = name.bytes().fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    let values: Vec<f32> = (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(salt) >> 8) as f32 / (1 << 24) as f32 - 0.5)
        .collect();
    let data = match ty {
        1 => values.iter().flat_map(|&x| gguf_writer::f16_le(x)).collect(),
        // Q8_0: blocks of 32 as an f16 scale and 32 signed bytes.
        8 => values
            .chunks(32)
            .flat_map(|b| {
                let mut block = gguf_writer::f16_le(1.0 / 127.0).to_vec();
                block.extend(b.iter().map(|&x| (x * 127.0).round() as i8 as u8));
                block
            })
            .collect(),
        _ => values.iter().flat_map(|x| x.to_le_bytes()).collect(),
    };
    tensor(name, dims, ty, data)
}

/// A two-block llama (width 32, two query heads of dim 16 on `kv[i]` KV
/// heads in block i) whose matrices are stored as `ty` (F32, F16 or Q8_0).
fn tiny_model(ty: u32, kv: [u32; 2]) -> Vec<u8> {
    let head_count_kv = match kv {
        [a, b] if a == b => MetaValue::U32(a),
        _ => MetaValue::Array(MetaArray::U32(kv.to_vec())),
    };
    let tokens = ["<|im_start|>", "<|im_end|>", "a", "b", "ab", "Ġ", "Ġab", "c"];
    let kvs: Vec<(&str, MetaValue)> = vec![
        ("general.architecture", MetaValue::Str("llama".into())),
        ("general.name", MetaValue::Str("fuzz seed".into())),
        ("llama.block_count", MetaValue::U32(2)),
        ("llama.context_length", MetaValue::U32(64)),
        ("llama.embedding_length", MetaValue::U32(32)),
        ("llama.feed_forward_length", MetaValue::U32(64)),
        ("llama.attention.head_count", MetaValue::U32(2)),
        ("llama.attention.head_count_kv", head_count_kv),
        ("llama.attention.layer_norm_rms_epsilon", MetaValue::F32(1e-5)),
        ("llama.rope.freq_base", MetaValue::F32(1e5)),
        ("llama.rope.dimension_count", MetaValue::U32(16)),
        ("llama.vocab_size", MetaValue::U32(tokens.len() as u32)),
        ("tokenizer.ggml.model", MetaValue::Str("gpt2".into())),
        ("tokenizer.ggml.pre", MetaValue::Str("smollm".into())),
        ("tokenizer.ggml.tokens", MetaValue::Array(MetaArray::Str(tokens.map(String::from).to_vec()))),
        ("tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(vec![3, 3, 1, 1, 1, 1, 1, 1]))),
        ("tokenizer.ggml.merges", MetaValue::Array(MetaArray::Str(vec!["a b".into(), "Ġ ab".into()]))),
        ("tokenizer.ggml.bos_token_id", MetaValue::U32(0)),
        ("tokenizer.ggml.eos_token_id", MetaValue::U32(1)),
        ("tokenizer.chat_template", MetaValue::Str("<|im_start|>{{ m }}<|im_end|>".into())),
    ];
    let mut t = vec![weights("token_embd.weight", &[32, 8], ty), weights("output_norm.weight", &[32], 0)];
    for (i, kv) in kv.into_iter().enumerate() {
        let n = |s: &str| format!("blk.{i}.{s}.weight");
        let width = 16 * kv as u64;
        t.extend([
            weights(&n("attn_norm"), &[32], 0),
            weights(&n("attn_q"), &[32, 32], ty),
            weights(&n("attn_k"), &[32, width], ty),
            weights(&n("attn_v"), &[32, width], ty),
            weights(&n("attn_output"), &[32, 32], ty),
            weights(&n("ffn_norm"), &[32], 0),
            weights(&n("ffn_gate"), &[32, 64], ty),
            weights(&n("ffn_up"), &[32, 64], ty),
            weights(&n("ffn_down"), &[64, 32], ty),
        ]);
    }
    build(3, 32, &kvs, &t).buf
}

/// The default model's metadata (vocabulary, merges, template and all) over
/// the tiny model's tensors, or `None` when the model is not fetched.
fn default_model_header() -> Option<Vec<u8>> {
    let path = model_file::default_model_path()?;
    let real = Gguf::open(path).expect("the default model parses");
    let tiny = Gguf::parse(&tiny_model(0, [1, 1])).unwrap();
    let kvs: Vec<(&str, MetaValue)> = real
        .metadata()
        .map(|(k, v)| (k, v.clone()))
        .map(|(k, v)| match k {
            // Hyperparameters of the tiny tensors, so the file loads.
            "llama.block_count"
            | "llama.embedding_length"
            | "llama.feed_forward_length"
            | "llama.attention.head_count"
            | "llama.attention.head_count_kv"
            | "llama.rope.dimension_count"
            | "llama.vocab_size" => (k, tiny.get(k).unwrap().clone()),
            _ => (k, v),
        })
        .collect();
    let tensors: Vec<RawTensor> = tiny
        .tensors()
        .iter()
        .map(|t| tensor(&t.name, &t.dims, t.ty.ggml_id(), tiny.tensor_bytes(t).unwrap().to_vec()))
        .collect();
    let mut kvs = kvs;
    if real.get("llama.vocab_size").is_none() {
        kvs.push(("llama.vocab_size", tiny.get("llama.vocab_size").unwrap().clone()));
    }
    Some(build(3, 32, &kvs, &tensors).buf)
}

// ---------------------------------------------------------------------------
// Mutations, from a SplitMix64 stream.

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values that break size arithmetic: zero, one, sign and width edges, and
/// a repeated-byte pattern.
const INTERESTING: [u64; 12] =
    [0, 1, 2, 3, 16, 0x7f, 0x8000_0000, 0xffff_ffff, 0x1_0000_0000, 0x0101_0101, 1 << 31 | 4, u64::MAX];

/// Positions of the integer and float metadata values of `seed`, where a
/// changed value reaches the config rather than the reader.
fn value_positions(seed: &[u8]) -> Vec<(usize, usize)> {
    let gguf = Gguf::parse(seed).unwrap();
    let mut out = Vec::new();
    for (key, value) in gguf.metadata() {
        let width = match value {
            MetaValue::U32(_) | MetaValue::I32(_) | MetaValue::F32(_) => 4,
            MetaValue::U64(_) | MetaValue::I64(_) | MetaValue::F64(_) => 8,
            _ => continue,
        };
        let needle = [&(key.len() as u64).to_le_bytes()[..], key.as_bytes()].concat();
        if let Some(at) = seed.windows(needle.len()).position(|w| w == needle.as_slice()) {
            out.push((at + needle.len() + 4, width));
        }
    }
    out
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, fields: &[(usize, usize)]) {
    let n = bytes.len();
    match rng.below(7) {
        0 => bytes[rng.below(n)] ^= 1 << rng.below(8),
        1 => bytes[rng.below(n)] = [0, 1, 0x7f, 0x80, 0xff][rng.below(5)],
        2 | 3 => {
            // A length, count, dim, offset or metadata value set to an
            // interesting number, or nudged from its own.
            let (at, width) = fields[rng.below(fields.len())];
            if at + width > n {
                return;
            }
            let old = bytes[at..at + width].iter().rev().fold(0u64, |v, &b| v << 8 | b as u64);
            let new = match rng.below(3) {
                0 => INTERESTING[rng.below(INTERESTING.len())],
                1 => old.wrapping_add(rng.below(5) as u64).wrapping_sub(2),
                _ => old.wrapping_shl(rng.below(33) as u32),
            };
            bytes[at..at + width].copy_from_slice(&new.to_le_bytes()[..width]);
        }
        4 => bytes.truncate(rng.below(n)),
        5 => {
            let (at, len) = (rng.below(n), rng.below(64));
            bytes.drain(at..(at + len).min(n));
        }
        _ => {
            let (from, len, to) = (rng.below(n), rng.below(64), rng.below(n));
            let chunk = bytes[from..(from + len).min(n)].to_vec();
            bytes.splice(to..to, chunk);
        }
    }
}

/// Everything a model file reaches, on the CPU; whether its config loaded.
fn load_everything(bytes: &[u8]) -> bool {
    let Ok(gguf) = Gguf::parse(bytes) else { return false };
    let _ = Tokenizer::from_gguf(&gguf).map(|t| t.encode("ab c<|im_end|>"));
    let _ = ChatTemplate::from_gguf(&gguf);
    if LlamaConfig::from_gguf(&gguf).is_err() {
        return false;
    }
    if let Ok(mut model) = CpuModel::load(&gguf) {
        let _ = model.forward(&[2, 3]);
    }
    true
}

struct Seed {
    name: &'static str,
    bytes: Vec<u8>,
    fields: Vec<(usize, usize)>,
    /// Share of the cases.
    weight: u64,
}

fn seed(name: &'static str, bytes: Vec<u8>, weight: u64) -> Seed {
    // Every length-like field the writer recorded, plus the metadata values.
    let mut fields = value_positions(&bytes);
    fields.extend(length_fields(&bytes));
    Seed { name, bytes, fields, weight }
}

/// Offsets of the u64 string lengths and array counts, found by walking the
/// metadata the way the reader does.
fn length_fields(bytes: &[u8]) -> Vec<(usize, usize)> {
    let gguf = Gguf::parse(bytes).unwrap();
    let mut out = vec![(8, 8), (16, 8)]; // tensor and metadata counts
    for (key, _) in gguf.metadata() {
        let needle = [&(key.len() as u64).to_le_bytes()[..], key.as_bytes()].concat();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle.as_slice()) {
            out.push((at, 8));
            out.push((at + needle.len() + 4, 8)); // a string's length or an array's type + count
        }
    }
    for t in gguf.tensors() {
        let needle = [&(t.name.len() as u64).to_le_bytes()[..], t.name.as_bytes()].concat();
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle.as_slice()) {
            let dims = at + needle.len() + 4;
            out.push((at + needle.len(), 4));
            out.extend((0..t.dims.len()).map(|d| (dims + 8 * d, 8)));
            out.push((dims + 8 * t.dims.len(), 4)); // type
            out.push((dims + 8 * t.dims.len() + 4, 8)); // offset
        }
    }
    out
}

#[test]
fn mutated_model_files_never_panic_hang_or_over_allocate() {
    let cases: u64 = std::env::var("WGQA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let run_seed: u64 = std::env::var("WGQA_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(2026);
    let mut seeds = vec![
        seed("tiny f32", tiny_model(0, [1, 1]), 400),
        seed("tiny f16 mha", tiny_model(1, [2, 2]), 200),
        seed("tiny q8_0 per-layer kv heads", tiny_model(8, [1, 2]), 200),
    ];
    match default_model_header() {
        // Its vocabulary makes this seed ~1000x larger: it gets a small share.
        Some(bytes) => seeds.push(seed("default model metadata", bytes, 1)),
        None => eprintln!("the default model's metadata is not among the seeds"),
    }
    // Every seed loads before it is mutated, so a mutation is what breaks it.
    for s in &seeds {
        let gguf = Gguf::parse(&s.bytes).unwrap_or_else(|e| panic!("seed {}: {e}", s.name));
        CpuModel::load(&gguf).unwrap_or_else(|e| panic!("seed {}: {e}", s.name));
    }
    let total_weight: u64 = seeds.iter().map(|s| s.weight).sum();
    let mut shares: Vec<u64> = seeds.iter().map(|s| cases * s.weight / total_weight).collect();
    shares[0] += cases - shares.iter().sum::<u64>();

    watchdog(Duration::from_secs(20));
    let started = Instant::now();
    let (mut errors, mut loaded, mut max_peak) = (0u64, 0u64, 0u64);
    let mut case = 0u64;
    for (s, &share) in seeds.iter().zip(&shares) {
        for _ in 0..share {
            let mut rng = Rng(run_seed ^ case.wrapping_mul(0xA24B_AED4_963E_E407));
            let mut bytes = s.bytes.clone();
            for _ in 0..1 + rng.below(3) {
                if bytes.is_empty() {
                    break;
                }
                mutate(&mut rng, &mut bytes, &s.fields);
            }
            CASE_STARTED_MS.store(now_ms(), Ordering::Relaxed);
            CASE.store(case, Ordering::Relaxed);
            let base = LIVE.with(Cell::get);
            PEAK.with(|p| p.set(base));
            let result = catch_unwind(AssertUnwindSafe(|| load_everything(&bytes)));
            let peak = PEAK.with(Cell::get) - base;
            let Ok(config_loaded) = result else {
                panic!("fuzz case {case} (seed {}, WGQA_FUZZ_SEED={run_seed}) panicked", s.name)
            };
            assert!(
                peak <= budget(bytes.len()),
                "fuzz case {case} (seed {}) peaked at {peak} bytes for a {}-byte file (budget {})",
                s.name,
                bytes.len(),
                budget(bytes.len())
            );
            max_peak = max_peak.max(peak);
            match config_loaded {
                true => loaded += 1,
                false => errors += 1,
            }
            case += 1;
        }
    }
    CASE.store(u64::MAX, Ordering::Relaxed);
    eprintln!(
        "fuzz: {case} cases in {:.1} s: {errors} rejected, {loaded} still loaded; \
         largest peak of live allocations {:.1} MiB",
        started.elapsed().as_secs_f64(),
        max_peak as f64 / (1 << 20) as f64
    );
    assert!(errors > case / 4, "most mutations should be rejected ({errors} of {case})");
}
