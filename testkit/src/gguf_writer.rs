//! A minimal GGUF writer for tests, and fixture files built with it. It
//! records where every length/count/dim/offset field sits so the property
//! test can inflate them (the library's writer, `wgqa::convert::write_gguf`,
//! does not; the type numbers come from it).

use half::f16;
use wgqa::convert::{array_type, value_type};
use wgqa::model::{MetaArray, MetaValue};

#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
    /// (position, width in bytes) of each length-like field.
    pub fields: Vec<(usize, usize)>,
}

impl Writer {
    fn u32(&mut self, v: u32) {
        self.buf.extend(v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.buf.extend(v.to_le_bytes());
    }
    fn len_u32(&mut self, v: u32) {
        self.fields.push((self.buf.len(), 4));
        self.u32(v);
    }
    fn len_u64(&mut self, v: u64) {
        self.fields.push((self.buf.len(), 8));
        self.u64(v);
    }
    fn str(&mut self, s: &str) {
        self.len_u64(s.len() as u64);
        self.buf.extend(s.as_bytes());
    }

    fn value(&mut self, v: &MetaValue) {
        match v {
            MetaValue::U8(x) => self.buf.push(*x),
            MetaValue::I8(x) => self.buf.push(*x as u8),
            MetaValue::U16(x) => self.buf.extend(x.to_le_bytes()),
            MetaValue::I16(x) => self.buf.extend(x.to_le_bytes()),
            MetaValue::U32(x) => self.u32(*x),
            MetaValue::I32(x) => self.buf.extend(x.to_le_bytes()),
            MetaValue::F32(x) => self.buf.extend(x.to_le_bytes()),
            MetaValue::Bool(x) => self.buf.push(*x as u8),
            MetaValue::Str(s) => self.str(s),
            MetaValue::Array(a) => self.array(a),
            MetaValue::U64(x) => self.u64(*x),
            MetaValue::I64(x) => self.buf.extend(x.to_le_bytes()),
            MetaValue::F64(x) => self.buf.extend(x.to_le_bytes()),
        }
    }

    fn array(&mut self, a: &MetaArray) {
        // Encode each element as a scalar value of the array's type.
        let items: Vec<MetaValue> = match a {
            MetaArray::U8(v) => v.iter().map(|&x| MetaValue::U8(x)).collect(),
            MetaArray::I8(v) => v.iter().map(|&x| MetaValue::I8(x)).collect(),
            MetaArray::U16(v) => v.iter().map(|&x| MetaValue::U16(x)).collect(),
            MetaArray::I16(v) => v.iter().map(|&x| MetaValue::I16(x)).collect(),
            MetaArray::U32(v) => v.iter().map(|&x| MetaValue::U32(x)).collect(),
            MetaArray::I32(v) => v.iter().map(|&x| MetaValue::I32(x)).collect(),
            MetaArray::F32(v) => v.iter().map(|&x| MetaValue::F32(x)).collect(),
            MetaArray::Bool(v) => v.iter().map(|&x| MetaValue::Bool(x)).collect(),
            MetaArray::Str(v) => v.iter().map(|x| MetaValue::Str(x.clone())).collect(),
            MetaArray::Array(v) => v.iter().map(|x| MetaValue::Array(x.clone())).collect(),
            MetaArray::U64(v) => v.iter().map(|&x| MetaValue::U64(x)).collect(),
            MetaArray::I64(v) => v.iter().map(|&x| MetaValue::I64(x)).collect(),
            MetaArray::F64(v) => v.iter().map(|&x| MetaValue::F64(x)).collect(),
        };
        self.u32(array_type(a));
        self.len_u64(items.len() as u64);
        items.iter().for_each(|v| self.value(v));
    }
}

pub struct RawTensor {
    pub name: String,
    pub dims: Vec<u64>,
    pub ty: u32,
    pub data: Vec<u8>,
}

pub fn tensor(name: &str, dims: &[u64], ty: u32, data: Vec<u8>) -> RawTensor {
    RawTensor { name: name.into(), dims: dims.into(), ty, data }
}

/// An F32 tensor of deterministic pseudo-random values in
/// [-scale / 2, scale / 2), seeded by its name.
pub fn f32_weights(name: &str, dims: &[u64], scale: f32) -> RawTensor {
    let n = dims.iter().product::<u64>() as usize;
    let salt = name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32));
    let data = (0..n as u32)
        .map(|i| {
            ((i.wrapping_mul(2_654_435_761).wrapping_add(salt) >> 8) as f32 / (1 << 24) as f32 - 0.5) * scale
        })
        .flat_map(f32::to_le_bytes)
        .collect();
    tensor(name, dims, 0, data)
}

