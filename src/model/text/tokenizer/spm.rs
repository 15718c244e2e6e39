//! SentencePiece BPE (`tokenizer.ggml.model` = `llama`): Llama-2-era and
//! Gemma vocabularies, where each piece has a score and merging is greedy by
//! score rather than by a ranked merge list.
//!
//! Text is first cut at special pieces ([`SpecialMatcher`]); each run of
//! plain text then has its spaces written as U+2581 (plus one in front when
//! the model adds a space prefix) and is split into characters. The adjacent
//! pair whose concatenation is a piece with the highest score merges (ties:
//! the leftmost), until no adjacent pair forms a piece. A priority queue
//! holds the candidate pairs; a merge invalidates the entries of its two
//! halves lazily (they are skipped when popped) and queues the new pairs on
//! either side, so a text of n characters costs O(n log n). A character that
//! is no piece becomes the byte tokens `<0xNN>` of its UTF-8.

use std::collections::{BinaryHeap, HashMap};

use super::special::{Fragment, SpecialMatcher};
use super::{TokenizerConfig, TYPE_BYTE, TYPE_NORMAL, TYPE_UNUSED, TYPE_USER_DEFINED};
use crate::error::{Error, Result};

/// SentencePiece's escaped space.
pub(super) const SPACE: char = '\u{2581}';

pub(super) struct Spm {
    /// Pieces that merging may build (normal, user-defined, unused): id and
    /// score. Control, unknown and byte pieces never come from text, so a
    /// literal `<0x41>` in text stays six characters, as in SentencePiece.
    pieces: HashMap<String, (u32, f32)>,
    /// Longest piece in bytes: longer pairs need no lookup.
    max_piece: usize,
    byte_tokens: [Option<u32>; 256],
    /// Every other piece (control, unknown, byte), for [`Spm::token_id`].
    others: HashMap<String, u32>,
    specials: SpecialMatcher,
    add_space_prefix: bool,
}

/// One symbol of the text being merged: a byte range, linked to its
/// neighbours. A symbol merged into its left neighbour is empty.
#[derive(Debug, Clone, Copy)]
struct Symbol {
    start: usize,
    end: usize,
    prev: usize,
    next: usize,
}

const NONE: usize = usize::MAX;

/// A candidate merge of `left` and `right`, valid while `right` still ends
/// at `end` and both are alive and adjacent.
#[derive(Debug, Clone, Copy)]
struct Pair {
    score: f32,
    left: usize,
    right: usize,
    end: usize,
}

impl Ord for Pair {
    /// Higher score first, then the leftmost. `total_cmp`: a NaN score from
    /// a hostile file orders somewhere, it cannot break the queue.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score.total_cmp(&other.score).then_with(|| other.left.cmp(&self.left))
    }
}
impl PartialOrd for Pair {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Pair {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Pair {}

/// The byte a byte piece (`<0x0A>`) stands for.
pub(super) fn parse_byte_piece(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    let exact = hex.len() == 2 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    exact.then(|| u8::from_str_radix(hex, 16).ok())?
}

impl Spm {
    /// `is_special(id)`: control and user-defined tokens, matched whole in text.
    pub(super) fn new(config: &TokenizerConfig, is_special: impl Fn(usize) -> bool) -> Result<Spm> {
        let mut pieces = HashMap::with_capacity(config.tokens.len());
        let mut byte_tokens = [None; 256];
        let mut others = HashMap::new();
        for (i, piece) in config.tokens.iter().enumerate() {
            match config.token_types[i] {
                TYPE_NORMAL | TYPE_USER_DEFINED | TYPE_UNUSED => {
                    pieces.entry(piece.clone()).or_insert((i as u32, config.scores[i]));
                }
                TYPE_BYTE => {
                    let b = parse_byte_piece(piece).ok_or_else(|| {
                        Error::GgufCorrupt(format!(
                            "token {i} is a byte token but reads {piece:?}, not <0xNN>"
                        ))
                    })?;
                    byte_tokens[b as usize].get_or_insert(i as u32);
                    others.entry(piece.clone()).or_insert(i as u32);
                }
                _ => {
                    others.entry(piece.clone()).or_insert(i as u32);
                }
            }
        }
        let max_piece = pieces.keys().map(String::len).max().unwrap_or(0);
        let specials = SpecialMatcher::new(
            (0..config.tokens.len())
                .filter(|&i| is_special(i))
                .map(|i| (config.tokens[i].as_str(), i as u32)),
        );
        Ok(Spm {
            pieces,
            max_piece,
            byte_tokens,
            others,
            specials,
            add_space_prefix: config.add_space_prefix,
        })
    }

