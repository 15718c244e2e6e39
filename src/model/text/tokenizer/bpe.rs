//! GPT-2 byte-level BPE (`tokenizer.ggml.model` = `gpt2`) on the `tokenizers`
//! crate: BPE model, pre-tokenizer, added special tokens.

use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior};

use super::{TokenizerConfig, TYPE_CONTROL};
use crate::error::{Error, Result};

/// Llama-3's split pattern (llama.cpp `llama-bpe`): letters keep one leading
/// non-letter, numbers split into runs of at most three digits, and the
/// contractions are case-insensitive.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's pattern: Llama-3's, except that every digit stands alone.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// How text is cut into words before BPE, named by `tokenizer.ggml.pre`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2's pattern (`gpt2`, and `default` when a file names none).
    Gpt2,
    /// Every digit alone, then GPT-2's pattern (`smollm`).
    SmolLm,
    /// Llama-3's pattern (`llama-bpe`, `llama3`, `llama-v3`).
    Llama3,
    /// Qwen2's pattern (`qwen2`).
    Qwen2,
}

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp calls `name`; others are an error naming it.
    pub fn from_name(name: &str) -> Result<PreTokenizer> {
        Ok(match name {
            "gpt2" | "default" => PreTokenizer::Gpt2,
            "smollm" => PreTokenizer::SmolLm,
            "llama-bpe" | "llama3" | "llama-v3" => PreTokenizer::Llama3,
            "qwen2" => PreTokenizer::Qwen2,
            other => return Err(Error::UnsupportedPreTokenizer(other.to_string())),
        })
    }

    /// The `tokenizers` pre-tokenizer. The byte-level step maps bytes to
    /// GPT-2's printable alphabet; it applies GPT-2's regex itself only when
    /// no explicit split pattern came before it.
    fn build(self) -> Result<PreTokenizerWrapper> {
        let split = |pattern: &str| -> Result<PreTokenizerWrapper> {
            let split =
                Split::new(SplitPattern::Regex(pattern.into()), SplitDelimiterBehavior::Isolated, false)
                    .map_err(|e| Error::TokenizerBuild(format!("split pattern: {e}")))?;
            Ok(split.into())
        };
        let steps: Vec<PreTokenizerWrapper> = match self {
            PreTokenizer::Gpt2 => vec![ByteLevel::new(false, false, true).into()],
            PreTokenizer::SmolLm => vec![Digits::new(true).into(), ByteLevel::new(false, false, true).into()],
            PreTokenizer::Llama3 => vec![split(LLAMA3_PATTERN)?, ByteLevel::new(false, false, false).into()],
            PreTokenizer::Qwen2 => vec![split(QWEN2_PATTERN)?, ByteLevel::new(false, false, false).into()],
        };
        Ok(Sequence::new(steps).into())
    }
}

/// The encoder of a byte-level BPE vocabulary.
pub(super) struct Bpe {
    inner: tokenizers::Tokenizer,
}

impl Bpe {
    /// `is_special(id)`: control and user-defined tokens, matched whole in text.
    pub(super) fn new(config: &TokenizerConfig, is_special: impl Fn(usize) -> bool) -> Result<Bpe> {
        // The first id of a piece wins, so a duplicated piece (some vocabularies
        // pad with repeats) still encodes to the id llama.cpp would pick.
        let mut vocab = Vocab::default();
        for (i, piece) in config.tokens.iter().enumerate().rev() {
            vocab.insert(piece.clone(), i as u32);
        }
        let mut merges = Vec::with_capacity(config.merges.len());
        for m in &config.merges {
            let (a, b) = m.split_once(' ').ok_or_else(|| {
                Error::GgufCorrupt(format!("BPE merge {m:?} has no space between its halves"))
            })?;
            merges.push((a.to_string(), b.to_string()));
        }
        let bpe = BPE::builder()
            .vocab_and_merges(vocab, merges)
            // Llama-3 emits a whole word when it is in the vocabulary, even
            // where the merges would build it differently (as llama.cpp does).
            .ignore_merges(config.pre == PreTokenizer::Llama3)
            .build()
            .map_err(|e| Error::TokenizerBuild(format!("BPE model: {e}")))?;
        let mut inner = tokenizers::Tokenizer::new(bpe);
        inner.with_pre_tokenizer(Some(config.pre.build()?));
        // Special tokens are matched in the raw text, before pre-tokenizing.
        let added: Vec<AddedToken> = (0..config.tokens.len())
            .filter(|&i| is_special(i))
            .map(|i| {
                AddedToken::from(config.tokens[i].clone(), config.token_types[i] == TYPE_CONTROL)
                    .normalized(false)
            })
            .collect();
        inner.add_special_tokens(&added);
        Ok(Bpe { inner })
    }