/// Encode a whole file; `alignment` is also written as `general.alignment`
/// when it is not the default.
pub fn build(version: u32, alignment: u64, kvs: &[(&str, MetaValue)], tensors: &[RawTensor]) -> Writer {
    let mut kvs: Vec<(&str, MetaValue)> = kvs.to_vec();
    if alignment != 32 {
        kvs.push(("general.alignment", MetaValue::U32(alignment as u32)));
    }
    let mut w = Writer::default();
    w.buf.extend(b"GGUF");
    w.u32(version);
    w.len_u64(tensors.len() as u64);
    w.len_u64(kvs.len() as u64);
    for (k, v) in &kvs {
        w.str(k);
        w.u32(value_type(v));
        w.value(v);
    }
    let mut offset = 0u64;
    let mut offsets = Vec::new();
    for t in tensors {
        w.str(&t.name);
        w.len_u32(t.dims.len() as u32);
        t.dims.iter().for_each(|&d| w.len_u64(d));
        w.u32(t.ty);
        w.len_u64(offset);
        offsets.push(offset);
        offset = (offset + t.data.len() as u64).next_multiple_of(alignment);
    }
    let data_start = (w.buf.len() as u64).next_multiple_of(alignment);
    for (t, off) in tensors.iter().zip(offsets) {
        w.buf.resize((data_start + off) as usize, 0);
        w.buf.extend(&t.data);
    }
    w
}

pub fn f16_le(x: f32) -> [u8; 2] {
    f16::from_f32(x).to_bits().to_le_bytes()
}

// ---------------------------------------------------------------------------
// Fixtures.

pub fn all_metadata() -> Vec<(&'static str, MetaValue)> {
    vec![
        ("general.architecture", MetaValue::Str("llama".into())),
        ("t.u8", MetaValue::U8(200)),
        ("t.i8", MetaValue::I8(-100)),
        ("t.u16", MetaValue::U16(60000)),
        ("t.i16", MetaValue::I16(-30000)),
        ("t.u32", MetaValue::U32(4_000_000_000)),
        ("t.i32", MetaValue::I32(-9)),
        ("t.f32", MetaValue::F32(1e-5)),
        ("t.bool", MetaValue::Bool(true)),
        ("t.str", MetaValue::Str("héllo 世界 🙂".into())),
        ("t.empty", MetaValue::Str(String::new())),
        ("t.u64", MetaValue::U64(u64::MAX)),
        ("t.i64", MetaValue::I64(i64::MIN)),
        ("t.f64", MetaValue::F64(-2.5e300)),
        ("t.heads_i32", MetaValue::I32(9)),
        ("a.u8", MetaValue::Array(MetaArray::U8(vec![1, 2, 255]))),
        ("a.i8", MetaValue::Array(MetaArray::I8(vec![-1, 0, 1]))),
        ("a.u16", MetaValue::Array(MetaArray::U16(vec![7, 65535]))),
        ("a.i16", MetaValue::Array(MetaArray::I16(vec![-7]))),
        ("a.u32", MetaValue::Array(MetaArray::U32(vec![]))),
        ("a.i32", MetaValue::Array(MetaArray::I32(vec![1, -2, 3]))),
        ("a.f32", MetaValue::Array(MetaArray::F32(vec![0.5, -0.25]))),
        ("a.bool", MetaValue::Array(MetaArray::Bool(vec![true, false]))),
        ("a.str", MetaValue::Array(MetaArray::Str(vec!["Ġthe".into(), "".into(), "<|im_start|>".into()]))),
        ("a.u64", MetaValue::Array(MetaArray::U64(vec![1 << 40]))),
        ("a.i64", MetaValue::Array(MetaArray::I64(vec![-(1 << 40)]))),
        ("a.f64", MetaValue::Array(MetaArray::F64(vec![3.25]))),
        (
            "a.nested",
            MetaValue::Array(MetaArray::Array(vec![
                MetaArray::U8(vec![1]),
                MetaArray::Str(vec!["x".into()]),
            ])),
        ),
    ]
}

