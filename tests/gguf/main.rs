//! GGUF reader tests: files built in memory by a tiny writer (v2 and v3),
//! round-trips of metadata and of all five tensor types, error paths, a
//! property test that mangles valid files (never a panic, never a huge
//! allocation), and the real default model when it has been fetched.

mod alloc_count;

use alloc_count::{alloc_budget, allocated_by};
use proptest::prelude::*;
use wgqa::model::{require_llama, Gguf, MetaArray, MetaValue, TensorType};
use wgqa::Error;
use wgqa_testkit::gguf_writer::{all_metadata, all_tensors, build, tensor, valid_file, Writer};

fn parse_err(bytes: &[u8]) -> Error {
    Gguf::parse(bytes).expect_err("the file should be rejected")
}

// ---------------------------------------------------------------------------
// Round trips.

#[test]
fn metadata_round_trips_in_v2_and_v3() {
    for version in [2, 3] {
        let w = valid_file(version, 32);
        let g = Gguf::parse(&w.buf).unwrap();
        assert_eq!(g.version(), version);
        let got: Vec<(&str, &MetaValue)> = g.metadata().collect();
        let want = all_metadata();
        assert_eq!(got.len(), want.len());
        for ((gk, gv), (wk, wv)) in got.iter().zip(&want) {
            assert_eq!((*gk, *gv), (*wk, wv), "version {version}");
        }
        assert_eq!(g.get_str("t.str").unwrap(), "héllo 世界 🙂");
        assert_eq!(g.get_u32("t.heads_i32").unwrap(), 9, "int32 accepted as u32");
        assert_eq!(g.get_u32("t.u32").unwrap(), 4_000_000_000);
        assert_eq!(g.get_u64("t.u64").unwrap(), u64::MAX);
        assert_eq!(g.get_i64("t.i64").unwrap(), i64::MIN);
        assert_eq!(g.get_f32("t.f32").unwrap(), 1e-5);
        assert!(g.get_bool("t.bool").unwrap());
        assert_eq!(g.get_str_array("a.str").unwrap(), ["Ġthe", "", "<|im_start|>"]);
        assert_eq!(g.get_f32_array("a.f32").unwrap(), [0.5, -0.25]);
        assert_eq!(g.get_i32_array("a.i32").unwrap(), [1, -2, 3]);
        assert_eq!(g.opt_u32("absent").unwrap(), None);
        assert_eq!(g.alignment(), 32);
        require_llama(&g).unwrap();
    }
}

#[test]
fn tensors_of_all_five_types_round_trip() {
    for (version, alignment) in [(2, 32), (3, 32), (3, 64), (2, 8)] {
        let w = valid_file(version, alignment);
        let g = Gguf::parse(&w.buf).unwrap();
        assert_eq!(g.alignment(), alignment);
        assert_eq!(g.data_offset() % alignment, 0);
        let cases = all_tensors();
        assert_eq!(g.tensors().len(), cases.len());
        for (raw, want) in cases {
            let info = g.tensor(&raw.name).unwrap();
            assert_eq!(info.dims, raw.dims);
            assert_eq!(info.ty.ggml_id(), raw.ty);
            assert_eq!(info.offset % alignment, 0);
            assert_eq!(info.n_elements, want.len() as u64);
            assert_eq!(g.tensor_bytes(info).unwrap(), raw.data, "{}", raw.name);
            assert_eq!(g.dequantize(&raw.name).unwrap(), want, "{} v{version}", raw.name);
        }
    }
}

#[test]
fn accessors_report_missing_and_mistyped_keys() {
    let g = Gguf::parse(&valid_file(3, 32).buf).unwrap();
    assert!(matches!(g.get_u32("nope"), Err(Error::GgufMissingKey(k)) if k == "nope"));
    assert!(matches!(g.get_u32("t.str"), Err(Error::GgufKeyType { .. })));
    assert!(matches!(g.get_u32("t.i32"), Err(Error::GgufKeyType { .. })), "-9 is not a u32");
    assert!(matches!(g.get_u32("t.u64"), Err(Error::GgufKeyType { .. })), "too big for u32");
    assert!(matches!(g.get_str_array("a.f32"), Err(Error::GgufKeyType { .. })));
    assert!(matches!(g.tensor("nope"), Err(Error::GgufMissingTensor(_))));
}