    pub(super) fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode_fast(text, false).map_err(|e| Error::TokenizerBuild(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    pub(super) fn token_id(&self, piece: &str) -> Option<u32> {
        self.inner.token_to_id(piece)
    }
}

/// GPT-2 spells each byte as a printable character so that BPE never sees
/// whitespace or control bytes: printable Latin-1 bytes stand for themselves,
/// the other 68 bytes take the code points from U+0100 up, in byte order.
fn byte_to_char_table() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in table.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let cp = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(cp).expect("code points below 0x144 are valid");
    }
    table
}

/// The bytes a byte-level piece spells. A character outside the alphabet
/// (not produced by GPT-2 vocabularies) is kept as its own UTF-8.
pub(super) fn byte_level_decode(piece: &str) -> Vec<u8> {
    use std::sync::OnceLock;
    static INVERSE: OnceLock<std::collections::HashMap<char, u8>> = OnceLock::new();
    let inverse =
        INVERSE.get_or_init(|| byte_to_char_table().iter().enumerate().map(|(b, &c)| (c, b as u8)).collect());
    let mut out = Vec::with_capacity(piece.len());
    for c in piece.chars() {
        match inverse.get(&c) {
            Some(&b) => out.push(b),
            None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn byte_table_is_a_bijection_onto_gpt2_alphabet() {
        let t = byte_to_char_table();
        let distinct: HashSet<char> = t.iter().copied().collect();
        assert_eq!(distinct.len(), 256);
        assert_eq!(t[b' ' as usize], 'Ġ');
        assert_eq!(t[b'\n' as usize], 'Ċ');
        assert_eq!(t[b'a' as usize], 'a');
        assert_eq!(t[0xAD], 'Ń');
        assert_eq!(byte_level_decode("ĠParis"), b" Paris");
    }

    /// The words each pre-tokenizer cuts `text` into (byte-level spelled).
    fn words(pre: PreTokenizer, text: &str) -> Vec<String> {
        use tokenizers::{OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer as _};
        let mut s = PreTokenizedString::from(text);
        pre.build().unwrap().pre_tokenize(&mut s).unwrap();
        let splits = s.get_splits(OffsetReferential::Original, OffsetType::Byte);
        splits.into_iter().map(|(w, _, _)| w.to_string()).collect()
    }

    // SmolLM2's vocabulary has no multi-digit tokens, so the fixtures cannot
    // tell digit rules apart; these pin them down directly.
    #[test]
    fn digit_rules_differ_by_pre_tokenizer() {
        let w = |pre| words(pre, "12345 x");
        assert_eq!(w(PreTokenizer::Gpt2), ["12345", "Ġx"]);
        assert_eq!(w(PreTokenizer::SmolLm), ["1", "2", "3", "4", "5", "Ġx"]);
        assert_eq!(w(PreTokenizer::Llama3), ["123", "45", "Ġx"]);
        assert_eq!(w(PreTokenizer::Qwen2), ["1", "2", "3", "4", "5", "Ġx"]);
        // Llama-3 gives a letter run one leading non-letter and ignores case
        // in contractions; GPT-2 only takes a space and lower case.
        assert_eq!(words(PreTokenizer::Llama3, "(DON'T"), ["(DON", "'T"]);
        assert_eq!(words(PreTokenizer::Gpt2, "(DON'T"), ["(", "DON", "'", "T"]);
    }

    #[test]
    fn unknown_pre_tokenizer_is_named() {
        let err = PreTokenizer::from_name("falcon").unwrap_err();
        assert!(err.to_string().contains("`falcon`"), "{err}");
        for name in ["smollm", "gpt2", "default", "llama-bpe", "qwen2"] {
            PreTokenizer::from_name(name).unwrap().build().unwrap();
        }
    }
}
