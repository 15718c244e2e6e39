use wgqa::{AttentionConfig, DType, SplitPolicy};
use wgqa_testkit::*;

#[test]
fn smoke_gqa_prefill_and_decode() {
    let cfg = AttentionConfig::new(8, 2, 64).unwrap();
    check("prefill", &Run::new(cfg.clone(), vec![37, 100]));
    check("decode", &Run::new(cfg.clone(), vec![20, 9]).decode_after(5));
    check("last", &Run::new(cfg.clone(), vec![300, 9]).last(3));
    check("f16", &Run::new(cfg.clone().with_dtype(DType::F16), vec![70]));
    check("int8", &Run::new(cfg.with_dtype(DType::Int8), vec![70]).decode_after(60));
}

/// Regressions for adapters whose shader loops stop after a fixed number of
/// trips (llvmpipe: 65535 over all loops of an invocation): a workgroup that
/// walked too many keys silently dropped the rest. Found by proptest on CI.
#[test]
fn wide_groups_over_long_rows() {
    let cfg = AttentionConfig::new(31, 1, 188).unwrap().with_causal(false);
    let run = Run::new(cfg.clone(), vec![1980, 748, 1600]).last(33).with(|r| {
        r.page_size = 5;
        r.seed = 887;
    });
    check("31 heads over 1980 keys", &run);
    // A single split asked for, over 8000 keys: the plan splits further.
    let one =
        Run::new(cfg.with_dtype(DType::F16), vec![8000]).last(1).with(|r| r.splits = SplitPolicy::Fixed(1));
    check("one split over 8000 keys", &one);
    let narrow = AttentionConfig::new(8, 1, 188).unwrap();
    check("8 heads over 8000 keys", &Run::new(narrow, vec![8000]).last(2).with(|r| r.ctx = ctx_fallback()));
}
