//! GGUF metadata values: parsing every value type, and typed accessors.
//!
//! Arrays are stored typed (`Vec<f32>`, `Vec<String>`, ...) rather than as a
//! `Vec` of enum values: the tokenizer reads ~50k-entry arrays, and a typed
//! vector keeps memory close to the file's own size (a corrupt file cannot
//! make the reader allocate more than a small multiple of its length).

use super::read::Reader;
use super::Gguf;
use crate::error::{Error, Result};

/// Deepest nesting of arrays of arrays accepted. GGUF files use none; the
/// limit keeps a crafted file from overflowing the stack through recursion.
const MAX_ARRAY_DEPTH: u32 = 4;

/// One metadata value. Variant order follows GGUF's value-type numbers.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(String),
    Array(MetaArray),
    U64(u64),
    I64(i64),
    F64(f64),
}

/// A metadata array; GGUF arrays hold elements of one type.
#[derive(Debug, Clone, PartialEq)]
pub enum MetaArray {
    U8(Vec<u8>),
    I8(Vec<i8>),
    U16(Vec<u16>),
    I16(Vec<i16>),
    U32(Vec<u32>),
    I32(Vec<i32>),
    F32(Vec<f32>),
    Bool(Vec<bool>),
    Str(Vec<String>),
    Array(Vec<MetaArray>),
    U64(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

/// GGUF value-type numbers.
const STRING: u32 = 8;
const ARRAY: u32 = 9;

/// Smallest encoding of one value of type `ty`, used to bound counts read
/// from the file before allocating; `None` for an unknown type.
fn min_size(ty: u32) -> Option<u64> {
    Some(match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        STRING => 8,    // u64 length
        ARRAY => 4 + 8, // element type + count
        10..=12 => 8,
        _ => return None,
    })
}

fn unknown_type(ty: u32, what: &str, at: usize) -> Error {
    Error::GgufCorrupt(format!("{what} at byte {at} has unknown value type {ty}"))
}

/// Read a value of type `ty` (already read); `what` names it for errors.
pub(super) fn read_value(r: &mut Reader, ty: u32, what: &str) -> Result<MetaValue> {
    Ok(match ty {
        0 => MetaValue::U8(r.u8(what)?),
        1 => MetaValue::I8(r.u8(what)? as i8),
        2 => MetaValue::U16(r.u16(what)?),
        3 => MetaValue::I16(r.u16(what)? as i16),
        4 => MetaValue::U32(r.u32(what)?),
        5 => MetaValue::I32(r.u32(what)? as i32),
        6 => MetaValue::F32(r.f32(what)?),
        7 => MetaValue::Bool(read_bool(r, what)?),
        STRING => MetaValue::Str(r.string(what)?),
        ARRAY => MetaValue::Array(read_array(r, 1, what)?),
        10 => MetaValue::U64(r.u64(what)?),
        11 => MetaValue::I64(r.u64(what)? as i64),
        12 => MetaValue::F64(r.f64(what)?),
        _ => return Err(unknown_type(ty, what, r.pos())),
    })
}

fn read_bool(r: &mut Reader, what: &str) -> Result<bool> {
    let at = r.pos();
    match r.u8(what)? {
        0 => Ok(false),
        1 => Ok(true),
        b => Err(Error::GgufCorrupt(format!("{what} at byte {at}: bool byte {b}"))),
    }
}

fn read_array(r: &mut Reader, depth: u32, what: &str) -> Result<MetaArray> {
    let at = r.pos();
    if depth > MAX_ARRAY_DEPTH {
        return Err(Error::GgufCorrupt(format!(
            "{what} at byte {at} nests arrays deeper than {MAX_ARRAY_DEPTH}"
        )));
    }
    let ty = r.u32(what)?;
    let n = r.u64(what)?;
    let min = min_size(ty).ok_or_else(|| unknown_type(ty, what, at))?;
    let w = what;
    Ok(match ty {
        0 => MetaArray::U8(r.take(r.count(n, 1, w)? as u64, w)?.to_vec()),
        1 => MetaArray::I8(r.items(n, min, w, |r| Ok(r.u8(w)? as i8))?),
        2 => MetaArray::U16(r.items(n, min, w, |r| r.u16(w))?),
        3 => MetaArray::I16(r.items(n, min, w, |r| Ok(r.u16(w)? as i16))?),
        4 => MetaArray::U32(r.items(n, min, w, |r| r.u32(w))?),
        5 => MetaArray::I32(r.items(n, min, w, |r| Ok(r.u32(w)? as i32))?),
        6 => MetaArray::F32(r.items(n, min, w, |r| r.f32(w))?),
        7 => MetaArray::Bool(r.items(n, min, w, |r| read_bool(r, w))?),
        STRING => MetaArray::Str(r.items(n, min, w, |r| r.string(w))?),
        ARRAY => MetaArray::Array(r.items(n, min, w, |r| read_array(r, depth + 1, w))?),
        10 => MetaArray::U64(r.items(n, min, w, |r| r.u64(w))?),
        11 => MetaArray::I64(r.items(n, min, w, |r| Ok(r.u64(w)? as i64))?),
        12 => MetaArray::F64(r.items(n, min, w, |r| r.f64(w))?),
        _ => return Err(unknown_type(ty, what, at)),
    })
}

impl MetaValue {
    /// GGUF's name for this value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetaValue::U8(_) => "uint8",
            MetaValue::I8(_) => "int8",
            MetaValue::U16(_) => "uint16",
            MetaValue::I16(_) => "int16",
            MetaValue::U32(_) => "uint32",
            MetaValue::I32(_) => "int32",
            MetaValue::F32(_) => "float32",
            MetaValue::Bool(_) => "bool",
            MetaValue::Str(_) => "string",
            MetaValue::Array(_) => "array",
            MetaValue::U64(_) => "uint64",
            MetaValue::I64(_) => "int64",
            MetaValue::F64(_) => "float64",
        }
    }

    /// Any integer value, widened. Converters disagree on integer widths
    /// (a head count may be uint32 or int32), so accessors accept all of them
    /// and range-check instead.
    pub fn as_i128(&self) -> Option<i128> {
        Some(match *self {
            MetaValue::U8(v) => v.into(),
            MetaValue::I8(v) => v.into(),
            MetaValue::U16(v) => v.into(),
            MetaValue::I16(v) => v.into(),
            MetaValue::U32(v) => v.into(),
            MetaValue::I32(v) => v.into(),
            MetaValue::U64(v) => v.into(),
            MetaValue::I64(v) => v.into(),
            _ => return None,
        })
    }

    /// A float value (float32, or float64 narrowed).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            MetaValue::F32(v) => Some(v),
            MetaValue::F64(v) => Some(v as f32),
            _ => None,
        }
    }
}

