//! The GGUF tokenizer against reference ids (tests/fixtures/tokenizer, made
//! by scripts/gen-tokenizer-fixtures.py with llama.cpp), round trips,
//! streaming decode, the chat template, and metadata errors.
//!
//! Tests that need the real model return early, saying so, when it is absent
//! (`scripts/fetch-model.sh` fetches it; CI does so first). The synthetic-GGUF
//! tests at the end always run.

use std::collections::HashMap;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;
use wgqa::model::{ChatTemplate, Decoder, Gguf, PreTokenizer, Tokenizer, TokenizerConfig};
use wgqa::Error;
use wgqa_testkit::model_file::default_model_path;
use wgqa_testkit::tokenizer_fixture::{self, ids};

fn gguf() -> Option<&'static Gguf> {
    static GGUF: OnceLock<Option<Gguf>> = OnceLock::new();
    GGUF.get_or_init(|| {
        let path = default_model_path()?;
        Some(Gguf::open(&path).expect("the default model opens"))
    })
    .as_ref()
}

fn tokenizer() -> Option<&'static Tokenizer> {
    static TOK: OnceLock<Option<Tokenizer>> = OnceLock::new();
    TOK.get_or_init(|| gguf().map(|g| Tokenizer::from_gguf(g).expect("SmolLM2's tokenizer builds"))).as_ref()
}

fn fixture() -> Value {
    tokenizer_fixture::load("smollm2")
}

#[test]
fn encoding_matches_reference_fixtures() {
    let Some(gguf) = gguf() else { return };
    let fixture = fixture();
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 40, "fixture has only {} cases", cases.len());
    // One tokenizer per pre-tokenizer the fixture covers, on SmolLM2's vocab.
    let mut by_pre: HashMap<String, Tokenizer> = HashMap::new();
    let mut failures = Vec::new();
    for case in cases {
        let pre = case["pre"].as_str().expect("pre");
        let tok = by_pre.entry(pre.to_string()).or_insert_with(|| {
            let mut config = TokenizerConfig::from_gguf(gguf).unwrap();
            config.pre = PreTokenizer::from_name(pre).unwrap();
            Tokenizer::new(config).unwrap()
        });
        let text = case["text"].as_str().expect("text");
        let want = ids(&case["ids"]);
        let got = tok.encode_raw(text).unwrap();
        if got != want {
            failures.push(format!("[{pre}] {text:?}\n  reference {want:?}\n  wgqa      {got:?}"));
        }
    }
    assert_eq!(by_pre.len(), 4, "fixture covers smollm, llama-bpe, qwen2 and gpt2");
    assert_eq!(tokenizer().unwrap().vocab_size() as u64, fixture["vocab_size"].as_u64().unwrap());
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn chat_template_renders_and_encodes_like_reference() {
    let (Some(gguf), Some(tok)) = (gguf(), tokenizer()) else { return };
    let template = ChatTemplate::from_gguf(gguf).unwrap();
    // SmolLM2 adds no BOS, so `encode` is the reference's plain encoding.
    tokenizer_fixture::check_chats(&fixture(), template, tok);
}

#[test]
fn decode_inverts_every_fixture() {
    let Some(tok) = tokenizer() else { return };
    for case in fixture()["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(tok.decode(&ids(&case["ids"])).unwrap(), text);
    }
}

