//! Splitting the keys or the queries differently changes results only within
//! rounding: split-K 1 vs many, page size 16 vs 64, prefill in one chunk vs
//! many vs token-by-token decode, and the fallback paths vs the fast paths.

use wgqa::{AttentionConfig, DType, RopeLayout, SplitPolicy};
use wgqa_testkit::*;

fn gpu(case: &str, run: &Run) -> Vec<Vec<f32>> {
    run.gpu().unwrap_or_else(|e| panic!("{case}: {e}"))
}

fn configs() -> Vec<AttentionConfig> {
    vec![
        AttentionConfig::new(9, 3, 64).unwrap(),
        AttentionConfig::new(8, 8, 80).unwrap().with_dtype(DType::F16),
        AttentionConfig::new(6, 2, 48).unwrap().with_dtype(DType::Int8),
        AttentionConfig::new(16, 1, 96).unwrap().with_v_head_dim(32).with_softcap(20.0),
    ]
}

#[test]
fn split_k_one_vs_many() {
    for cfg in configs() {
        let run = |splits| Run::new(cfg.clone(), vec![3000, 1200]).last(2).with(|r| r.splits = splits);
        let one = gpu("1 split", &run(SplitPolicy::Fixed(1)));
        assert_eq!(one.len(), 2);
        for n in [2, 7, 32] {
            assert_close(
                &format!("{cfg:?}: {n} splits vs 1"),
                cfg.dtype,
                &gpu("n splits", &run(SplitPolicy::Fixed(n))),
                &one,
            );
        }
        let auto = gpu("auto", &run(SplitPolicy::default()));
        assert_close(&format!("{cfg:?}: auto vs 1"), cfg.dtype, &auto, &one);
    }
}

#[test]
fn page_size_16_vs_64() {
    for cfg in configs() {
        let run = |page| Run::new(cfg.clone(), vec![700, 33, 1]).last(3).with(|r| r.page_size = page);
        let a = gpu("page 16", &run(16));
        assert_close(&format!("{cfg:?}: page 64 vs 16"), cfg.dtype, &gpu("page 64", &run(64)), &a);
    }
}

#[test]
fn prefill_one_chunk_vs_chunks_vs_token_by_token() {
    for cfg in configs() {
        let base =
            Run::new(cfg.clone(), vec![150, 61]).with(|r| r.rope = Some((RopeLayout::HalfSplit, 10000.0)));
        let whole = gpu("one chunk", &base);
        let rerun =
            |chunk| Run::new(cfg.clone(), base.lens.clone()).with(|r| r.rope = base.rope).chunked(chunk);
        let chunked = gpu("chunks of 17", &rerun(17));
        let decoded = gpu("token by token", &rerun(1));
        assert_close(&format!("{cfg:?}: chunks vs one"), cfg.dtype, &chunked, &whole);
        assert_close(&format!("{cfg:?}: decode vs one"), cfg.dtype, &decoded, &whole);
    }
}

#[test]
fn fallback_paths_match_fast_paths() {
    // Without subgroups and shader-f16 (packed f16), and every adapter
    // class's tiling, against the adapter's own variant.
    for cfg in configs() {
        let run = || Run::new(cfg.clone(), vec![500, 90]).last(5);
        let fast = gpu("fast", &run());
        for (i, name) in VARIANTS.iter().enumerate().skip(1) {
            let other = gpu(name, &run().with(|r| r.ctx = variant_ctx(i)));
            assert_close(&format!("{cfg:?}: {name} vs native"), cfg.dtype, &other, &fast);
        }
    }
}
