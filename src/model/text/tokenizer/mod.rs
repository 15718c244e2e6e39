//! The tokenizer a GGUF file describes, built from `tokenizer.ggml.*`
//! metadata: GPT-2 byte-level BPE (`gpt2`, on the `tokenizers` crate, in
//! `bpe`) or SentencePiece BPE by piece score with byte fallback (`llama`,
//! written here, in `spm`).
//!
//! Decoding is shared: every token's bytes are precomputed here, so a full
//! decode and the streaming [`Decoder`] share one byte table and cannot
//! drift apart, and a stream never splits a multi-byte character.
//!
//! ```no_run
//! # fn demo() -> wgqa::Result<()> {
//! use wgqa::model::{Gguf, Tokenizer};
//! let tok = Tokenizer::from_gguf(&Gguf::open(wgqa::model::DEFAULT_MODEL)?)?;
//! let ids = tok.encode("<|im_start|>user\nHi<|im_end|>")?;
//! assert_eq!(tok.decode(&ids)?, "<|im_start|>user\nHi<|im_end|>");
//! # Ok(()) }
//! ```

mod bpe;
mod decoder;
mod special;
mod spm;

use std::collections::HashSet;

pub use bpe::PreTokenizer;
pub use decoder::Decoder;

use crate::error::{Error, Result};
use crate::model::Gguf;

/// llama.cpp's token types (`tokenizer.ggml.token_type`), which number
/// SentencePiece's piece types.
const TYPE_NORMAL: i32 = 1;
const TYPE_CONTROL: i32 = 3;
const TYPE_USER_DEFINED: i32 = 4;
const TYPE_UNUSED: i32 = 5;
const TYPE_BYTE: i32 = 6;

/// Control tokens that end a turn in the chat formats wgqa meets; like
/// llama.cpp, generation stops on them even when the file's EOS is another id.
const END_OF_TURN: &[&str] =
    &["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "<|endoftext|>", "<|end|>", "<end_of_turn>"];

/// The kind of vocabulary, named by `tokenizer.ggml.model`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenizerModel {
    /// GPT-2 byte-level BPE with ranked merges (`gpt2`: SmolLM2, Llama 3, Qwen2).
    Gpt2Bpe,
    /// SentencePiece BPE by piece score with byte fallback (`llama`: Llama 2, Gemma).
    SentencePiece,
}

impl TokenizerModel {
    /// The model llama.cpp calls `name`; others are an error naming it.
    pub fn from_name(name: &str) -> Result<TokenizerModel> {
        match name {
            "gpt2" => Ok(TokenizerModel::Gpt2Bpe),
            "llama" => Ok(TokenizerModel::SentencePiece),
            other => Err(Error::UnsupportedTokenizer(other.to_string())),
        }
    }
}

/// Everything the tokenizer needs from the GGUF metadata. Public so a caller
/// (or a test) can adjust a field, e.g. the pre-tokenizer, before building.
#[derive(Debug, Clone)]
pub struct TokenizerConfig {
    pub model: TokenizerModel,
    /// Token pieces by id, as the file spells them (byte-level alphabet or
    /// U+2581 for spaces in ordinary tokens, plain text for control tokens).
    pub tokens: Vec<String>,
    /// llama.cpp token types by id (1 normal, 2 unknown, 3 control,
    /// 4 user-defined, 5 unused, 6 byte).
    pub token_types: Vec<i32>,
    /// SentencePiece piece scores by id (higher merges first); empty for BPE.
    pub scores: Vec<f32>,
    /// BPE merges, best first, each "left right"; empty for SentencePiece.
    pub merges: Vec<String>,
    /// How BPE cuts text into words; SentencePiece does not use it.
    pub pre: PreTokenizer,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    /// End-of-turn token (`tokenizer.ggml.eot_token_id`), if the file names one.
    pub eot: Option<u32>,
    pub unknown: Option<u32>,
    pub padding: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    /// SentencePiece: put a space before the text (and after each special
    /// token) before encoding, as Llama 2 does and Gemma does not.
    pub add_space_prefix: bool,
}

