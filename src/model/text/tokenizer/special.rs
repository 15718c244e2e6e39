//! Finding control and user-defined pieces written in text (`<start_of_turn>`,
//! a run of spaces Gemma keeps as one token), so that each becomes one id and
//! the text between them goes to the SentencePiece encoder.
//!
//! The match is leftmost-longest, as SentencePiece matches user-defined
//! pieces. llama.cpp instead tries the longest pieces first anywhere in the
//! text; the two differ only where one special piece's end overlaps another's
//! start, which no vocabulary wgqa reads has.

/// A byte trie of the special pieces.
#[derive(Debug, Default)]
pub(super) struct SpecialMatcher {
    nodes: Vec<Node>,
}

#[derive(Debug, Default)]
struct Node {
    /// Children by next byte; few per node, so a short list beats a map.
    next: Vec<(u8, u32)>,
    /// The token a piece ending here stands for.
    token: Option<u32>,
}

/// A piece of text: plain text to encode, or a special token found in it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fragment<'a> {
    Text(&'a str),
    Token(u32),
}

impl SpecialMatcher {
    /// `pieces` are (text, id); an empty text is skipped, and of two equal
    /// texts the first id wins, as elsewhere in the vocabulary.
    pub(super) fn new<'a>(pieces: impl IntoIterator<Item = (&'a str, u32)>) -> SpecialMatcher {
        let mut m = SpecialMatcher { nodes: vec![Node::default()] };
        for (text, id) in pieces {
            if text.is_empty() {
                continue;
            }
            let mut at = 0usize;
            for &b in text.as_bytes() {
                at = match m.nodes[at].next.iter().find(|(c, _)| *c == b) {
                    Some(&(_, child)) => child as usize,
                    None => {
                        let child = m.nodes.len();
                        m.nodes.push(Node::default());
                        m.nodes[at].next.push((b, child as u32));
                        child
                    }
                };
            }
            m.nodes[at].token.get_or_insert(id);
        }
        m
    }

    /// The longest special piece starting at `text[at..]`: (token, length).
    fn longest_at(&self, text: &[u8], at: usize) -> Option<(u32, usize)> {
        let mut node = 0usize;
        let mut best = None;
        for (i, &b) in text[at..].iter().enumerate() {
            match self.nodes[node].next.iter().find(|(c, _)| *c == b) {
                Some(&(_, child)) => node = child as usize,
                None => break,
            }
            if let Some(token) = self.nodes[node].token {
                best = Some((token, i + 1));
            }
        }
        best
    }

    /// `text` cut at every special piece, in order; no empty text fragments.
    pub(super) fn split<'a>(&self, text: &'a str) -> Vec<Fragment<'a>> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let (mut start, mut at) = (0, 0);
        while at < bytes.len() {
            match self.longest_at(bytes, at) {
                // A match starts and ends on character boundaries: the
                // pieces are UTF-8 and their first byte is never a
                // continuation byte.
                Some((token, len)) => {
                    if start < at {
                        out.push(Fragment::Text(&text[start..at]));
                    }
                    out.push(Fragment::Token(token));
                    at += len;
                    start = at;
                }
                None => at += 1,
            }
        }
        if start < bytes.len() {
            out.push(Fragment::Text(&text[start..]));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Fragment::{Text, Token};

    #[test]
    fn leftmost_longest_with_text_between() {
        let m = SpecialMatcher::new([("<a>", 0), ("  ", 1), ("   ", 2), ("<a>", 9), ("", 3)]);
        assert_eq!(
            m.split("x<a>y     z<a"),
            [Text("x"), Token(0), Text("y"), Token(2), Token(1), Text("z<a")]
        );
        assert_eq!(m.split("<a><a>"), [Token(0), Token(0)]);
        assert_eq!(m.split("é <a>"), [Text("é "), Token(0)]);
        assert!(m.split("").is_empty());
        assert_eq!(SpecialMatcher::new([]).split("abc"), [Text("abc")]);
    }
}
