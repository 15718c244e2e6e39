//! The RoPE kernel on queries matches the reference for both layouts, at
//! positions up to ~5000 and batches of sequences at different offsets.

use wgqa::{reference, AttentionConfig, KvCache, KvCacheConfig, Plan, Rope, RopeLayout};
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
        rope.apply(&mut enc, &plan, &buf, heads as u32).unwrap();
        ctx.queue().submit([enc.finish()]);
        let got = pollster::block_on(ctx.read_f32(&buf)).unwrap();
        let mut want = x.clone();
        reference::rope(layout, 1e5, &mut want, heads, d, &[4990, 4991, 4992, 4993, 4994, 7, 8, 9]);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 2e-5, "{layout:?} index {i}: gpu {g} vs reference {w}");
        }
    }
}