#[test]
fn smollm2_special_tokens_and_flags() {
    let Some(tok) = tokenizer() else { return };
    assert_eq!(tok.pre_tokenizer(), PreTokenizer::SmolLm);
    assert_eq!(tok.vocab_size(), 49152);
    assert_eq!((tok.bos(), tok.eos(), tok.unknown(), tok.padding()), (Some(1), Some(2), Some(0), Some(2)));
    assert!(!tok.adds_bos(), "SmolLM2 sets add_bos_token = false");
    let im_start = tok.token_id("<|im_start|>").unwrap();
    let im_end = tok.token_id("<|im_end|>").unwrap();
    assert_eq!(tok.encode("<|im_start|>").unwrap(), [im_start]);
    assert_eq!(tok.encode("x<|im_end|>\n").unwrap().len(), 3);
    assert!(tok.is_special(im_start) && !tok.is_special(tok.token_id("Ġthe").unwrap()));
    // `<|im_end|>` (EOS here) and `<|endoftext|>` both end generation.
    assert_eq!(tok.end_of_generation(), [0, im_end]);
    assert!(tok.is_end_of_generation(im_end) && !tok.is_end_of_generation(im_start));
    assert_eq!(tok.token_piece(tok.token_id("ĠParis").unwrap()).unwrap(), " Paris");
    assert_eq!(tok.token_piece(im_end).unwrap(), "<|im_end|>");
    assert!(matches!(tok.decode(&[49152]), Err(Error::UnknownTokenId { id: 49152, vocab: 49152 })));
}

#[test]
fn add_bos_is_honoured_when_set() {
    let Some(gguf) = gguf() else { return };
    let mut config = TokenizerConfig::from_gguf(gguf).unwrap();
    config.add_bos = true;
    let tok = Tokenizer::new(config).unwrap();
    let plain = tok.encode_raw("Hello").unwrap();
    assert_eq!(tok.encode("Hello").unwrap(), [&[1][..], &plain].concat());
}

/// Feed ids one by one through a [`Decoder`] and join what it returns.
fn stream(tok: &Tokenizer, ids: &[u32]) -> String {
    let mut d = Decoder::new();
    let mut out: String = ids.iter().map(|&id| d.push(tok, id).unwrap()).collect();
    out.push_str(&d.finish());
    out
}

#[test]
fn streaming_splits_no_character() {
    let Some(tok) = tokenizer() else { return };
    // Byte-level tokens cut 🙂 and 日本 into pieces that are not UTF-8 alone.
    let ids = tok.encode("🙂日本語 café").unwrap();
    let mut d = Decoder::new();
    for &id in &ids {
        let piece = d.push(tok, id).unwrap();
        assert!(!piece.contains('\u{FFFD}'), "a character was split: {piece:?}");
    }
    assert_eq!(stream(tok, &ids), "🙂日本語 café");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn decode_encode_round_trips(s in any::<String>()) {
        let Some(tok) = tokenizer() else { return Ok(()) };
        let ids = tok.encode(&s).unwrap();
        prop_assert_eq!(tok.decode(&ids).unwrap(), s.clone());
        prop_assert_eq!(stream(tok, &ids), s);
    }

    #[test]
    fn streaming_equals_full_decode_on_any_ids(ids in prop::collection::vec(0u32..49152, 0..40)) {
        let Some(tok) = tokenizer() else { return Ok(()) };
        prop_assert_eq!(stream(tok, &ids), tok.decode(&ids).unwrap());
    }
}

// --- synthetic GGUF files: metadata errors, no model needed ---

/// A GGUF v3 file with no tensors and the given metadata.
fn synthetic(kvs: &[(&str, Meta)]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend(0u64.to_le_bytes());
    b.extend((kvs.len() as u64).to_le_bytes());
    let str_ = |b: &mut Vec<u8>, s: &str| {
        b.extend((s.len() as u64).to_le_bytes());
        b.extend(s.as_bytes());
    };
    for (key, value) in kvs {
        str_(&mut b, key);
        match value {
            Meta::Str(s) => {
                b.extend(8u32.to_le_bytes());
                str_(&mut b, s);
            }
            Meta::U32(v) => {
                b.extend(4u32.to_le_bytes());
                b.extend(v.to_le_bytes());
            }
            Meta::Bool(v) => {
                b.extend(7u32.to_le_bytes());
                b.push(*v as u8);
            }
            Meta::Strs(items) => {
                b.extend(9u32.to_le_bytes());
                b.extend(8u32.to_le_bytes());
                b.extend((items.len() as u64).to_le_bytes());
                for s in items {
                    str_(&mut b, s);
                }
            }
            Meta::I32s(items) => {
                b.extend(9u32.to_le_bytes());
                b.extend(5u32.to_le_bytes());
                b.extend((items.len() as u64).to_le_bytes());
                for v in items {
                    b.extend(v.to_le_bytes());
                }
            }
        }
    }
    b.resize(b.len().next_multiple_of(32), 0);
    b
}

