//! The SentencePiece tokenizer (`tokenizer.ggml.model` = `llama`): Gemma 3's
//! vocabulary against ids from the `sentencepiece` package
//! (tests/fixtures/tokenizer/gemma3.json, made by
//! scripts/gen-tokenizer-fixtures.py), Gemma's chat format, and a
//! hand-worked tiny vocabulary with its metadata errors.
//!
//! Tests that need Gemma return early, saying so, when the file is absent
//! (scripts/fetch-gemma.sh). The tiny-vocabulary
//! tests always run.

use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::Value;
use wgqa::model::{
    ChatTemplate, Decoder, Gguf, MetaArray, MetaValue, Tokenizer, TokenizerConfig, TokenizerModel,
};
use wgqa::Error;
use wgqa_testkit::gguf_writer;
use wgqa_testkit::model_file::gemma3_model_path;
use wgqa_testkit::tokenizer_fixture::{self, ids};

fn gemma() -> Option<&'static (Gguf, Tokenizer)> {
    static GEMMA: OnceLock<Option<(Gguf, Tokenizer)>> = OnceLock::new();
    GEMMA
        .get_or_init(|| {
            let gguf = Gguf::open(gemma3_model_path()?).expect("Gemma opens");
            let tok = Tokenizer::from_gguf(&gguf).expect("Gemma's tokenizer builds");
            Some((gguf, tok))
        })
        .as_ref()
}

fn fixture() -> Value {
    tokenizer_fixture::load("gemma3")
}

/// Feed ids one by one through a [`Decoder`] and join what it returns.
fn stream(tok: &Tokenizer, ids: &[u32]) -> String {
    let mut d = Decoder::new();
    let mut out: String = ids.iter().map(|&id| d.push(tok, id).unwrap()).collect();
    out.push_str(&d.finish());
    out
}

