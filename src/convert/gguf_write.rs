//! A GGUF v3 writer: metadata in the given order, tensor infos, then each
//! tensor's data at an offset aligned to the file's alignment (the layout
//! [`crate::model::Gguf`] reads, described in `model/gguf.rs`).

use std::borrow::Cow;

use crate::model::{MetaArray, MetaValue, TensorType, DEFAULT_ALIGNMENT};

/// One tensor to write: its data is borrowed when copied unchanged.
pub struct TensorOut<'a> {
    pub name: String,
    /// ggml order: `dims[0]` is the contiguous dimension.
    pub dims: Vec<u64>,
    pub ty: TensorType,
    pub data: Cow<'a, [u8]>,
}

/// GGUF's number for the type of a metadata value.
pub fn value_type(v: &MetaValue) -> u32 {
    match v {
        MetaValue::U8(_) => 0,
        MetaValue::I8(_) => 1,
        MetaValue::U16(_) => 2,
        MetaValue::I16(_) => 3,
        MetaValue::U32(_) => 4,
        MetaValue::I32(_) => 5,
        MetaValue::F32(_) => 6,
        MetaValue::Bool(_) => 7,
        MetaValue::Str(_) => 8,
        MetaValue::Array(_) => 9,
        MetaValue::U64(_) => 10,
        MetaValue::I64(_) => 11,
        MetaValue::F64(_) => 12,
    }
}

/// GGUF's number for the element type of an array.
pub fn array_type(a: &MetaArray) -> u32 {
    match a {
        MetaArray::U8(_) => 0,
        MetaArray::I8(_) => 1,
        MetaArray::U16(_) => 2,
        MetaArray::I16(_) => 3,
        MetaArray::U32(_) => 4,
        MetaArray::I32(_) => 5,
        MetaArray::F32(_) => 6,
        MetaArray::Bool(_) => 7,
        MetaArray::Str(_) => 8,
        MetaArray::Array(_) => 9,
        MetaArray::U64(_) => 10,
        MetaArray::I64(_) => 11,
        MetaArray::F64(_) => 12,
    }
}

/// The encoding of a value (without its type number).
pub fn encode_value(out: &mut Vec<u8>, v: &MetaValue) {
    match v {
        MetaValue::U8(x) => out.push(*x),
        MetaValue::I8(x) => out.extend(x.to_le_bytes()),
        MetaValue::U16(x) => out.extend(x.to_le_bytes()),
        MetaValue::I16(x) => out.extend(x.to_le_bytes()),
        MetaValue::U32(x) => out.extend(x.to_le_bytes()),
        MetaValue::I32(x) => out.extend(x.to_le_bytes()),
        MetaValue::F32(x) => out.extend(x.to_le_bytes()),
        MetaValue::Bool(x) => out.push(u8::from(*x)),
        MetaValue::Str(s) => encode_str(out, s),
        MetaValue::Array(a) => encode_array(out, a),
        MetaValue::U64(x) => out.extend(x.to_le_bytes()),
        MetaValue::I64(x) => out.extend(x.to_le_bytes()),
        MetaValue::F64(x) => out.extend(x.to_le_bytes()),
    }
}

fn encode_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

