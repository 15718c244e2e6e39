//! The sampler: greedy and its limits, top-k/top-p sets, seeded draws
//! matching the softmax, bad inputs as errors; and the stop conditions.

use wgqa::model::{argmax, find_stop, partial_stop_len, Sampler, SamplerConfig, StopConditions, StopReason};
use wgqa::Error;

fn sampler(temperature: f32, top_k: usize, top_p: f32, seed: u64) -> Sampler {
    Sampler::new(SamplerConfig { temperature, top_k, top_p, seed }).unwrap()
}

/// Deterministic, irregular logits in [-4, 4).
fn logits(n: usize, salt: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_add(salt).wrapping_mul(2_654_435_761) >> 8) % 8000) as f32 / 1000.0 - 4.0)
        .collect()
}

fn softmax(logits: &[f32], temperature: f64) -> Vec<f64> {
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &l| m.max(l as f64));
    let e: Vec<f64> = logits.iter().map(|&l| ((l as f64 - max) / temperature).exp()).collect();
    let sum: f64 = e.iter().sum();
    e.iter().map(|x| x / sum).collect()
}

#[test]
fn greedy_is_argmax_with_ties_to_the_lowest_id() {
    let mut greedy = Sampler::new(SamplerConfig::greedy()).unwrap();
    for salt in 0..20 {
        let l = logits(1000, salt);
        let best = (0..l.len()).fold(0, |b, i| if l[i] > l[b] { i } else { b }) as u32;
        assert_eq!(greedy.sample(&l).unwrap(), best);
        assert_eq!(argmax(&l).unwrap(), best);
    }
    assert_eq!(greedy.sample(&[1.0, 3.0, f32::NEG_INFINITY, 3.0]).unwrap(), 1);
}

#[test]
fn top_k_one_and_tiny_temperature_are_greedy() {
    for seed in 0..20 {
        let l = logits(500, seed as u32);
        let best = argmax(&l).unwrap();
        assert_eq!(sampler(1.0, 1, 1.0, seed).sample(&l).unwrap(), best, "top_k = 1, seed {seed}");
        assert_eq!(sampler(1.5, 1, 0.3, seed).sample(&l).unwrap(), best, "top_k = 1 with top_p, seed {seed}");
    }
    // Logits 1 apart: at T = 0.01 the runner-up has probability e^-100.
    let l = [0.0, 2.0, 1.0, -3.0];
    let mut cold = sampler(0.01, 0, 1.0, 7);
    assert!((0..1000).all(|_| cold.sample(&l).unwrap() == 1));
    let dist = cold.distribution(&l).unwrap();
    assert_eq!(dist[0].0, 1);
    assert!(dist[0].1 > 1.0 - 1e-12, "{dist:?}");
}

#[test]
fn top_k_keeps_the_k_highest_and_zero_turns_it_off() {
    let l = [0.5, 3.0, -1.0, 2.0, 2.5, f32::NEG_INFINITY];
    let ids = |s: &Sampler| s.distribution(&l).unwrap().iter().map(|&(t, _)| t).collect::<Vec<_>>();
    assert_eq!(ids(&sampler(1.0, 3, 1.0, 0)), [1, 4, 3]);
    // Off: every token but the masked one, most likely first.
    assert_eq!(ids(&sampler(1.0, 0, 1.0, 0)), [1, 4, 3, 0, 2]);
    assert_eq!(ids(&sampler(1.0, 100, 1.0, 0)), [1, 4, 3, 0, 2]);
}

#[test]
fn top_p_keeps_the_smallest_set_reaching_p() {
    // Probabilities 0.5, 0.3, 0.15, 0.05, given in shuffled order.
    let l = [0.15f32.ln(), 0.5f32.ln(), 0.05f32.ln(), 0.3f32.ln()];
    let kept = |p: f32| {
        let dist = sampler(1.0, 0, p, 0).distribution(&l).unwrap();
        let total: f64 = dist.iter().map(|&(_, q)| q).sum();
        assert!((total - 1.0).abs() < 1e-12, "renormalised: {dist:?}");
        dist
    };
    assert_eq!(kept(0.3).iter().map(|d| d.0).collect::<Vec<_>>(), [1], "0.5 alone reaches 0.3");
    assert_eq!(kept(0.5).iter().map(|d| d.0).collect::<Vec<_>>(), [1], "0.5 reaches 0.5 exactly");
    assert_eq!(kept(0.8).iter().map(|d| d.0).collect::<Vec<_>>(), [1, 3], "0.5 + 0.3 reaches 0.8");
    assert_eq!(kept(0.81).iter().map(|d| d.0).collect::<Vec<_>>(), [1, 3, 0]);
    assert_eq!(kept(1.0).len(), 4);
    let two = kept(0.8);
    assert!((two[0].1 - 0.625).abs() < 1e-6 && (two[1].1 - 0.375).abs() < 1e-6, "{two:?}");
}

