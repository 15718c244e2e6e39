//! The reported hostile-input reproductions, kept as regression cases: the
//! default model with a few metadata values changed must give a clear error
//! naming the key (from the library and from the CLI), never an abort, a
//! panic or a huge allocation. Each test returns early when the model has
//! not been fetched (`scripts/test.sh` fetches it).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use wgqa::model::{CpuModel, Gguf, LlamaConfig, MetaValue};
use wgqa_testkit::gguf_writer::{build, tensor};
use wgqa_testkit::model_file;

fn default_model() -> Option<&'static Gguf> {
    static MODEL: OnceLock<Option<Gguf>> = OnceLock::new();
    MODEL
        .get_or_init(|| Some(Gguf::open(model_file::default_model_path()?).expect("the model parses")))
        .as_ref()
}

/// The default model rewritten with `changes` to its metadata (a `None`
/// value removes the key; new keys are appended).
fn patched(model: &Gguf, changes: &[(&str, MetaValue)]) -> Vec<u8> {
    let mut kvs: Vec<(&str, MetaValue)> = model
        .metadata()
        .map(|(k, v)| (k, changes.iter().find(|(c, _)| *c == k).map_or(v, |(_, n)| n).clone()))
        .collect();
    for (k, v) in changes {
        if model.get(k).is_none() {
            kvs.push((k, v.clone()));
        }
    }
    let tensors: Vec<_> = (model.tensors().iter())
        .map(|t| tensor(&t.name, &t.dims, t.ty.ggml_id(), model.tensor_bytes(t).unwrap().to_vec()))
        .collect();
    build(3, model.alignment(), &kvs, &tensors).buf
}

/// Metadata values to change in the default model.
type Changes = Vec<(&'static str, MetaValue)>;

/// The reproductions: each change and a piece of the error it must give.
fn cases() -> Vec<(&'static str, Changes, &'static str)> {
    vec![
        ("block_count 2^31", vec![("llama.block_count", MetaValue::U32(1 << 31))], "llama.block_count"),
        (
            "block_count 0x01010101",
            vec![("llama.block_count", MetaValue::U32(0x0101_0101))],
            "llama.block_count",
        ),
        (
            "block_count below the file's",
            vec![("llama.block_count", MetaValue::U32(29))],
            "holds the tensors of 30 blocks",
        ),
        (
            "head_count x key_length wraps u32",
            vec![
                ("llama.attention.head_count", MetaValue::U32(268_435_460)),
                ("llama.attention.head_count_kv", MetaValue::U32(4)),
                ("llama.attention.key_length", MetaValue::U32(16)),
                ("llama.rope.dimension_count", MetaValue::U32(16)),
            ],
            "llama.attention.head_count",
        ),
        (
            "head_count that disagrees with the tensors",
            vec![
                ("llama.attention.head_count", MetaValue::U32(18)),
                ("llama.attention.key_length", MetaValue::U32(64)),
            ],
            "blk.0.attn_q.weight",
        ),
        (
            "kv heads that disagree",
            vec![("llama.attention.head_count_kv", MetaValue::U32(9))],
            "blk.0.attn_k.weight",
        ),
        (
            "kv heads that do not divide",
            vec![("llama.attention.head_count_kv", MetaValue::U32(2))],
            "`llama.attention.head_count_kv` q_heads (9) must be a multiple of kv_heads (2)",
        ),
        (
            "embedding width",
            vec![("llama.embedding_length", MetaValue::U32(1 << 30))],
            "llama.embedding_length",
        ),
        ("vocabulary", vec![("llama.vocab_size", MetaValue::U32(u32::MAX))], "token_embd.weight"),
    ]
}

#[test]
fn reported_metadata_gives_errors_naming_the_key() {
    let Some(model) = default_model() else { return };
    for (name, changes, want) in cases() {
        let gguf = Gguf::from_vec(patched(model, &changes)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let err = LlamaConfig::from_gguf(&gguf).expect_err(name).to_string();
        assert!(err.contains(want), "{name}: {err:?} should contain {want:?}");
        let err = CpuModel::load(&gguf).err().unwrap_or_else(|| panic!("{name}: loaded")).to_string();
        assert!(err.contains(want), "{name}: {err:?}");
    }
}

/// A caller's config that disagrees with the file is refused by the loaders
/// too, before anything is allocated from it.
#[test]
fn a_callers_config_is_checked_against_the_file() {
    let Some(model) = default_model() else { return };
    let mut config = LlamaConfig::from_gguf(model).unwrap();
    config.layers[3].q_heads = 27;
    config.layers[3].kv_heads = 3;
    let err = CpuModel::with_config(model, config).err().expect("refused").to_string();
    assert!(err.contains("blk.3.attn_q.weight"), "{err}");
}

fn wgqa(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wgqa")).args(args).output().expect("the CLI runs");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn write_temp(name: &str, bytes: &[u8]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("wgqa-hostile-{}-{name}", std::process::id()));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The CLI exits with the error, never a panic or an abort (SIGABRT would
/// show as a failed status without our message).
#[test]
fn the_cli_reports_hostile_files() {
    let Some(model) = default_model() else { return };
    let text = write_temp("text.txt", b"The quick brown fox jumps over the lazy dog.");
    let runs: Vec<(Changes, &str, &str)> = vec![
        (vec![("llama.block_count", MetaValue::U32(1 << 31))], "info", "llama.block_count"),
        (vec![("llama.block_count", MetaValue::U32(1 << 31))], "generate", "llama.block_count"),
        (vec![("llama.context_length", MetaValue::U32(1))], "perplexity", "too short"),
    ];
    for (changes, command, want) in runs {
        let file = write_temp("model.gguf", &patched(model, &changes));
        let path = file.to_str().unwrap();
        let args: Vec<&str> = match command {
            "perplexity" => vec![command, "--model", path, "--file", text.to_str().unwrap()],
            _ => vec![command, "--model", path],
        };
        let (ok, stderr) = wgqa(&args);
        assert!(!ok && stderr.contains(want) && !stderr.contains("panicked"), "{command}: {stderr}");
        std::fs::remove_file(file).unwrap();
    }
    std::fs::remove_file(text).unwrap();
}

/// Sampler options are checked before the model is read: a bad one fails
/// at once, even with a model path that does not exist.
#[test]
fn generate_checks_its_options_first() {
    let (ok, stderr) = wgqa(&["generate", "--model", "/nonexistent.gguf", "--top-p", "0"]);
    assert!(!ok && stderr.contains("top_p"), "{stderr}");
}

/// `--max-tokens 0` generates nothing and prefills nothing.
#[test]
fn zero_max_tokens_prefills_nothing() {
    if default_model().is_none() {
        return;
    }
    let (ok, stderr) = wgqa(&["generate", "--max-tokens", "0", "--prompt", "Hello"]);
    assert!(ok && stderr.contains("prefill: 0 tokens") && stderr.contains("decode: 0 tokens"), "{stderr}");
}