fn encode_array(out: &mut Vec<u8>, a: &MetaArray) {
    fn each<T>(out: &mut Vec<u8>, v: &[T], mut f: impl FnMut(&mut Vec<u8>, &T)) {
        out.extend((v.len() as u64).to_le_bytes());
        v.iter().for_each(|x| f(out, x));
    }
    out.extend(array_type(a).to_le_bytes());
    match a {
        MetaArray::U8(v) => each(out, v, |o, x| o.push(*x)),
        MetaArray::I8(v) => each(out, v, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::U16(v) => each(out, v, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::I16(v) => each(out, v, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::U32(v) => each(out, v, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::I32(v) => each(out, v, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::F32(v) => each(out, v, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::Bool(v) => each(out, v, |o, x| o.push(u8::from(*x))),
        MetaArray::Str(v) => each(out, v, |o, x| encode_str(o, x)),
        MetaArray::Array(v) => each(out, v, encode_array),
        MetaArray::U64(v) => each(out, v, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::I64(v) => each(out, v, |o, x| o.extend(x.to_le_bytes())),
        MetaArray::F64(v) => each(out, v, |o, x| o.extend(x.to_le_bytes())),
    }
}

/// The bytes of a GGUF v3 file. `alignment` (a power of two) applies to the
/// data section and every tensor; a non-default one must also be in
/// `metadata` as `general.alignment`, which the caller keeps from its input.
pub fn write_gguf(metadata: &[(String, MetaValue)], tensors: &[TensorOut], alignment: u64) -> Vec<u8> {
    debug_assert!(alignment.is_power_of_two());
    debug_assert!(
        alignment == DEFAULT_ALIGNMENT || metadata.iter().any(|(k, _)| k == "general.alignment"),
        "a non-default alignment must be declared"
    );
    let data_len: u64 = tensors.iter().map(|t| (t.data.len() as u64).next_multiple_of(alignment)).sum();
    let mut out = Vec::with_capacity(data_len as usize + (1 << 20));
    out.extend(b"GGUF");
    out.extend(3u32.to_le_bytes());
    out.extend((tensors.len() as u64).to_le_bytes());
    out.extend((metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        encode_str(&mut out, key);
        out.extend(value_type(value).to_le_bytes());
        encode_value(&mut out, value);
    }
    let mut offset = 0u64;
    for t in tensors {
        encode_str(&mut out, &t.name);
        out.extend((t.dims.len() as u32).to_le_bytes());
        t.dims.iter().for_each(|d| out.extend(d.to_le_bytes()));
        out.extend(t.ty.ggml_id().to_le_bytes());
        out.extend(offset.to_le_bytes());
        offset += (t.data.len() as u64).next_multiple_of(alignment);
    }
    let data_start = (out.len() as u64).next_multiple_of(alignment);
    out.resize(data_start as usize, 0);
    for t in tensors {
        out.extend(t.data.iter());
        out.resize((out.len() as u64).next_multiple_of(alignment) as usize, 0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Gguf;

    #[test]
    fn written_file_reads_back() {
        let metadata = vec![
            ("general.architecture".to_string(), MetaValue::Str("llama".into())),
            ("general.alignment".to_string(), MetaValue::U32(64)),
            ("a.i32".to_string(), MetaValue::Array(MetaArray::I32(vec![3, -1]))),
            (
                "a.nested".to_string(),
                MetaValue::Array(MetaArray::Array(vec![MetaArray::Str(vec!["x".into()])])),
            ),
            ("f".to_string(), MetaValue::F64(2.5)),
        ];
        let data: Vec<u8> = [1.0f32, 2.0, 3.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let tensors = [
            TensorOut { name: "a".into(), dims: vec![3], ty: TensorType::F32, data: Cow::Borrowed(&data) },
            TensorOut {
                name: "b".into(),
                dims: vec![1, 3],
                ty: TensorType::F32,
                data: Cow::Owned(data.clone()),
            },
        ];
        let g = Gguf::from_vec(write_gguf(&metadata, &tensors, 64)).unwrap();
        assert_eq!(g.alignment(), 64);
        assert_eq!(g.data_offset() % 64, 0);
        let got: Vec<(String, MetaValue)> = g.metadata().map(|(k, v)| (k.to_string(), v.clone())).collect();
        assert_eq!(got, metadata);
        assert_eq!(g.tensor("b").unwrap().offset, 64);
        assert_eq!(g.dequantize("b").unwrap(), [1.0, 2.0, 3.0]);
        assert_eq!(g.tensor_bytes(g.tensor("a").unwrap()).unwrap(), &data[..]);
    }
}