#[test]
fn draws_follow_the_softmax() {
    let l = [1.0, 0.2, -0.5, 2.0, 0.0, -3.0];
    let draws = 200_000;
    for (temperature, top_k, top_p) in [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.3, 4, 0.9)] {
        let mut s = sampler(temperature, top_k, top_p, 42);
        let mut counts = [0usize; 6];
        for _ in 0..draws {
            counts[s.sample(&l).unwrap() as usize] += 1;
        }
        let mut expected = [0.0; 6];
        if top_k == 0 && top_p == 1.0 {
            expected.copy_from_slice(&softmax(&l, temperature as f64));
        } else {
            s.distribution(&l).unwrap().iter().for_each(|&(t, p)| expected[t as usize] = p);
        }
        for (t, (&c, &p)) in counts.iter().zip(&expected).enumerate() {
            let freq = c as f64 / draws as f64;
            // Five standard deviations of a binomial frequency, and at least 1e-3.
            let tol = (5.0 * (p * (1.0 - p) / draws as f64).sqrt()).max(1e-3);
            assert!((freq - p).abs() < tol, "T={temperature} k={top_k} p={top_p}: token {t} {freq} vs {p}");
        }
    }
}

#[test]
fn the_same_seed_repeats_the_same_tokens() {
    let l = logits(300, 5);
    let run = |seed| {
        let mut s = sampler(0.9, 50, 0.95, seed);
        (0..200).map(|_| s.sample(&l).unwrap()).collect::<Vec<_>>()
    };
    assert_eq!(run(1234), run(1234));
    assert_ne!(run(1234), run(1235));
}

#[test]
fn bad_logits_and_parameters_are_errors() {
    let mut s = sampler(1.0, 0, 1.0, 0);
    let err = |r: Result<u32, Error>| r.expect_err("should be rejected").to_string();
    assert!(err(s.sample(&[0.0, f32::NAN])).contains("logit 1 is NaN"));
    assert!(err(s.sample(&[f32::INFINITY, 0.0])).contains("logit 0 is inf"));
    assert!(err(s.sample(&[])).contains("the logits are empty"));
    assert!(err(s.sample(&[f32::NEG_INFINITY; 3])).contains("every logit is -inf"));
    // Masked tokens are never drawn.
    let masked = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0];
    assert!((0..500).all(|_| s.sample(&masked).unwrap() % 2 == 1));
    assert!(err(Sampler::new(SamplerConfig::greedy()).unwrap().sample(&[f32::NAN])).contains("NaN"));

    let cases = [
        (-0.5, 1.0, "temperature must be finite and >= 0 (0 is greedy), got -0.5"),
        (f32::NAN, 1.0, "temperature must be finite"),
        (f32::INFINITY, 1.0, "temperature must be finite"),
        (1.0, 0.0, "top_p must be in (0, 1] (1 turns it off), got 0"),
        (1.0, 1.5, "top_p must be in (0, 1]"),
        (1.0, f32::NAN, "top_p must be in (0, 1]"),
    ];
    for (temperature, top_p, msg) in cases {
        let cfg = SamplerConfig { temperature, top_k: 0, top_p, seed: 0 };
        let e = Sampler::new(cfg).expect_err("invalid").to_string();
        assert!(e.contains(msg), "{e:?} should contain {msg:?}");
    }
}

#[test]
fn stop_conditions_in_priority_order() {
    let stops =
        StopConditions { eos: vec![2], max_tokens: Some(3), stop_strings: vec!["\n\n".into(), "END".into()] };
    assert_eq!(stops.check(7, 1, "Hello"), None);
    assert_eq!(stops.check(2, 1, "Hello"), Some(StopReason::Eos(2)));
    assert_eq!(stops.check(7, 2, "Hi\n\nthere"), Some(StopReason::StopString { index: 0, at: 2 }));
    assert_eq!(stops.check(7, 3, "Hello there"), Some(StopReason::MaxTokens));
    assert_eq!(StopConditions::default().check(0, 1_000_000, "END"), None, "nothing set, nothing stops");
}

#[test]
fn stop_strings_found_and_held_back() {
    let stops = vec!["<|im_end|>".to_string(), "Bob:".to_string(), String::new()];
    assert_eq!(find_stop("Hi Bob: yes<|im_end|>", &stops), Some((1, 3)), "earliest occurrence wins");
    assert_eq!(find_stop("Hi<|im_end|> Bob:", &stops), Some((0, 2)));
    assert_eq!(find_stop("nothing here", &stops), None, "an empty stop string never matches");
    assert_eq!(partial_stop_len("answer <|im_", &stops), 5);
    assert_eq!(partial_stop_len("ask Bo", &stops), 2);
    assert_eq!(partial_stop_len("done.", &stops), 0);
    // Prefixes are cut on char boundaries: "é" is two bytes.
    let accented = vec!["éa".to_string()];
    assert_eq!(partial_stop_len("café", &accented), 2);
    assert_eq!(find_stop("caféa", &accented), Some((0, 3)));
}