enum Meta {
    Str(&'static str),
    U32(u32),
    Bool(bool),
    Strs(Vec<&'static str>),
    I32s(Vec<i32>),
}

/// A five-token vocabulary: `<|end|>` (control), a, b, ab, Ġab.
fn tiny(
    pre: &'static str,
    model: &'static str,
    types: Vec<i32>,
    bos: u32,
    add_bos: bool,
) -> Result<Tokenizer, Error> {
    let gguf = Gguf::parse(&synthetic(&[
        ("general.architecture", Meta::Str("llama")),
        ("tokenizer.ggml.model", Meta::Str(model)),
        ("tokenizer.ggml.pre", Meta::Str(pre)),
        ("tokenizer.ggml.tokens", Meta::Strs(vec!["<|end|>", "a", "b", "ab", "Ġ", "Ġab"])),
        ("tokenizer.ggml.token_type", Meta::I32s(types)),
        ("tokenizer.ggml.merges", Meta::Strs(vec!["a b", "Ġ ab"])),
        ("tokenizer.ggml.bos_token_id", Meta::U32(bos)),
        ("tokenizer.ggml.eos_token_id", Meta::U32(0)),
        ("tokenizer.ggml.add_bos_token", Meta::Bool(add_bos)),
    ]))?;
    Tokenizer::from_gguf(&gguf)
}

const TYPES: [i32; 6] = [3, 1, 1, 1, 1, 1];

#[test]
fn tiny_vocabulary_merges_and_special_tokens() {
    let tok = tiny("gpt2", "gpt2", TYPES.to_vec(), 1, false).unwrap();
    assert_eq!(tok.encode("ab ab<|end|>a").unwrap(), [3, 5, 0, 1]);
    let with_bos = tiny("gpt2", "gpt2", TYPES.to_vec(), 1, true).unwrap();
    assert_eq!(with_bos.encode("ab").unwrap(), [1, 3]);
    assert_eq!(with_bos.end_of_generation(), [0]);
}

#[test]
fn unsupported_metadata_is_an_error_naming_it() {
    let err = tiny("falcon", "gpt2", TYPES.to_vec(), 1, false).unwrap_err();
    assert!(matches!(&err, Error::UnsupportedPreTokenizer(p) if p == "falcon"), "{err}");
    assert!(err.to_string().contains("`falcon`"));
    let err = tiny("gpt2", "bert", TYPES.to_vec(), 1, false).unwrap_err();
    assert!(matches!(&err, Error::UnsupportedTokenizer(m) if m == "bert"), "{err}");
    let err = tiny("gpt2", "gpt2", vec![1, 1], 1, false).unwrap_err();
    assert!(matches!(&err, Error::GgufCorrupt(m) if m.contains("token_type")), "{err}");
    let err = tiny("gpt2", "gpt2", TYPES.to_vec(), 99, false).unwrap_err();
    assert!(matches!(&err, Error::GgufCorrupt(m) if m.contains("bos_token_id")), "{err}");
}

#[test]
fn chat_template_missing_or_foreign_is_an_error() {
    let gguf = Gguf::parse(&synthetic(&[("general.architecture", Meta::Str("llama"))])).unwrap();
    assert!(
        matches!(ChatTemplate::from_gguf(&gguf), Err(Error::GgufMissingKey(k)) if k == "tokenizer.chat_template")
    );
    let gguf =
        Gguf::parse(&synthetic(&[("tokenizer.chat_template", Meta::Str("[INST] {{ m }} [/INST]"))])).unwrap();
    assert!(matches!(ChatTemplate::from_gguf(&gguf), Err(Error::UnsupportedChatTemplate(_))));
}