impl TokenizerConfig {
    /// Read the `tokenizer.ggml.*` keys, checking they agree with each other.
    pub fn from_gguf(gguf: &Gguf) -> Result<TokenizerConfig> {
        let model = TokenizerModel::from_name(gguf.get_str("tokenizer.ggml.model")?)?;
        let spm = model == TokenizerModel::SentencePiece;
        // llama.cpp treats a missing pre-tokenizer name as `default`.
        let pre = PreTokenizer::from_name(gguf.opt_str("tokenizer.ggml.pre")?.unwrap_or("default"))?;
        let tokens = gguf.get_str_array("tokenizer.ggml.tokens")?.to_vec();
        let per_token = |key: &str, len: usize| -> Result<()> {
            match len == tokens.len() {
                true => Ok(()),
                false => {
                    Err(Error::GgufCorrupt(format!("{key} has {len} entries for {} tokens", tokens.len())))
                }
            }
        };
        let token_types = match gguf.get("tokenizer.ggml.token_type") {
            Some(_) => gguf.get_i32_array("tokenizer.ggml.token_type")?.to_vec(),
            None => vec![TYPE_NORMAL; tokens.len()],
        };
        per_token("tokenizer.ggml.token_type", token_types.len())?;
        let (scores, merges) = match spm {
            true => (gguf.get_f32_array("tokenizer.ggml.scores")?.to_vec(), Vec::new()),
            false => (Vec::new(), gguf.get_str_array("tokenizer.ggml.merges")?.to_vec()),
        };
        if spm {
            per_token("tokenizer.ggml.scores", scores.len())?;
        }
        // llama.cpp's SentencePiece defaults when a file names no ids.
        let id = |key: &str, spm_default: Option<u32>| -> Result<Option<u32>> {
            let id = gguf.opt_u32(key)?;
            match id {
                Some(i) if i as usize >= tokens.len() => Err(Error::GgufCorrupt(format!(
                    "`{key}` is {i}, but the vocabulary has {} tokens",
                    tokens.len()
                ))),
                Some(_) => Ok(id),
                None => Ok(spm_default.filter(|&i| spm && (i as usize) < tokens.len())),
            }
        };
        // Gemma's SentencePiece models add no dummy prefix; Llama 2's (and
        // llama.cpp's default for the `llama` model) do.
        let gemma = gguf.opt_str("general.architecture")?.is_some_and(|a| a.starts_with("gemma"));
        Ok(TokenizerConfig {
            model,
            pre,
            merges,
            scores,
            bos: id("tokenizer.ggml.bos_token_id", Some(1))?,
            eos: id("tokenizer.ggml.eos_token_id", Some(2))?,
            eot: id("tokenizer.ggml.eot_token_id", None)?,
            unknown: id("tokenizer.ggml.unknown_token_id", Some(0))?,
            padding: id("tokenizer.ggml.padding_token_id", None)?,
            // llama.cpp's defaults when the flag is absent: SentencePiece and
            // Llama-3 add BOS.
            add_bos: gguf
                .opt_bool("tokenizer.ggml.add_bos_token")?
                .unwrap_or(spm || pre == PreTokenizer::Llama3),
            add_eos: gguf.opt_bool("tokenizer.ggml.add_eos_token")?.unwrap_or(false),
            // Only SentencePiece applies it; BPE spells spaces in its pieces.
            add_space_prefix: spm && gguf.opt_bool("tokenizer.ggml.add_space_prefix")?.unwrap_or(!gemma),
            tokens,
            token_types,
        })
    }
}

/// The encoder of each kind of vocabulary (boxed: both are large).
enum Encoder {
    Bpe(Box<bpe::Bpe>),
    Spm(Box<spm::Spm>),
}

/// A tokenizer (byte-level BPE or SentencePiece) with the special tokens and
/// flags of one model.
pub struct Tokenizer {
    encoder: Encoder,
    config: TokenizerConfig,
    /// The bytes each token decodes to.
    bytes: Vec<Vec<u8>>,
    /// Control and user-defined tokens: matched whole in text.
    special: HashSet<u32>,
    end_of_generation: Vec<u32>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("model", &self.config.model)
            .field("vocab_size", &self.vocab_size())
            .field("pre", &self.config.pre)
            .field("bos", &self.config.bos)
            .field("eos", &self.config.eos)
            .finish_non_exhaustive()
    }
}

impl Tokenizer {
    /// The tokenizer stored in a GGUF file's metadata.
    pub fn from_gguf(gguf: &Gguf) -> Result<Tokenizer> {
        Tokenizer::new(TokenizerConfig::from_gguf(gguf)?)
    }

