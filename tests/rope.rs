//! The RoPE kernel on queries matches the reference for both layouts, at
//! positions up to ~5000 and batches of sequences at different offsets.

use wgqa::reference::tolerance;
use wgqa::{reference, AttentionConfig, Error, KvCache, KvCacheConfig, Plan, Rope, RopeLayout, RopeScaling};
use wgqa_testkit::*;

#[test]
fn rope_kernel_matches_reference() {
    let ctx = ctx();
    let (heads, d) = (3usize, 64usize);
    let cfg = AttentionConfig::new(3, 1, 64).unwrap();
    for layout in [RopeLayout::Adjacent, RopeLayout::HalfSplit] {
        let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg.clone(), 1, 64, 8192)).unwrap();
        let (a, b) = (cache.add_sequence(), cache.add_sequence());
        let mut plan = Plan::new(ctx);
        cache.plan_append(&mut plan, &[(a, 4990), (b, 7)]).unwrap();
        cache.plan_append(&mut plan, &[(a, 5), (b, 3)]).unwrap();
        let x = random(9, 8 * heads * d);
        let buf = ctx.upload("q", &x);
        let rope = Rope::new(ctx, layout, 1e5, 64).unwrap();
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        rope.apply(&mut enc, &cache, &plan, 0, &buf).unwrap();
        ctx.queue().submit([enc.finish()]);
        let got = pollster::block_on(ctx.read_f32(&buf)).unwrap();
        let mut want = x.clone();
        reference::rope(layout, 1e5, &mut want, heads, d, &[4990, 4991, 4992, 4993, 4994, 7, 8, 9]);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= tolerance::ROPE.bound(w.abs()),
                "{layout:?} index {i}: gpu {g} vs reference {w}"
            );
        }
    }
}

/// RoPE on queries takes the head count and head dim from the layer, so a
/// buffer sized for the KV heads, a RoPE of another head dim or a layer the
/// cache lacks is an error, not a partly rotated buffer.
#[test]
fn rope_takes_its_shape_from_the_layer() {
    let ctx = ctx();
    let cfg = AttentionConfig::new(8, 2, 64).unwrap();
    let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg, 1, 16, 64)).unwrap();
    let seq = cache.add_sequence();
    let mut plan = Plan::new(ctx);
    cache.plan_append(&mut plan, &[(seq, 3)]).unwrap();
    let rope = Rope::new(ctx, RopeLayout::Adjacent, 1e4, 64).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let kv_sized = ctx.storage_buffer("q", 3 * 2 * 64 * 4);
    let err = rope.apply(&mut enc, &cache, &plan, 0, &kv_sized).unwrap_err();
    assert!(matches!(err, Error::WrongLength { .. }), "{err}");
    let q = ctx.storage_buffer("q", 3 * 8 * 64 * 4);
    rope.apply(&mut enc, &cache, &plan, 0, &q).unwrap();
    let other = Rope::new(ctx, RopeLayout::Adjacent, 1e4, 32).unwrap();
    assert!(matches!(other.apply(&mut enc, &cache, &plan, 0, &q), Err(Error::InvalidRope { .. })));
    assert!(matches!(rope.apply(&mut enc, &cache, &plan, 1, &q), Err(Error::LayerOutOfRange { .. })));
}

/// Linear position scaling and per-pair frequency factors (Llama 3.x's
/// `rope_freqs`) on the GPU match the reference, and change the rotation.
#[test]
fn scaled_rope_matches_reference() {
    let ctx = ctx();
    let (heads, d) = (2usize, 32usize);
    let cfg = AttentionConfig::new(2, 1, 32).unwrap();
    let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg, 1, 64, 4096)).unwrap();
    let seq = cache.add_sequence();
    let mut plan = Plan::new(ctx);
    cache.plan_append(&mut plan, &[(seq, 3000)]).unwrap();
    cache.plan_append(&mut plan, &[(seq, 4)]).unwrap();
    let factors: Vec<f32> = (0..d / 2).map(|i| 1.0 + i as f32 * 0.5).collect();
    let scaling = RopeScaling { linear: 4.0, factors: Some(factors) };
    let x = random(11, 4 * heads * d);
    let positions = [3000, 3001, 3002, 3003];
    for layout in [RopeLayout::Adjacent, RopeLayout::HalfSplit] {
        let buf = ctx.upload("q", &x);
        let rope = Rope::with_scaling(ctx, layout, 5e5, 32, &scaling).unwrap();
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        rope.apply(&mut enc, &cache, &plan, 0, &buf).unwrap();
        ctx.queue().submit([enc.finish()]);
        let got = pollster::block_on(ctx.read_f32(&buf)).unwrap();
        let mut want = x.clone();
        reference::rope_scaled(layout, 5e5, &scaling, &mut want, heads, d, &positions);
        let mut unscaled = x.clone();
        reference::rope(layout, 5e5, &mut unscaled, heads, d, &positions);
        let moved = want.iter().zip(&unscaled).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(moved > 0.1, "{layout:?}: scaling changed nothing ({moved})");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - w).abs() <= tolerance::ROPE.bound(w.abs()),
                "{layout:?} index {i}: gpu {g} vs reference {w}"
            );
        }
    }
    let bad = RopeScaling { linear: 1.0, factors: Some(vec![1.0; 3]) };
    assert!(matches!(
        Rope::with_scaling(ctx, RopeLayout::Adjacent, 1e4, 32, &bad),
        Err(Error::InvalidRope { .. })
    ));
    let bad = RopeScaling { linear: 0.0, factors: None };
    assert!(matches!(
        Rope::with_scaling(ctx, RopeLayout::Adjacent, 1e4, 32, &bad),
        Err(Error::InvalidRope { .. })
    ));
}