impl Gguf {
    /// The metadata value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&MetaValue> {
        self.meta_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> impl Iterator<Item = (&str, &MetaValue)> {
        self.metadata.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn typed<'s, T>(
        &'s self,
        key: &str,
        expected: &'static str,
        conv: impl FnOnce(&'s MetaValue) -> Option<T>,
    ) -> Result<Option<T>> {
        let Some(v) = self.get(key) else { return Ok(None) };
        conv(v).map(Some).ok_or_else(|| Error::GgufKeyType {
            key: key.to_string(),
            expected,
            found: match v.as_i128() {
                Some(n) => format!("{} {n}", v.type_name()),
                None => v.type_name().to_string(),
            },
        })
    }

    fn required<T>(&self, key: &str, v: Result<Option<T>>) -> Result<T> {
        v?.ok_or_else(|| Error::GgufMissingKey(key.to_string()))
    }

    /// An integer key that fits a u32, or `None` when absent.
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        self.typed(key, "an integer in u32 range", |v| v.as_i128()?.try_into().ok())
    }
    /// An integer key that fits a u64, or `None` when absent.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        self.typed(key, "an integer in u64 range", |v| v.as_i128()?.try_into().ok())
    }
    /// An integer key that fits an i64, or `None` when absent.
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>> {
        self.typed(key, "an integer in i64 range", |v| v.as_i128()?.try_into().ok())
    }
    /// A float key, or `None` when absent.
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        self.typed(key, "a float", MetaValue::as_f32)
    }
    /// A bool key, or `None` when absent.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.typed(key, "a bool", |v| match v {
            MetaValue::Bool(b) => Some(*b),
            _ => None,
        })
    }
    /// A string key, or `None` when absent.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.typed(key, "a string", |v| match v {
            MetaValue::Str(s) => Some(s.as_str()),
            _ => None,
        })
    }
    /// An array key, or `None` when absent.
    pub fn opt_array(&self, key: &str) -> Result<Option<&MetaArray>> {
        self.typed(key, "an array", |v| match v {
            MetaValue::Array(a) => Some(a),
            _ => None,
        })
    }

    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.required(key, self.opt_u32(key))
    }
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.required(key, self.opt_u64(key))
    }
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.required(key, self.opt_i64(key))
    }
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        self.required(key, self.opt_f32(key))
    }
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        self.required(key, self.opt_bool(key))
    }
    pub fn get_str(&self, key: &str) -> Result<&str> {
        self.required(key, self.opt_str(key))
    }
    pub fn get_array(&self, key: &str) -> Result<&MetaArray> {
        self.required(key, self.opt_array(key))
    }

    /// A string-array key (token pieces, merges).
    pub fn get_str_array(&self, key: &str) -> Result<&[String]> {
        let v = self.typed(key, "an array of strings", |v| match v {
            MetaValue::Array(MetaArray::Str(a)) => Some(a.as_slice()),
            _ => None,
        });
        self.required(key, v)
    }
    /// A float32-array key (token scores).
    pub fn get_f32_array(&self, key: &str) -> Result<&[f32]> {
        let v = self.typed(key, "an array of float32", |v| match v {
            MetaValue::Array(MetaArray::F32(a)) => Some(a.as_slice()),
            _ => None,
        });
        self.required(key, v)
    }
    /// An int32-array key (token types).
    pub fn get_i32_array(&self, key: &str) -> Result<&[i32]> {
        let v = self.typed(key, "an array of int32", |v| match v {
            MetaValue::Array(MetaArray::I32(a)) => Some(a.as_slice()),
            _ => None,
        });
        self.required(key, v)
    }
}