#[test]
fn gemma_matches_sentencepiece_fixtures() {
    let Some((_, tok)) = gemma() else { return };
    let fixture = fixture();
    let cases = fixture["cases"].as_array().expect("cases");
    assert!(cases.len() >= 60, "fixture has only {} cases", cases.len());
    assert_eq!(tok.vocab_size() as u64, fixture["vocab_size"].as_u64().unwrap());
    let mut failures = Vec::new();
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let (want, got) = (ids(&case["ids"]), tok.encode_raw(text).unwrap());
        if got != want {
            failures.push(format!("{text:?}\n  sentencepiece {want:?}\n  wgqa          {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn gemma_decode_inverts_every_fixture() {
    let Some((_, tok)) = gemma() else { return };
    for case in fixture()["cases"].as_array().unwrap() {
        // U+2581 in text is SentencePiece's escaped space: it comes back as one.
        let text = case["text"].as_str().unwrap().replace('\u{2581}', " ");
        let ids = ids(&case["ids"]);
        assert_eq!(tok.decode(&ids).unwrap(), text);
        assert_eq!(stream(tok, &ids), text);
    }
}

#[test]
fn gemma_chat_renders_and_encodes_like_reference() {
    let Some((gguf, tok)) = gemma() else { return };
    // This file has no `tokenizer.chat_template`: Gemma's turn tokens choose it.
    assert!(gguf.get("tokenizer.chat_template").is_none());
    let template = ChatTemplate::from_gguf(gguf).unwrap();
    assert_eq!(template, ChatTemplate::Gemma);
    // The reference's ids include BOS, which `encode` adds for Gemma.
    tokenizer_fixture::check_chats(&fixture(), template, tok);
}

#[test]
fn gemma_special_tokens_and_flags() {
    let Some((_, tok)) = gemma() else { return };
    assert_eq!(tok.model(), TokenizerModel::SentencePiece);
    assert_eq!(tok.vocab_size(), 262144);
    assert_eq!((tok.bos(), tok.eos(), tok.unknown(), tok.padding()), (Some(2), Some(1), Some(3), Some(0)));
    assert!(tok.adds_bos() && !tok.adds_space_prefix());
    let start = tok.token_id("<start_of_turn>").unwrap();
    let end = tok.token_id("<end_of_turn>").unwrap();
    assert_eq!((start, end), (105, 106));
    assert!(tok.is_special(start) && !tok.is_special(tok.token_id("▁the").unwrap()));
    assert_eq!(tok.end_of_generation(), [1, end]);
    assert!(tok.is_end_of_generation(end) && !tok.is_end_of_generation(start));
    assert_eq!(tok.encode("Hi").unwrap(), [2, tok.token_id("Hi").unwrap()]);
    assert_eq!(tok.encode("").unwrap(), [2]);
    assert_eq!(tok.token_piece(tok.token_id("▁Paris").unwrap()).unwrap(), " Paris");
    assert_eq!(tok.token_bytes(tok.token_id("<0x0A>").unwrap()).unwrap(), b"\n");
    assert!(matches!(tok.decode(&[262144]), Err(Error::UnknownTokenId { id: 262144, vocab: 262144 })));
}

#[test]
fn gemma_encodes_kilobytes_quickly() {
    let Some((_, tok)) = gemma() else { return };
    let paragraph = "The Industrial Revolution began in Great Britain in the late eighteenth century. \
                     Économie, 日本語, 🙂 and 12345 come along.\n";
    let text = paragraph.repeat(8192 / paragraph.len() + 1);
    let t = std::time::Instant::now();
    let ids = tok.encode_raw(&text).unwrap();
    let spent = t.elapsed();
    eprintln!("{} bytes -> {} tokens in {spent:?}", text.len(), ids.len());
    assert_eq!(tok.decode(&ids).unwrap(), text);
    // Also one long run with no piece boundary, the worst case for merging.
    let run = "x".repeat(20_000);
    assert_eq!(tok.decode(&tok.encode_raw(&run).unwrap()).unwrap(), run);
    assert!(spent.as_secs_f64() < 5.0, "8 KB took {spent:?}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn gemma_decode_encode_round_trips(s in any::<String>().prop_map(|s| s.replace('\u{2581}', " "))) {
        let Some((_, tok)) = gemma() else { return Ok(()) };
        let ids = tok.encode_raw(&s).unwrap();
        prop_assert_eq!(tok.decode(&ids).unwrap(), s.clone());
        prop_assert_eq!(stream(tok, &ids), s);
    }
}

// --- a tiny hand-worked vocabulary, no model needed ---

/// Pieces, types and scores of the tiny vocabulary. Only `é`'s two bytes
/// and newline have byte tokens.
const TINY: &[(&str, i32, f32)] = &[
    ("<unk>", 2, 0.0),     // 0
    ("<s>", 3, 0.0),       // 1
    ("</s>", 3, 0.0),      // 2
    ("<0xC3>", 6, 0.0),    // 3
    ("<0xA9>", 6, 0.0),    // 4
    ("<0x0A>", 6, 0.0),    // 5
    ("a", 1, -1.0),        // 6
    ("b", 1, -1.0),        // 7
    ("c", 1, -1.0),        // 8
    ("ab", 1, -5.0),       // 9
    ("bc", 1, -2.0),       // 10
    ("abc", 1, -3.0),      // 11
    ("▁a", 1, -4.0),       // 12
    ("▁", 1, -6.0),        // 13
    ("aa", 1, -1.5),       // 14
    ("<tag>", 4, 0.0),     // 15
    ("<unused0>", 5, 0.0), // 16
];

fn tiny_config(add_space_prefix: bool) -> TokenizerConfig {
    let kvs = tiny_metadata(&[]);
    let mut config = TokenizerConfig::from_gguf(&parse(&kvs)).unwrap();
    config.add_space_prefix = add_space_prefix;
    config
}

/// The tiny vocabulary's metadata, without the keys in `drop`.
fn tiny_metadata(drop: &[&str]) -> Vec<(&'static str, MetaValue)> {
    let kvs = vec![
        ("general.architecture", MetaValue::Str("llama".into())),
        ("tokenizer.ggml.model", MetaValue::Str("llama".into())),
        (
            "tokenizer.ggml.tokens",
            MetaValue::Array(MetaArray::Str(TINY.iter().map(|t| t.0.into()).collect())),
        ),
        ("tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(TINY.iter().map(|t| t.1).collect()))),
        ("tokenizer.ggml.scores", MetaValue::Array(MetaArray::F32(TINY.iter().map(|t| t.2).collect()))),
    ];
    kvs.into_iter().filter(|(k, _)| !drop.contains(k)).collect()
}

fn parse(kvs: &[(&str, MetaValue)]) -> Gguf {
    Gguf::parse(&gguf_writer::build(3, 32, kvs, &[]).buf).unwrap()
}

fn tiny(add_space_prefix: bool) -> Tokenizer {
    Tokenizer::new(tiny_config(add_space_prefix)).unwrap()
}

#[test]
fn tiny_merges_by_score_not_by_length_or_position() {
    let tok = tiny(false);
    // a b c: bc (-2) beats ab (-5); then a+bc = abc (-3).
    assert_eq!(tok.encode_raw("abc").unwrap(), [11]);
    // a a a: two equal aa pairs; the leftmost merges, aaa is no piece.
    assert_eq!(tok.encode_raw("aaa").unwrap(), [14, 6]);
    // a b a b: ab twice, b+a is no piece.
    assert_eq!(tok.encode_raw("abab").unwrap(), [9, 9]);
    // Without a prefix a space is a lone ▁ (no ▁b piece).
    assert_eq!(tok.encode_raw("a b").unwrap(), [6, 13, 7]);
    assert_eq!(tok.encode_raw("").unwrap(), Vec::<u32>::new());
}

#[test]
fn tiny_space_prefix_and_special_pieces() {
    let tok = tiny(true);
    // ▁ a ▁ b: ▁a (-4) is the only piece pair.
    assert_eq!(tok.encode_raw("a b").unwrap(), [12, 13, 7]);
    // The user-defined <tag> and control <s> are whole; the prefix comes
    // back after each, where ▁a (-4) beats ab (-5).
    assert_eq!(tok.encode_raw("<tag>ab<s>b").unwrap(), [15, 12, 7, 1, 13, 7]);
    assert_eq!(tiny(false).encode_raw("<tag>ab<s>b").unwrap(), [15, 9, 1, 7]);
    // decode drops the prefix it added; a stream keeps it.
    assert_eq!(tok.decode(&[12, 13, 7]).unwrap(), "a b");
    assert_eq!(stream(&tok, &[12, 13, 7]), " a b");
    // Defaults for a `llama` file that names nothing: BOS 1 added, EOS 2,
    // unknown 0, a space prefix.
    assert!(tok.adds_bos() && tok.adds_space_prefix());
    assert_eq!((tok.bos(), tok.eos(), tok.unknown()), (Some(1), Some(2), Some(0)));
    assert_eq!(tok.encode("a").unwrap(), [1, 12]);
}

#[test]
fn tiny_byte_fallback_and_its_absence() {
    let tok = tiny(false);
    // é is no piece: its two UTF-8 bytes; newline likewise.
    assert_eq!(tok.encode_raw("é\na").unwrap(), [3, 4, 5, 6]);
    assert_eq!(tok.decode(&[3, 4, 5, 6]).unwrap(), "é\na");
    let mut d = Decoder::new();
    assert_eq!(d.push(&tok, 3).unwrap(), "");
    assert_eq!(d.push(&tok, 4).unwrap(), "é");
    // ü is C3 BC, and there is no <0xBC>.
    let err = tok.encode_raw("aü").unwrap_err();
    assert!(matches!(err, Error::MissingByteToken { byte: 0xBC }), "{err}");
    assert!(err.to_string().contains("<0xBC>"), "{err}");
    // Unused pieces may still be built; control ones never are.
    assert_eq!(tok.token_id("<unused0>"), Some(16));
    assert_eq!(tok.token_id("<0xC3>"), Some(3));
}

#[test]
fn tiny_nan_scores_do_not_panic() {
    let mut config = tiny_config(false);
    config.scores.iter_mut().for_each(|s| *s = f32::NAN);
    let tok = Tokenizer::new(config).unwrap();
    let ids = tok.encode_raw("abc aab").unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), "abc aab");
}

#[test]
fn gemma_architecture_defaults_to_no_space_prefix() {
    let mut kvs = tiny_metadata(&["general.architecture"]);
    kvs.push(("general.architecture", MetaValue::Str("gemma3".into())));
    assert!(!Tokenizer::from_gguf(&parse(&kvs)).unwrap().adds_space_prefix());
    kvs.push(("tokenizer.ggml.add_space_prefix", MetaValue::Bool(true)));
    assert!(Tokenizer::from_gguf(&parse(&kvs)).unwrap().adds_space_prefix());
}

#[test]
fn bad_sentencepiece_metadata_is_an_error_naming_it() {
    let err = Tokenizer::from_gguf(&parse(&tiny_metadata(&["tokenizer.ggml.scores"]))).unwrap_err();
    assert!(matches!(&err, Error::GgufMissingKey(k) if k == "tokenizer.ggml.scores"), "{err}");

    let with = |key: &'static str, value: MetaValue| {
        let mut kvs = tiny_metadata(&[key]);
        kvs.push((key, value));
        Tokenizer::from_gguf(&parse(&kvs)).unwrap_err()
    };
    let err = with("tokenizer.ggml.scores", MetaValue::Array(MetaArray::F32(vec![0.0; 3])));
    assert!(
        matches!(&err, Error::GgufCorrupt(m) if m.contains("scores has 3 entries for 17 tokens")),
        "{err}"
    );
    let err = with("tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(vec![1; 20])));
    assert!(matches!(&err, Error::GgufCorrupt(m) if m.contains("token_type has 20 entries")), "{err}");
    let err = with("tokenizer.ggml.scores", MetaValue::Array(MetaArray::I32(vec![0; 17])));
    assert!(err.to_string().contains("tokenizer.ggml.scores"), "{err}");
    let err = with("tokenizer.ggml.model", MetaValue::Str("t5".into()));
    assert!(matches!(&err, Error::UnsupportedTokenizer(m) if m == "t5"), "{err}");
    let err = with("tokenizer.ggml.bos_token_id", MetaValue::U32(17));
    assert!(matches!(&err, Error::GgufCorrupt(m) if m.contains("bos_token_id")), "{err}");
    // A token typed "byte" must be spelled <0xNN>.
    let mut types: Vec<i32> = TINY.iter().map(|t| t.1).collect();
    types[6] = 6;
    let err = with("tokenizer.ggml.token_type", MetaValue::Array(MetaArray::I32(types)));
    assert!(matches!(&err, Error::GgufCorrupt(m) if m.contains("token 6") && m.contains("\"a\"")), "{err}");

    // A config assembled by hand is checked too.
    let mut config = tiny_config(false);
    config.scores.pop();
    assert!(matches!(Tokenizer::new(config), Err(Error::TokenizerBuild(_))));
}
