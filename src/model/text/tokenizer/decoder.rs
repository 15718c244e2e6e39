//! Streaming detokenizing that never splits a character.

use super::Tokenizer;
use crate::error::Result;

/// Streaming detokenizer: feed ids one at a time, get the text that is
/// complete so far. Bytes of a character split across tokens wait until the
/// character is whole, so the concatenated output equals [`Tokenizer::decode`]
/// of all ids once [`Decoder::finish`] has run (but for the leading space
/// that `decode` drops when the model adds a space prefix).
#[derive(Debug, Default, Clone)]
pub struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Add token `id`; returns the text it completes (maybe empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> Result<String> {
        Ok(self.push_bytes(tokenizer.token_bytes(id)?))
    }

    /// Add raw bytes; returns the text they complete (maybe empty).
    pub fn push_bytes(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(std::str::from_utf8(valid).expect("checked valid"));
                    match e.error_len() {
                        // A character whose remaining bytes may still come.
                        None => {
                            rest = after;
                            break;
                        }
                        // Bytes that no continuation can fix: one U+FFFD, as
                        // `String::from_utf8_lossy` writes them.
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                    }
                }
            }
        }
        let keep = rest.len();
        let drop = self.pending.len() - keep;
        self.pending.drain(..drop);
        out
    }

    /// End of stream: an unfinished character becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        let out =
            if self.pending.is_empty() { String::new() } else { char::REPLACEMENT_CHARACTER.to_string() };
        self.pending.clear();
        out
    }

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending(&self) -> &[u8] {
        &self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_holds_back_split_characters() {
        let mut d = Decoder::new();
        let euro = "€".as_bytes();
        assert_eq!(d.push_bytes(&euro[..1]), "");
        assert_eq!(d.push_bytes(&euro[1..2]), "");
        assert_eq!(d.push_bytes(&[euro[2], b'!']), "€!");
        assert!(d.pending().is_empty());
        // A byte that can never start a character is replaced at once.
        assert_eq!(d.push_bytes(&[0xFF, b'a']), "\u{FFFD}a");
        assert_eq!(d.push_bytes(&euro[..2]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }
}
