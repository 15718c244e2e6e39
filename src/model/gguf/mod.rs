//! A GGUF (v2 and v3, little-endian) reader.
//!
//! Layout of a file: magic `GGUF`, u32 version, u64 tensor count, u64
//! metadata count, the metadata key/values, the tensor infos (name, dims,
//! ggml type, offset), padding to `general.alignment`, then the tensor data.
//! Tensor offsets are relative to the start of that data section.
//!
//! The reader works on a byte slice so it runs unchanged in wasm, where the
//! model arrives as a fetched buffer. Everything read from the file is
//! validated here — counts, dims, types, alignment, data ranges — so code
//! that uses a [`Gguf`] never re-checks and never indexes out of bounds.

pub(crate) mod kquants;
mod meta;
mod read;
mod types;

use std::collections::HashMap;
use std::fmt;

pub use meta::{MetaArray, MetaValue};
pub use types::{ggml_type_name, TensorType, QK, QK_K};

use meta::read_value;
use read::Reader;

use crate::error::{Error, Result};

/// Alignment of the data section when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml tensors have at most this many dimensions.
pub const MAX_DIMS: usize = 4;

/// One tensor's description; its bytes come from [`Gguf::tensor_bytes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the contiguous (fastest) one,
    /// so a `[rows, cols]` matrix is stored as `dims = [cols, rows]`.
    pub dims: Vec<u64>,
    pub ty: TensorType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
    pub n_elements: u64,
    pub n_bytes: u64,
}

/// A parsed GGUF file, owning its bytes.
pub struct Gguf {
    version: u32,
    alignment: u64,
    pub(super) metadata: Vec<(String, MetaValue)>,
    pub(super) meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_start: u64,
    bytes: Vec<u8>,
}

impl Gguf {
    /// Parse a GGUF file held in memory (copied; see [`Gguf::from_vec`] to
    /// hand over a buffer without copying).
    pub fn parse(bytes: &[u8]) -> Result<Gguf> {
        let layout = Layout::read(bytes)?;
        Ok(layout.into_gguf(bytes.to_vec()))
    }

    /// Parse a GGUF file, taking ownership of its bytes.
    pub fn from_vec(bytes: Vec<u8>) -> Result<Gguf> {
        let layout = Layout::read(&bytes)?;
        Ok(layout.into_gguf(bytes))
    }

    /// Read and parse a GGUF file. A missing file gets an error that says how
    /// to fetch the default model.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: impl AsRef<std::path::Path>) -> Result<Gguf> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => Gguf::from_vec(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(Error::ModelMissing { path: shown, hint: super::FETCH_HINT.to_string() })
            }
            Err(source) => Err(Error::ModelRead { path: shown, source }),
        }
    }

    /// GGUF format version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Alignment of the data section and of every tensor's offset.
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Byte offset of the data section from the start of the file.
    pub fn data_offset(&self) -> u64 {
        self.data_start
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        let i = self.tensor_index.get(name);
        i.map(|&i| &self.tensors[i]).ok_or_else(|| Error::GgufMissingTensor(name.to_string()))
    }

    /// The tensor `name`, which must have exactly the dims `expected`
    /// (dimension 0 first, as GGUF lists them).
    pub fn tensor_with_dims(&self, name: &str, expected: &[u64]) -> Result<&TensorInfo> {
        let info = self.tensor(name)?;
        if info.dims != expected {
            return Err(Error::TensorShape {
                tensor: name.to_string(),
                expected: expected.to_vec(),
                got: info.dims.clone(),
            });
        }
        Ok(info)
    }

    /// The raw (possibly quantised) bytes of a tensor of this file. An info
    /// that does not describe this file's data is an error, not a panic.
    pub fn tensor_bytes(&self, info: &TensorInfo) -> Result<&[u8]> {
        let range = self.data_start.checked_add(info.offset).and_then(|start| {
            let end = start.checked_add(info.n_bytes)?;
            Some(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
        });
        range.and_then(|r| self.bytes.get(r)).ok_or_else(|| Error::GgufTruncated {
            what: format!("data of tensor `{}`", info.name),
            offset: self.data_start.saturating_add(info.offset),
        })
    }

    /// The tensor named `name`, dequantised to f32.
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.tensor(name)?;
        dequantize(info, self.tensor_bytes(info)?)
    }
}

