//! The masking contract: a key a query cannot see (causal future, outside
//! the window, another sequence of the batch) contributes exactly nothing,
//! even when its K or V holds NaN or inf. Rows that cannot see a poisoned
//! key are bit-identical to a run without it, and finite.

use proptest::prelude::*;
use wgqa::{AttentionConfig, DType, SplitPolicy};
use wgqa_testkit::*;

fn config() -> impl Strategy<Value = AttentionConfig> {
    let heads = (1u32..=8).prop_flat_map(|q| {
        let divisors: Vec<u32> = (1..=q).filter(|k| q % k == 0).collect();
        (Just(q), proptest::sample::select(divisors))
    });
    let dtype = proptest::sample::select(&DType::ALL[..]);
    (heads, (1u32..=24).prop_map(|d| d * 4), dtype, any::<bool>(), prop::option::of(1u32..40)).prop_map(
        |((q, kv), d, dtype, causal, window)| {
            let mut cfg = AttentionConfig::new(q, kv, d).unwrap().with_dtype(dtype).with_causal(causal);
            cfg.window = window;
            cfg
        },
    )
}

/// Outputs of the rows that cannot see any poisoned key, per sequence.
fn blind_rows(run: &Run, outs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let row = (run.cfg.q_heads * run.cfg.v_head_dim) as usize;
    (run.queried().iter().enumerate())
        .map(|(s, positions)| {
            let blind = |&(_, &q): &(usize, &u32)| {
                !run.poison.iter().any(|p| p.seq == s && run.cfg.visible(q, p.pos as u32))
            };
            let rows = positions.iter().enumerate().filter(blind);
            rows.flat_map(|(i, _)| outs[s][i * row..(i + 1) * row].to_vec()).collect()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(gpu_cases(24)))]

    #[test]
    fn masked_non_finite_keys_contribute_nothing(
        cfg in config(),
        lens in prop::collection::vec(1usize..=90, 1..=3),
        feed in 0usize..3,
        chunk in 1usize..=40,
        splits in 1u32..=4,
        poison in prop::collection::vec((0usize..3, 0usize..90, any::<bool>(), 0usize..3), 1..=3),
        variant in 0..VARIANTS.len(),
        seed in 0u64..1000,
    ) {
        let values = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
        let poison: Vec<Poison> = poison
            .into_iter()
            .map(|(seq, pos, in_k, v)| {
                let seq = seq % lens.len();
                Poison { seq, pos: pos % lens[seq], in_k, value: values[v] }
            })
            .collect();
        // Cross-attention attends once from the end (its keys are then the
        // whole sequence, as in the reference); causal runs vary the feeding.
        let base = Run::new(cfg.clone(), lens.clone());
        let base = match (cfg.causal, feed) {
            (false, _) | (true, 0) => base.last(chunk.min(8)),
            (true, 1) => base.chunked(chunk),
            _ => base,
        };
        let clean = base.with(|r| {
            r.seed = seed;
            r.splits = SplitPolicy::Fixed(splits);
            r.ctx = variant_ctx(variant);
        });
        let poisoned = Run { poison: poison.clone(), ..clean.clone() };
        let case = format!(
            "{cfg:?} lens {lens:?} steps {:?} splits {splits} poison {poison:?} {}",
            clean.steps,
            VARIANTS[variant]
        );
        let want = blind_rows(&poisoned, &clean.gpu().unwrap());
        let got = blind_rows(&poisoned, &poisoned.gpu().unwrap());
        for (s, (g, w)) in got.iter().zip(&want).enumerate() {
            prop_assert!(g.iter().all(|x| x.is_finite()), "{case}: sequence {s} has a non-finite output");
            let same = g.iter().zip(w).all(|(a, b)| a.to_bits() == b.to_bits());
            prop_assert!(same, "{case}: sequence {s} changed");
        }
    }
}

/// The reproduction of the report: one sequence of 8 tokens prefilled
/// causally, NaN (or inf) in V of token 5; tokens 0..4 must stay finite and
/// match the reference. With a window of 4, NaN in token 1 stays out of
/// tokens 5..7.
#[test]
fn reported_cases() {
    for value in [f32::NAN, f32::INFINITY] {
        let causal = Run::new(AttentionConfig::new(4, 2, 32).unwrap(), vec![8])
            .with(|r| r.poison = vec![Poison { seq: 0, pos: 5, in_k: false, value }]);
        let windowed = Run::new(AttentionConfig::new(4, 2, 32).unwrap().with_window(4), vec![8])
            .with(|r| r.poison = vec![Poison { seq: 0, pos: 1, in_k: false, value }]);
        for (name, run, blind) in [("causal", causal, 0..5), ("window", windowed, 5..8)] {
            let row = 4 * 32;
            let got = &run.gpu().unwrap()[0][blind.start * row..blind.end * row];
            let want = &run.reference()[0][blind.start * row..blind.end * row];
            assert_close(&format!("{name} {value}"), DType::F32, &[got.to_vec()], &[want.to_vec()]);
        }
    }
}
