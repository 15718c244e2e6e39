//! Property tests: the GPU kernels against `wgqa::reference` across shapes,
//! group sizes, ragged batches, page sizes, options and every dtype.

use proptest::prelude::*;
use wgqa::{AttentionConfig, DType, RopeLayout, SplitPolicy};
use wgqa_testkit::*;

/// Elements of K and V a case may hold, to keep lavapipe runs short.
const KV_BUDGET: usize = 6_000_000;

fn head_dim() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(32u32),
        Just(64),
        Just(80),
        Just(96),
        Just(128),
        Just(256),
        (8u32..=64).prop_map(|x| x * 4)
    ]
}

/// q_heads 1..=32 with kv_heads dividing it: group sizes 1..=q_heads.
fn heads() -> impl Strategy<Value = (u32, u32)> {
    (1u32..=32).prop_flat_map(|q| {
        let divisors: Vec<u32> = (1..=q).filter(|k| q % k == 0).collect();
        (Just(q), proptest::sample::select(divisors))
    })
}

fn base_config() -> impl Strategy<Value = AttentionConfig> {
    let dtype = proptest::sample::select(&DType::ALL[..]);
    (heads(), head_dim(), prop::option::of(head_dim()), dtype).prop_map(|((q, kv), d, dv, dtype)| {
        AttentionConfig::new(q, kv, d).unwrap().with_v_head_dim(dv.unwrap_or(d)).with_dtype(dtype)
    })
}

/// Ragged lengths up to ~5000, scaled down to the budget.
fn lens(cfg: &AttentionConfig, raw: Vec<usize>) -> Vec<usize> {
    let per_token = (cfg.kv_heads * (cfg.head_dim + cfg.v_head_dim)) as usize;
    let total: usize = raw.iter().sum();
    let most = KV_BUDGET / per_token;
    raw.iter().map(|&l| if total > most { (l * most / total).max(1) } else { l }).collect()
}

fn page_size() -> impl Strategy<Value = u32> {
    prop_oneof![Just(1u32), Just(5), Just(16), Just(64), Just(256)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(gpu_cases(16)))]

    /// Multi-token decode at the end of long ragged sequences.
    #[test]
    fn decode_matches_reference(
        cfg in base_config(),
        raw in prop::collection::vec(1usize..=5000, 1..=4),
        queries in 1usize..=4,
        page in page_size(),
        variant in 0..VARIANTS.len(),
        seed in 0u64..1000,
    ) {
        let lens = lens(&cfg, raw);
        let case = format!("{cfg:?} lens {lens:?} queries {queries} page {page} {}", VARIANTS[variant]);
        let run = Run::new(cfg, lens).last(queries).with(|r| {
            r.page_size = page;
            r.seed = seed;
            r.ctx = variant_ctx(variant);
        });
        check(&case, &run);
    }

    /// Every option, with RoPE, causal and cross-attention.
    #[test]
    fn options_match_reference(
        cfg in base_config(),
        raw in prop::collection::vec(1usize..=2000, 1..=3),
        queries in 1usize..=40,
        causal in any::<bool>(),
        window in prop::option::of(1u32..400),
        softcap in prop::option::of(1.0f32..50.0),
        sinks in any::<bool>(),
        scale in prop::option::of(0.01f32..1.0),
        rope in prop::option::of((any::<bool>(), 1.0e4f32..1.0e6)),
        page in page_size(),
        variant in 0..VARIANTS.len(),
        seed in 0u64..1000,
    ) {
        let mut cfg = cfg.with_causal(causal);
        cfg.window = window;
        cfg.softcap = softcap;
        cfg.scale = scale;
        if sinks {
            cfg.sinks = Some(random(seed + 7, cfg.q_heads as usize).iter().map(|x| x * 4.0).collect());
        }
        let rope = rope
            .filter(|_| cfg.head_dim % 8 == 0)
            .map(|(adjacent, base)| (if adjacent { RopeLayout::Adjacent } else { RopeLayout::HalfSplit }, base));
        let lens = lens(&cfg, raw);
        let case = format!("{cfg:?} lens {lens:?} queries {queries} rope {rope:?} page {page} {}", VARIANTS[variant]);
        let run = Run::new(cfg, lens).last(queries).with(|r| {
            r.page_size = page;
            r.rope = rope;
            r.seed = seed;
            r.ctx = variant_ctx(variant);
        });
        check(&case, &run);
    }

    /// Causal prefill of every token, in random chunks, against the reference.
    #[test]
    fn chunked_prefill_matches_reference(
        cfg in base_config(),
        lens in prop::collection::vec(1usize..=160, 1..=3),
        chunk in 1usize..=160,
        splits in 1u32..=4,
        page in page_size(),
        variant in 0..VARIANTS.len(),
        seed in 0u64..1000,
    ) {
        let case = format!("{cfg:?} lens {lens:?} chunk {chunk} splits {splits} page {page} {}", VARIANTS[variant]);
        let run = Run::new(cfg, lens).chunked(chunk).with(|r| {
            r.page_size = page;
            r.splits = SplitPolicy::Fixed(splits);
            r.seed = seed;
            r.ctx = variant_ctx(variant);
        });
        check(&case, &run);
    }
}
