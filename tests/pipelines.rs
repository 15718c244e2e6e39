//! The decode loop builds everything once: after the first step, no
//! pipeline is created however long the context grows.

use wgqa::{AttentionConfig, KvCache, KvCacheConfig, Plan, Rope, RopeLayout};
use wgqa_testkit::*;

#[test]
fn decoding_100_steps_creates_no_pipeline_after_the_first() {
    let ctx = ctx();
    let cfg = AttentionConfig::new(9, 3, 64).unwrap();
    let layers = 2;
    let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg.clone(), layers, 16, 256)).unwrap();
    let rope = Rope::new(ctx, RopeLayout::Adjacent, 1e5, 64).unwrap();
    let seqs = [cache.add_sequence(), cache.add_sequence()];
    let q = ctx.upload("q", &random(1, 2 * 9 * 64));
    let kv = ctx.upload("kv", &random(2, 2 * 3 * 64));
    let out = ctx.storage_buffer("out", 2 * 9 * 64 * 4);
    let mut plan = Plan::new(ctx);
    let mut after_first = 0;
    for step in 0..100 {
        cache.plan_append(&mut plan, &[(seqs[0], 1), (seqs[1], 1)]).unwrap();
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        for layer in 0..layers {
            cache.append(&mut enc, &plan, layer, &kv, &kv, Some(&rope)).unwrap();
            rope.apply(&mut enc, &cache, &plan, layer, &q).unwrap();
            wgqa::attend(&mut enc, &cache, &plan, layer, &q, &out).unwrap();
        }
        ctx.queue().submit([enc.finish()]);
        if step == 0 {
            after_first = ctx.pipelines_created();
        }
    }
    let o = pollster::block_on(ctx.read_f32(&out)).unwrap();
    assert!(o.iter().all(|x| x.is_finite()));
    assert!(after_first > 0);
    assert_eq!(ctx.pipelines_created(), after_first, "steps 2..100 created pipelines");
}