/// One tensor of each type with hand-chosen contents, and the values each
/// must dequantise to (worked out by hand from the ggml block layouts).
pub fn all_tensors() -> Vec<(RawTensor, Vec<f32>)> {
    let f32_vals = [1.5f32, -2.0, 0.0, 3.25, 1e-3, -7.0];
    let f32_t = tensor("f32", &[3, 2], 0, f32_vals.iter().flat_map(|v| v.to_le_bytes()).collect());

    let f16_vals = [0.5f32, -1.25, 65504.0, 0.0];
    let f16_t = tensor("f16", &[4], 1, f16_vals.iter().flat_map(|&v| f16_le(v)).collect());

    // Q8_0: d = 0.5; q = -128, -127, ..., -97 -> -64.0, -63.5, ..., -48.5.
    let mut q8 = f16_le(0.5).to_vec();
    q8.extend((0..32).map(|j| (j as i8).wrapping_sub(i8::MAX).wrapping_sub(1) as u8));
    let q8_want: Vec<f32> = (0..32).map(|j| (j as f32 - 128.0) * 0.5).collect();
    let q8_t = tensor("q8_0", &[32], 8, q8);

    // Q4_0: d = 2; every byte is 0xF3: low nibble 3 -> (3-8)*2 = -10 for
    // elements 0..16, high nibble 15 -> (15-8)*2 = 14 for elements 16..32.
    let mut q40 = f16_le(2.0).to_vec();
    q40.extend([0xF3u8; 16]);
    let mut q40_want = vec![-10.0f32; 16];
    q40_want.extend([14.0f32; 16]);
    let q40_t = tensor("q4_0", &[32, 1], 2, q40);

    // Q4_1, two blocks (checks block order): block 0 d = 0.5, m = -1, bytes
    // 0x21 -> lo 1 -> -0.5, hi 2 -> 0.0; block 1 d = 1, m = 4, bytes 0x0F ->
    // lo 15 -> 19, hi 0 -> 4.
    let mut q41 = f16_le(0.5).to_vec();
    q41.extend(f16_le(-1.0));
    q41.extend([0x21u8; 16]);
    q41.extend(f16_le(1.0));
    q41.extend(f16_le(4.0));
    q41.extend([0x0Fu8; 16]);
    let q41_want: Vec<f32> = [(-0.5f32, 16), (0.0, 16), (19.0, 16), (4.0, 16)]
        .iter()
        .flat_map(|&(v, n)| std::iter::repeat_n(v, n))
        .collect();
    let q41_t = tensor("q4_1", &[64], 3, q41);

    vec![
        (f32_t, f32_vals.to_vec()),
        (f16_t, f16_vals.to_vec()),
        (q8_t, q8_want),
        (q40_t, q40_want),
        (q41_t, q41_want),
    ]
}

pub fn valid_file(version: u32, alignment: u64) -> Writer {
    let tensors: Vec<RawTensor> = all_tensors().into_iter().map(|(t, _)| t).collect();
    build(version, alignment, &all_metadata(), &tensors)
}