    /// Build from an explicit config.
    pub fn new(config: TokenizerConfig) -> Result<Tokenizer> {
        let n = config.tokens.len();
        let spm = config.model == TokenizerModel::SentencePiece;
        if n == 0
            || n > u32::MAX as usize
            || config.token_types.len() != n
            || (spm && config.scores.len() != n)
        {
            return Err(Error::TokenizerBuild(format!(
                "{n} tokens, {} token types and {} scores",
                config.token_types.len(),
                config.scores.len()
            )));
        }
        let is_special = |i: usize| matches!(config.token_types[i], TYPE_CONTROL | TYPE_USER_DEFINED);
        let special: HashSet<u32> = (0..n).filter(|&i| is_special(i)).map(|i| i as u32).collect();
        let encoder = match config.model {
            TokenizerModel::Gpt2Bpe => Encoder::Bpe(Box::new(bpe::Bpe::new(&config, is_special)?)),
            TokenizerModel::SentencePiece => Encoder::Spm(Box::new(spm::Spm::new(&config, is_special)?)),
        };
        let bytes = (0..n)
            .map(|i| {
                let piece = &config.tokens[i];
                match (config.model, config.token_types[i]) {
                    (_, TYPE_CONTROL | TYPE_USER_DEFINED) => piece.as_bytes().to_vec(),
                    (TokenizerModel::Gpt2Bpe, _) => bpe::byte_level_decode(piece),
                    (TokenizerModel::SentencePiece, TYPE_BYTE) => match spm::parse_byte_piece(piece) {
                        Some(b) => vec![b],
                        None => piece.as_bytes().to_vec(),
                    },
                    (TokenizerModel::SentencePiece, _) => piece.replace(spm::SPACE, " ").into_bytes(),
                }
            })
            .collect();
        let mut end_of_generation: Vec<u32> = config.eos.into_iter().chain(config.eot).collect();
        for i in
            special.iter().copied().filter(|&i| END_OF_TURN.contains(&config.tokens[i as usize].as_str()))
        {
            if !end_of_generation.contains(&i) {
                end_of_generation.push(i);
            }
        }
        end_of_generation.sort_unstable();
        Ok(Tokenizer { encoder, config, bytes, special, end_of_generation })
    }

    /// Token ids for `text`, with BOS/EOS added when the model asks for them.
    /// Special tokens written in the text (`<|im_start|>`) become single ids.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        if self.config.add_bos {
            ids.extend(self.config.bos);
        }
        ids.extend(self.encode_raw(text)?);
        if self.config.add_eos {
            ids.extend(self.config.eos);
        }
        Ok(ids)
    }

    /// Token ids for `text` alone: never adds BOS or EOS. A SentencePiece
    /// vocabulary without the byte token some character needs is an error.
    pub fn encode_raw(&self, text: &str) -> Result<Vec<u32>> {
        match &self.encoder {
            Encoder::Bpe(bpe) => bpe.encode(text),
            Encoder::Spm(spm) => spm.encode(text),
        }
    }

    /// The text of `ids`. Bytes that are not valid UTF-8 (a character cut
    /// off at the end) become U+FFFD, exactly as a [`Decoder`] would give.
    /// With a space prefix (SentencePiece), the first token's leading space
    /// is the one the encoder added and is dropped, as llama.cpp does; a
    /// [`Decoder`], which streams text that follows a prompt, keeps it.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let mut out = Vec::new();
        for &id in ids {
            out.extend_from_slice(self.token_bytes(id)?);
        }
        let skip = usize::from(self.config.add_space_prefix && out.first() == Some(&b' '));
        Ok(String::from_utf8_lossy(&out[skip..]).into_owned())
    }

    /// The raw bytes token `id` stands for (part of a character, maybe).
    pub fn token_bytes(&self, id: u32) -> Result<&[u8]> {
        self.bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .ok_or(Error::UnknownTokenId { id, vocab: self.bytes.len() })
    }

    /// Token `id` as readable text (`" Paris"`, `"<|im_end|>"`); bytes that
    /// are only part of a character show as U+FFFD.
    pub fn token_piece(&self, id: u32) -> Result<String> {
        Ok(String::from_utf8_lossy(self.token_bytes(id)?).into_owned())
    }

    /// The id of a piece spelled as in the file (`"Ġthe"`, `"▁the"`, `"<|im_end|>"`).
    pub fn token_id(&self, piece: &str) -> Option<u32> {
        match &self.encoder {
            Encoder::Bpe(bpe) => bpe.token_id(piece),
            Encoder::Spm(spm) => spm.token_id(piece),
        }
    }

    /// Whether `id` is a control or user-defined token.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.contains(&id)
    }

    pub fn model(&self) -> TokenizerModel {
        self.config.model
    }
    pub fn bos(&self) -> Option<u32> {
        self.config.bos
    }
    pub fn eos(&self) -> Option<u32> {
        self.config.eos
    }
    pub fn unknown(&self) -> Option<u32> {
        self.config.unknown
    }
    pub fn padding(&self) -> Option<u32> {
        self.config.padding
    }
    /// Whether [`Tokenizer::encode`] puts BOS first.
    pub fn adds_bos(&self) -> bool {
        self.config.add_bos
    }
    /// Whether SentencePiece encoding puts a space before the text.
    pub fn adds_space_prefix(&self) -> bool {
        self.config.add_space_prefix
    }
    pub fn pre_tokenizer(&self) -> PreTokenizer {
        self.config.pre
    }

    /// Ids that end generation: EOS, the end-of-turn token, and control
    /// tokens that close a turn (`<|im_end|>` for ChatML, `<end_of_turn>`
    /// for Gemma). Sorted.
    pub fn end_of_generation(&self) -> &[u32] {
        &self.end_of_generation
    }
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.end_of_generation.binary_search(&id).is_ok()
    }

    pub fn vocab_size(&self) -> usize {
        self.bytes.len()
    }
}