/// Dequantise a tensor's raw bytes to f32 (see [`types`]).
pub fn dequantize(info: &TensorInfo, bytes: &[u8]) -> Result<Vec<f32>> {
    types::dequantize(info.ty, info.n_elements, bytes)
}

/// Fail unless the file declares `general.architecture = llama`: the forward
/// pass only knows llama's tensor names and layout.
pub fn require_llama(gguf: &Gguf) -> Result<()> {
    match gguf.get_str("general.architecture")? {
        "llama" => Ok(()),
        other => Err(Error::GgufArchitecture(other.to_string())),
    }
}

impl fmt::Debug for Gguf {
    // Hand-written so that printing a Gguf never dumps the whole file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gguf")
            .field("version", &self.version)
            .field("alignment", &self.alignment)
            .field("metadata_keys", &self.metadata.len())
            .field("tensors", &self.tensors.len())
            .field("data_offset", &self.data_start)
            .field("file_len", &self.bytes.len())
            .finish()
    }
}

/// Everything parsed from a file except its bytes.
struct Layout {
    version: u32,
    alignment: u64,
    metadata: Vec<(String, MetaValue)>,
    meta_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    data_start: u64,
}

/// Smallest encodings, to bound counts: a metadata entry is a key length
/// (u64), a value type (u32) and at least one value byte; a tensor info is a
/// name length (u64), n_dims (u32), a type (u32) and an offset (u64).
const MIN_KV_BYTES: u64 = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES: u64 = 8 + 4 + 4 + 8;

impl Layout {
    fn read(bytes: &[u8]) -> Result<Layout> {
        let mut r = Reader::new(bytes);
        let magic = r.take(4, "magic")?;
        if magic != b"GGUF" {
            return Err(Error::GgufBadMagic(magic.try_into().unwrap_or_default()));
        }
        // v1 had 32-bit counts; v3 only added big-endian files, which announce
        // themselves here as a byte-swapped version number.
        let version = r.u32("version")?;
        if version != 2 && version != 3 {
            return Err(Error::GgufVersion(version));
        }
        let n_tensors = r.u64("tensor count")?;
        let n_kv = r.u64("metadata count")?;
        // Both tables must fit in what is left before either is allocated.
        r.count(n_tensors, MIN_TENSOR_INFO_BYTES, "tensor infos")?;
        r.count(n_kv, MIN_KV_BYTES, "metadata entries")?;

        let metadata = r.items(n_kv, MIN_KV_BYTES, "metadata entries", read_kv)?;
        let mut meta_index = HashMap::with_capacity(metadata.len());
        for (i, (key, _)) in metadata.iter().enumerate() {
            if meta_index.insert(key.clone(), i).is_some() {
                return Err(Error::GgufCorrupt(format!("metadata key `{key}` appears twice")));
            }
        }
        let alignment = read_alignment(metadata.iter().find(|(k, _)| k == "general.alignment"))?;

        let tensors =
            r.items(n_tensors, MIN_TENSOR_INFO_BYTES, "tensor infos", |r| read_tensor_info(r, alignment))?;
        let data_start = (r.pos() as u64)
            .checked_next_multiple_of(alignment)
            .ok_or_else(|| Error::GgufCorrupt("data section offset overflows".into()))?;
        check_data_ranges(&tensors, data_start, bytes.len() as u64)?;
        Ok(Layout { version, alignment, metadata, meta_index, tensors, data_start })
    }

    fn into_gguf(self, bytes: Vec<u8>) -> Gguf {
        let tensor_index = self.tensors.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        Gguf {
            version: self.version,
            alignment: self.alignment,
            metadata: self.metadata,
            meta_index: self.meta_index,
            tensors: self.tensors,
            tensor_index,
            data_start: self.data_start,
            bytes,
        }
    }
}