// ---------------------------------------------------------------------------
// Error paths, one cause each.

#[test]
fn wrong_magic_and_versions_are_rejected() {
    let mut w = valid_file(3, 32);
    assert!(matches!(parse_err(b"GG"), Error::GgufTruncated { .. }));
    w.buf[0] = b'X';
    assert!(matches!(parse_err(&w.buf), Error::GgufBadMagic(m) if &m == b"XGUF"));
    for version in [1u32, 4, 3u32.swap_bytes()] {
        let mut w = valid_file(3, 32);
        w.buf[4..8].copy_from_slice(&version.to_le_bytes());
        assert!(matches!(parse_err(&w.buf), Error::GgufVersion(v) if v == version));
    }
}

/// Overwrite the u64 at `pos`.
fn put_u64(buf: &mut [u8], pos: usize, v: u64) {
    buf[pos..pos + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn huge_lengths_and_counts_fail_fast_without_allocating() {
    let base = valid_file(3, 32);
    // Field 0 is the tensor count, 1 the metadata count, 2 the first key's length.
    for (field, value) in [(0, 1u64 << 40), (1, 1 << 40), (2, 1 << 60), (2, u64::MAX)] {
        let mut buf = base.buf.clone();
        put_u64(&mut buf, base.fields[field].0, value);
        let (res, bytes) = allocated_by(|| Gguf::parse(&buf));
        assert!(matches!(res, Err(Error::GgufTruncated { .. })), "field {field}: {res:?}");
        assert!(bytes < alloc_budget(buf.len()), "field {field}: allocated {bytes} bytes");
    }
}

fn one_tensor(dims: &[u64], ty: u32, data_len: usize) -> Vec<u8> {
    let kvs = [("general.architecture", MetaValue::Str("llama".into()))];
    build(3, 32, &kvs, &[tensor("w", dims, ty, vec![0; data_len])]).buf
}

#[test]
fn bad_tensor_infos_are_rejected() {
    let err = parse_err(&one_tensor(&[256], 15, 292));
    let msg = err.to_string();
    assert!(matches!(err, Error::GgufUnsupportedType { ty: 15, .. }), "{err:?}");
    assert!(msg.contains("Q8_K") && msg.contains("`w`"), "{msg}");
    assert!(parse_err(&one_tensor(&[4], 99, 4)).to_string().contains("99 (unknown)"));
    let five_dims = parse_err(&one_tensor(&[1, 1, 1, 1, 1], 0, 4));
    assert!(matches!(five_dims, Error::GgufCorrupt(ref m) if m.contains("5 dimensions")));
    let overflow = parse_err(&one_tensor(&[1 << 32, 1 << 32], 0, 4));
    assert!(matches!(overflow, Error::GgufCorrupt(ref m) if m.contains("overflows")), "{overflow:?}");
    let ragged = parse_err(&one_tensor(&[16, 2], 3, 20));
    assert!(matches!(ragged, Error::GgufCorrupt(ref m) if m.contains("whole blocks")));
    // 256 Q4_K elements, but in rows of 128: a row would start inside a super-block.
    let ragged_k = parse_err(&one_tensor(&[128, 2], 12, 144));
    assert!(
        matches!(ragged_k, Error::GgufCorrupt(ref m) if m.contains("whole blocks of 256")),
        "{ragged_k:?}"
    );
    let short = parse_err(&one_tensor(&[8], 0, 28));
    assert!(matches!(short, Error::GgufTruncated { ref what, .. } if what.contains("`w`")));
}

#[test]
fn bad_layouts_are_rejected() {
    let f32s = |n: usize| vec![0u8; 4 * n];
    let kvs = [("general.architecture", MetaValue::Str("llama".into()))];
    // Misaligned offset: the second tensor's offset field is the last field.
    let mut w = build(3, 32, &kvs, &[tensor("a", &[8], 0, f32s(8)), tensor("b", &[8], 0, f32s(8))]);
    let (pos, _) = *w.fields.last().unwrap();
    put_u64(&mut w.buf, pos, 4);
    assert!(matches!(parse_err(&w.buf), Error::GgufCorrupt(ref m) if m.contains("alignment")));
    // Overlapping data: both tensors at offset 0.
    put_u64(&mut w.buf, pos, 0);
    assert!(matches!(parse_err(&w.buf), Error::GgufCorrupt(ref m) if m.contains("overlap")));
    // Same name twice.
    let dup = build(3, 32, &kvs, &[tensor("a", &[8], 0, f32s(8)), tensor("a", &[8], 0, f32s(8))]);
    assert!(matches!(parse_err(&dup.buf), Error::GgufCorrupt(ref m) if m.contains("twice")));
    // Same key twice.
    let twice = [kvs[0].clone(), kvs[0].clone()];
    let dup_key = build(3, 32, &twice, &[]);
    assert!(matches!(parse_err(&dup_key.buf), Error::GgufCorrupt(ref m) if m.contains("twice")));
    // Alignment that is not a power of two.
    let odd = build(3, 48, &kvs, &[]);
    assert!(matches!(parse_err(&odd.buf), Error::GgufCorrupt(ref m) if m.contains("alignment")));
    // Arrays nested deeper than any real file (would otherwise recurse).
    let mut deep = MetaArray::U8(vec![1]);
    for _ in 0..10 {
        deep = MetaArray::Array(vec![deep]);
    }
    let deep = build(3, 32, &[("deep", MetaValue::Array(deep))], &[]);
    assert!(matches!(parse_err(&deep.buf), Error::GgufCorrupt(ref m) if m.contains("deeper")));
}

#[test]
fn other_architectures_are_named() {
    let g = Gguf::parse(&build(3, 32, &[("general.architecture", MetaValue::Str("gpt2".into()))], &[]).buf)
        .unwrap();
    let err = require_llama(&g).unwrap_err();
    assert!(matches!(err, Error::GgufArchitecture(ref a) if a == "gpt2"));
    assert!(err.to_string().contains("gpt2"));
    let none = Gguf::parse(&build(3, 32, &[], &[]).buf).unwrap();
    assert!(matches!(require_llama(&none), Err(Error::GgufMissingKey(_))));
}

#[test]
fn missing_model_file_says_how_to_fetch_it() {
    let err = Gguf::open("/nonexistent/dir/model.gguf").unwrap_err();
    assert!(matches!(err, Error::ModelMissing { .. }), "{err:?}");
    assert!(err.to_string().contains("scripts/fetch-model.sh"), "{err}");
}

#[test]
fn dequantize_rejects_a_slice_of_the_wrong_size() {
    let g = Gguf::parse(&valid_file(3, 32).buf).unwrap();
    let info = g.tensor("q4_1").unwrap();
    let bytes = g.tensor_bytes(info).unwrap();
    assert!(wgqa::model::dequantize(info, &bytes[1..]).is_err());
    assert_eq!(info.ty, TensorType::Q4_1);
}

// ---------------------------------------------------------------------------
// Property test: mangled files give Ok or Err, never a panic, and never make
// the reader allocate much more than the file's size.

/// Parse, and when that succeeds read every tensor, checking the allocation
/// budget; a panic anywhere fails the property.
fn parse_and_read_all(bytes: &[u8]) -> Result<(), Error> {
    let (res, used) = allocated_by(|| Gguf::parse(bytes));
    assert!(used <= alloc_budget(bytes.len()), "parse of {} bytes allocated {used}", bytes.len());
    let g = res?;
    for info in g.tensors() {
        let data = g.tensor_bytes(info)?;
        assert_eq!(data.len() as u64, info.n_bytes);
        let values = wgqa::model::dequantize(info, data)?;
        assert_eq!(values.len() as u64, info.n_elements);
    }
    g.metadata().for_each(drop);
    Ok(())
}

fn base_files() -> [Writer; 2] {
    [valid_file(2, 32), valid_file(3, 64)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn truncated_files_are_errors(which in 0usize..2, cut in any::<prop::sample::Index>()) {
        let file = &base_files()[which].buf;
        let len = cut.index(file.len()); // strictly shorter than the file
        prop_assert!(parse_and_read_all(&file[..len]).is_err());
    }

    #[test]
    fn corrupted_bytes_never_panic(
        which in 0usize..2,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut file = base_files()[which].buf.clone();
        for (at, byte) in edits {
            let i = at.index(file.len());
            file[i] = byte;
        }
        let _ = parse_and_read_all(&file);
    }

    #[test]
    fn inflated_length_fields_never_panic(
        which in 0usize..2,
        field in any::<prop::sample::Index>(),
        huge in prop_oneof![Just(u64::MAX), Just(1u64 << 63), Just(1 << 40), Just(1 << 32), (1u64 << 32)..],
        small in 1u64..4096,
    ) {
        let w = &base_files()[which];
        let (pos, width) = w.fields[field.index(w.fields.len())];
        // A huge value cannot fit a file of a few KB: it must be an error.
        let mut file = w.buf.clone();
        if width == 8 {
            put_u64(&mut file, pos, huge);
        } else {
            file[pos..pos + 4].copy_from_slice(&(huge as u32 | 5).to_le_bytes());
        }
        prop_assert!(parse_and_read_all(&file).is_err(), "field at {pos} = {huge}");
        // A plausible value just above the real one only has to not panic.
        let mut file = w.buf.clone();
        if width == 8 {
            let old = u64::from_le_bytes(file[pos..pos + 8].try_into().unwrap());
            put_u64(&mut file, pos, old.saturating_add(small));
        } else {
            let old = u32::from_le_bytes(file[pos..pos + 4].try_into().unwrap());
            file[pos..pos + 4].copy_from_slice(&old.saturating_add(small as u32).to_le_bytes());
        }
        let _ = parse_and_read_all(&file);
    }
}

// ---------------------------------------------------------------------------
// The real default model, when scripts/fetch-model.sh has been run.

#[test]
fn real_smollm2_file_parses() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let found = std::fs::read_dir(&dir).ok().and_then(|entries| {
        let mut paths: Vec<_> = entries
            .filter_map(|e| Some(e.ok()?.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "gguf"))
            .collect();
        paths.sort();
        paths.into_iter().next()
    });
    let Some(path) = found else {
        eprintln!("skipped: no models/*.gguf (run scripts/fetch-model.sh)");
        return;
    };
    let g = Gguf::open(&path).unwrap();
    require_llama(&g).unwrap();
    assert_eq!(g.get_u32("llama.block_count").unwrap(), 30);
    assert_eq!(g.get_u32("llama.attention.head_count").unwrap(), 9);
    assert_eq!(g.get_u32("llama.attention.head_count_kv").unwrap(), 3);
    assert_eq!(g.get_u32("llama.embedding_length").unwrap(), 576);
    assert!(g.tensors().iter().all(|t| TensorType::ALL.contains(&t.ty)));
    // Every layer's tensors are there, and a norm weight reads as finite floats.
    for i in 0..30 {
        g.tensor(&format!("blk.{i}.attn_q.weight")).unwrap();
    }
    let norm = g.dequantize("blk.0.attn_norm.weight").unwrap();
    assert_eq!(norm.len(), 576);
    assert!(norm.iter().all(|v| v.is_finite()));
}