    /// Token ids for `text`; special pieces in it become their own ids.
    pub(super) fn encode(&self, text: &str) -> Result<Vec<u32>> {
        // A U+2581 in the text already is a space to SentencePiece, also
        // when special pieces (runs of spaces) are matched.
        let text = match text.contains(SPACE) {
            true => std::borrow::Cow::Owned(text.replace(SPACE, " ")),
            false => std::borrow::Cow::Borrowed(text),
        };
        let mut out = Vec::new();
        // Like llama.cpp, the space prefix goes before the text's start and
        // after every special token.
        let mut after_special = true;
        for fragment in self.specials.split(&text) {
            match fragment {
                Fragment::Token(id) => {
                    out.push(id);
                    after_special = true;
                }
                Fragment::Text(t) => {
                    self.encode_text(t, self.add_space_prefix && after_special, &mut out)?;
                    after_special = false;
                }
            }
        }
        Ok(out)
    }

    /// Merge by score over the characters of one plain-text run.
    fn encode_text(&self, text: &str, prefix: bool, out: &mut Vec<u32>) -> Result<()> {
        let mut s = String::with_capacity(text.len() + 3);
        if prefix {
            s.push(SPACE);
        }
        s.extend(text.chars().map(|c| if c == ' ' { SPACE } else { c }));

        let mut syms: Vec<Symbol> = s
            .char_indices()
            .enumerate()
            .map(|(k, (at, c))| Symbol {
                start: at,
                end: at + c.len_utf8(),
                prev: k.wrapping_sub(1),
                next: k + 1,
            })
            .collect();
        if let Some(last) = syms.last_mut() {
            last.next = NONE;
        }
        let mut queue = BinaryHeap::new();
        for right in 1..syms.len() {
            self.queue_pair(&s, &syms, right - 1, right, &mut queue);
        }
        while let Some(pair) = queue.pop() {
            let (l, r) = (syms[pair.left], syms[pair.right]);
            let stale = l.start == l.end || r.start == r.end || l.next != pair.right || r.end != pair.end;
            if stale {
                continue;
            }
            syms[pair.left].end = r.end;
            syms[pair.left].next = r.next;
            syms[pair.right].end = r.start;
            if r.next != NONE {
                syms[r.next].prev = pair.left;
            }
            if l.prev != NONE {
                self.queue_pair(&s, &syms, l.prev, pair.left, &mut queue);
            }
            if r.next != NONE {
                self.queue_pair(&s, &syms, pair.left, r.next, &mut queue);
            }
        }

        let mut at = if syms.is_empty() { NONE } else { 0 };
        while at != NONE {
            let piece = &s[syms[at].start..syms[at].end];
            match self.pieces.get(piece) {
                Some(&(id, _)) => out.push(id),
                None => {
                    for &b in piece.as_bytes() {
                        out.push(self.byte_tokens[b as usize].ok_or(Error::MissingByteToken { byte: b })?);
                    }
                }
            }
            at = syms[at].next;
        }
        Ok(())
    }

    fn queue_pair(&self, s: &str, syms: &[Symbol], left: usize, right: usize, queue: &mut BinaryHeap<Pair>) {
        let (start, end) = (syms[left].start, syms[right].end);
        if end - start > self.max_piece {
            return;
        }
        if let Some(&(_, score)) = self.pieces.get(&s[start..end]) {
            queue.push(Pair { score, left, right, end });
        }
    }

    pub(super) fn token_id(&self, piece: &str) -> Option<u32> {
        self.pieces.get(piece).map(|&(id, _)| id).or_else(|| self.others.get(piece).copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_pieces_parse_only_in_their_exact_spelling() {
        assert_eq!(parse_byte_piece("<0x0A>"), Some(10));
        assert_eq!(parse_byte_piece("<0xff>"), Some(255));
        for bad in ["<0x0A", "<0x>", "<0x100>", "<0x+1>", "0x0A", "<0xZZ>"] {
            assert_eq!(parse_byte_piece(bad), None, "{bad}");
        }
    }

    #[test]
    fn pairs_order_by_score_then_leftmost() {
        let p = |score, left| Pair { score, left, right: left + 1, end: 0 };
        let mut q: BinaryHeap<Pair> = [p(-2.0, 0), p(-1.0, 5), p(-1.0, 3), p(f32::NAN, 1)].into();
        let order: Vec<usize> = std::iter::from_fn(|| q.pop()).map(|x| x.left).collect();
        assert_eq!(order, [1, 3, 5, 0]);
    }
}
