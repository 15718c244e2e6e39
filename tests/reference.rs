//! The two CPU references agree: the GQA reference and repeat-KV + MHA.

use proptest::prelude::*;
use wgqa::{reference, AttentionConfig, RopeLayout};

proptest! {
    #[test]
    fn gqa_reference_equals_repeat_kv_mha(
        (q_heads, kv_heads) in (1u32..=16).prop_flat_map(|q| (Just(q), proptest::sample::select((1..=q).filter(|k| q % k == 0).collect::<Vec<_>>()))),
        d in (1u32..=16).prop_map(|x| x * 4),
        dv in (1u32..=16).prop_map(|x| x * 4),
        len in 1usize..40,
        causal in any::<bool>(),
        window in prop::option::of(1u32..20),
        softcap in prop::option::of(0.5f32..30.0),
        sinks in any::<bool>(),
        values in prop::collection::vec(-1.0f32..1.0, 64),
    ) {
        let mut cfg = AttentionConfig::new(q_heads, kv_heads, d).unwrap().with_v_head_dim(dv).with_causal(causal);
        cfg.window = window;
        cfg.softcap = softcap;
        if sinks {
            cfg.sinks = Some((0..q_heads as usize).map(|h| values[h % 64] * 3.0).collect());
        }
        let fill = |n: usize, salt: usize| (0..n).map(|i| values[(i * 7 + salt) % 64] * ((i % 5) as f32 - 2.0)).collect::<Vec<f32>>();
        let (hq, hkv) = (q_heads as usize, kv_heads as usize);
        let q = fill(len * hq * d as usize, 1);
        let k = fill(len * hkv * d as usize, 2);
        let v = fill(len * hkv * dv as usize, 3);
        let pos: Vec<u32> = (0..len as u32).collect();
        let a = reference::attention(&cfg, &q, &pos, &k, &v);
        let b = reference::attention_repeat_kv(&cfg, &q, &pos, &k, &v);
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            prop_assert!((x - y).abs() <= 1e-6, "index {}: {} vs {}", i, x, y);
        }
    }
}

#[test]
fn rope_layouts_rotate_the_right_pairs() {
    // One head of dim 8 at position 1 with base 10000: pair 0 turns by 1 rad.
    let mut x = vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    reference::rope(RopeLayout::Adjacent, 1e4, &mut x, 1, 8, &[1]);
    assert!((x[0] - 1f32.cos()).abs() < 1e-6 && (x[1] - 1f32.sin()).abs() < 1e-6);
    let mut y = vec![1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    reference::rope(RopeLayout::HalfSplit, 1e4, &mut y, 1, 8, &[1]);
    assert!((y[0] - 1f32.cos()).abs() < 1e-6 && (y[4] - 1f32.sin()).abs() < 1e-6 && y[1] == 0.0);
}
