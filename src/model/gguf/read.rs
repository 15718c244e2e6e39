//! A bounds-checked little-endian cursor over the bytes of a GGUF file.
//!
//! Every read checks the remaining length first, and every count read from
//! the file is checked against the bytes left *before* anything is allocated
//! for it, so a corrupt length can produce an error but never a panic or a
//! huge allocation.

use crate::error::{Error, Result};

pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Byte offset of the next read from the start of the file.
    pub(super) fn pos(&self) -> usize {
        self.pos
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn truncated(&self, what: &str) -> Error {
        Error::GgufTruncated { what: what.to_string(), offset: self.pos as u64 }
    }

    /// The next `n` bytes. `n` is a u64 so a length from the file is compared
    /// before any narrowing cast could wrap it.
    pub(super) fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8]> {
        if n > self.remaining() as u64 {
            return Err(self.truncated(what));
        }
        let start = self.pos;
        self.pos += n as usize;
        Ok(&self.bytes[start..self.pos])
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let b = self.take(N as u64, what)?;
        // `take` returned exactly N bytes, so this conversion cannot fail.
        Ok(b.try_into().unwrap_or([0; N]))
    }

    pub(super) fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }
    pub(super) fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }
    pub(super) fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }
    pub(super) fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
    pub(super) fn f32(&mut self, what: &str) -> Result<f32> {
        Ok(f32::from_le_bytes(self.array(what)?))
    }
    pub(super) fn f64(&mut self, what: &str) -> Result<f64> {
        Ok(f64::from_le_bytes(self.array(what)?))
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes (no terminator).
    pub(super) fn string(&mut self, what: &str) -> Result<String> {
        let at = self.pos;
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Error::GgufCorrupt(format!("{what} at byte {at} is not valid UTF-8")))
    }

    /// Check that `count` items of at least `min_size` bytes each can still
    /// fit in the file, and return the count as a usize for `with_capacity`.
    pub(super) fn count(&self, count: u64, min_size: u64, what: &str) -> Result<usize> {
        match count.checked_mul(min_size) {
            Some(need) if need <= self.remaining() as u64 => Ok(count as usize),
            _ => Err(Error::GgufTruncated {
                what: format!("{count} {what} of at least {min_size} bytes each"),
                offset: self.pos as u64,
            }),
        }
    }

    /// `n` items read by `item`, after checking they can fit (`min_size`).
    pub(super) fn items<T>(
        &mut self,
        n: u64,
        min_size: u64,
        what: &str,
        mut item: impl FnMut(&mut Self) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.count(n, min_size, what)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }
}