fn read_kv(r: &mut Reader) -> Result<(String, MetaValue)> {
    let key = r.string("metadata key")?;
    let what = format!("value of `{key}`");
    let ty = r.u32(&what)?;
    let value = read_value(r, ty, &what)?;
    Ok((key, value))
}

fn read_alignment(entry: Option<&(String, MetaValue)>) -> Result<u64> {
    let Some((_, v)) = entry else { return Ok(DEFAULT_ALIGNMENT) };
    match v.as_i128() {
        Some(a) if a > 0 && a <= u32::MAX.into() && (a as u64).is_power_of_two() => Ok(a as u64),
        _ => Err(Error::GgufCorrupt(format!("general.alignment must be a power of two, got {v:?}"))),
    }
}

fn read_tensor_info(r: &mut Reader, alignment: u64) -> Result<TensorInfo> {
    let name = r.string("tensor name")?;
    let what = format!("info of tensor `{name}`");
    let n_dims = r.u32(&what)?;
    if n_dims as usize > MAX_DIMS {
        return Err(Error::GgufCorrupt(format!(
            "tensor `{name}` has {n_dims} dimensions, at most {MAX_DIMS} are allowed"
        )));
    }
    let dims = r.items(n_dims.into(), 8, &what, |r| r.u64(&what))?;
    let ty_id = r.u32(&what)?;
    let offset = r.u64(&what)?;
    let ty = TensorType::from_ggml(ty_id).ok_or_else(|| Error::GgufUnsupportedType {
        tensor: name.clone(),
        ty: ty_id,
        ty_name: ggml_type_name(ty_id).unwrap_or("unknown"),
    })?;
    let n_elements = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .ok_or_else(|| Error::GgufCorrupt(format!("tensor `{name}`: element count of {dims:?} overflows")))?;
    // Rows must be whole blocks, as ggml requires, so a row never starts
    // inside a block; an empty shape is one element.
    let row = dims.first().copied().unwrap_or(1);
    let n_bytes = match ty.bytes_for(n_elements) {
        Some(n) if row.is_multiple_of(ty.block_len() as u64) => n,
        _ => {
            return Err(Error::GgufCorrupt(format!(
                "tensor `{name}` of type {} has shape {dims:?}: rows must be whole \
                 blocks of {} and the size must fit in 64 bits",
                ty.name(),
                ty.block_len()
            )))
        }
    };
    if !offset.is_multiple_of(alignment) {
        return Err(Error::GgufCorrupt(format!(
            "tensor `{name}` offset {offset} is not a multiple of the alignment {alignment}"
        )));
    }
    Ok(TensorInfo { name, dims, ty, offset, n_elements, n_bytes })
}

/// Every tensor's data lies inside the file, and no two overlap; names are
/// unique.
fn check_data_ranges(tensors: &[TensorInfo], data_start: u64, file_len: u64) -> Result<()> {
    let mut by_offset: Vec<&TensorInfo> = tensors.iter().collect();
    by_offset.sort_by_key(|t| t.offset);
    let mut prev: Option<(&TensorInfo, u64)> = None;
    for t in by_offset {
        let start = data_start.checked_add(t.offset);
        let end = start.and_then(|s| s.checked_add(t.n_bytes));
        match end {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(Error::GgufTruncated {
                    what: format!("data of tensor `{}` ({} bytes)", t.name, t.n_bytes),
                    offset: data_start.saturating_add(t.offset),
                })
            }
        }
        if let Some((p, p_end)) = prev {
            if t.offset < p_end {
                return Err(Error::GgufCorrupt(format!(
                    "data of tensors `{}` and `{}` overlap",
                    p.name, t.name
                )));
            }
        }
        prev = Some((t, t.offset + t.n_bytes));
    }
    let mut names = std::collections::HashSet::with_capacity(tensors.len());
    if let Some(t) = tensors.iter().find(|t| !names.insert(t.name.as_str())) {
        return Err(Error::GgufCorrupt(format!("tensor `{}` appears twice", t.name)));
    }
    Ok(())
}
