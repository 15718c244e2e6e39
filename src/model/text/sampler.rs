//! Picking the next token from logits (greedy, temperature, top-k, top-p,
//! with a seeded generator so a run can be repeated), and deciding when
//! generation stops (EOS, a token budget, stop strings).

use std::cmp::Ordering;

use crate::error::{Error, Result};

/// How to pick the next token. Filters apply in the usual order: top-k on
/// the logits, then temperature, then top-p on the resulting probabilities.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature, finite and `>= 0`. `0` is greedy (argmax).
    pub temperature: f32,
    /// Keep only the `top_k` highest logits. `0` turns the filter off (as in
    /// llama.cpp and Hugging Face), so `--top-k 0` means "no limit"; `1` is greedy.
    pub top_k: usize,
    /// Keep the smallest set of most likely tokens whose probability reaches
    /// `top_p`; in `(0, 1]`, and `1` turns the filter off.
    pub top_p: f32,
    /// Seed of the generator: the same seed, config and logits give the same tokens.
    pub seed: u64,
}

impl SamplerConfig {
    /// Always the most likely token (ties go to the lowest id).
    pub fn greedy() -> Self {
        SamplerConfig { temperature: 0.0, top_k: 0, top_p: 1.0, seed: 0 }
    }

    /// Checks every field, naming the first invalid one.
    pub fn validate(&self) -> Result<()> {
        let t = self.temperature;
        if !t.is_finite() || t < 0.0 {
            return Err(bad("temperature", "must be finite and >= 0 (0 is greedy)", t));
        }
        let p = self.top_p;
        if !(p > 0.0 && p <= 1.0) {
            return Err(bad("top_p", "must be in (0, 1] (1 turns it off)", p));
        }
        Ok(())
    }

    /// Whether every draw is the argmax (temperature 0 or top-k 1).
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0 || self.top_k == 1
    }
}

fn bad(param: &'static str, problem: &'static str, value: f32) -> Error {
    Error::InvalidSampler { param, problem, value: value as f64 }
}

/// Slack when top-p compares a running sum of probabilities with `top_p`,
/// so that a set whose probabilities add up to `top_p` on paper is not
/// missed by rounding (0.5 + 0.3 vs 0.8f32).
const TOP_P_SLACK: f64 = 1e-6;

/// A token sampler with its own seeded generator.
#[derive(Clone, Debug)]
pub struct Sampler {
    config: SamplerConfig,
    rng: Pcg32,
}

impl Sampler {
    /// A sampler; invalid parameters are an error naming the parameter.
    pub fn new(config: SamplerConfig) -> Result<Sampler> {
        config.validate()?;
        let rng = Pcg32::new(config.seed);
        Ok(Sampler { config, rng })
    }

    pub fn config(&self) -> &SamplerConfig {
        &self.config
    }

    /// The next token. Logits may be `-inf` (a masked token) but not NaN or
    /// `+inf`; at least one must be finite.
    pub fn sample(&mut self, logits: &[f32]) -> Result<u32> {
        let dist = self.distribution(logits)?;
        if dist.len() == 1 {
            return Ok(dist[0].0);
        }
        let u = self.rng.next_f64();
        let mut cum = 0.0;
        for &(token, p) in &dist {
            cum += p;
            if u < cum {
                return Ok(token);
            }
        }
        // Rounding left the sum a hair below 1 and u landed in that gap.
        Ok(dist[dist.len() - 1].0)
    }

    /// The distribution [`Sampler::sample`] draws from, after every filter:
    /// `(token, probability)` from most to least likely, summing to 1.
    pub fn distribution(&self, logits: &[f32]) -> Result<Vec<(u32, f64)>> {
        let best = argmax(logits)?;
        let cfg = &self.config;
        if cfg.is_greedy() {
            return Ok(vec![(best, 1.0)]);
        }
        // Highest logit first, ties by lowest id, so the order (and thus the
        // draw) never depends on the sort algorithm.
        let order = |a: &u32, b: &u32| logits[*b as usize].total_cmp(&logits[*a as usize]).then(a.cmp(b));
        let mut ids: Vec<u32> =
            (0..logits.len() as u32).filter(|&i| logits[i as usize] > f32::NEG_INFINITY).collect();
        if cfg.top_k > 0 && cfg.top_k < ids.len() {
            ids.select_nth_unstable_by(cfg.top_k - 1, order);
            ids.truncate(cfg.top_k);
        }
        ids.sort_unstable_by(order);

        let max = logits[best as usize] as f64;
        let t = cfg.temperature as f64;
        let mut dist: Vec<(u32, f64)> =
            ids.into_iter().map(|i| (i, ((logits[i as usize] as f64 - max) / t).exp())).collect();
        normalise(&mut dist);
        if cfg.top_p < 1.0 {
            let target = cfg.top_p as f64 - TOP_P_SLACK;
            let mut cum = 0.0;
            let keep = dist.iter().position(|&(_, p)| {
                cum += p;
                cum >= target
            });
            dist.truncate(keep.map_or(dist.len(), |k| k + 1));
            normalise(&mut dist);
        }
        Ok(dist)
    }
}

fn normalise(dist: &mut [(u32, f64)]) {
    let sum: f64 = dist.iter().map(|&(_, p)| p).sum();
    dist.iter_mut().for_each(|(_, p)| *p /= sum);
}

/// The id of the highest logit (the lowest id among equals), after checking
/// the logits: none NaN or `+inf`, at least one finite.
pub fn argmax(logits: &[f32]) -> Result<u32> {
    if logits.is_empty() {
        return Err(Error::NothingToSample("the logits are empty"));
    }
    if let Some((index, &value)) = logits.iter().enumerate().find(|(_, l)| l.is_nan() || **l == f32::INFINITY)
    {
        return Err(Error::NonFiniteLogit { index, value });
    }
    let (best, &value) = logits
        .iter()
        .enumerate()
        .reduce(|a, b| if b.1.partial_cmp(a.1) == Some(Ordering::Greater) { b } else { a })
        .expect("logits are not empty");
    if value == f32::NEG_INFINITY {
        return Err(Error::NothingToSample("every logit is -inf"));
    }
    Ok(best as u32)
}

/// PCG32 (XSH-RR variant, O'Neill 2014): a 64-bit LCG whose output is a
/// permuted 32-bit slice of the state. Small, fast and statistically sound
/// for sampling; spelled out here so reproducibility does not hinge on a
/// dependency's version.
#[derive(Clone, Debug)]
struct Pcg32 {
    state: u64,
    increment: u64,
}

impl Pcg32 {
    const MULTIPLIER: u64 = 6_364_136_223_846_793_005;
    /// Any odd increment selects a stream; this is the reference default.
    const INCREMENT: u64 = 1_442_695_040_888_963_407;

    fn new(seed: u64) -> Pcg32 {
        // The reference seeding: step once, mix in the seed, step again, so
        // that nearby seeds do not give nearby first outputs.
        let mut rng = Pcg32 { state: 0, increment: Pcg32::INCREMENT };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(seed);
        rng.next_u32();
        rng
    }

    fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(Pcg32::MULTIPLIER).wrapping_add(self.increment);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        xorshifted.rotate_right((old >> 59) as u32)
    }

    /// Uniform in `[0, 1)` with 53 random bits (all an f64 mantissa holds).
    fn next_f64(&mut self) -> f64 {
        let bits = ((self.next_u32() as u64) << 21) ^ (self.next_u32() as u64 >> 11);
        bits as f64 / (1u64 << 53) as f64
    }
}

/// When generation ends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StopConditions {
    /// Tokens that end generation (the model's EOS, `<|im_end|>` in chat).
    pub eos: Vec<u32>,
    /// Most tokens to generate; `None` for no limit (the context still is one).
    pub max_tokens: Option<usize>,
    /// Strings that end generation when they appear in the decoded output.
    pub stop_strings: Vec<String>,
}

/// Why generation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The model produced this EOS token (it should not be printed).
    Eos(u32),
    /// `max_tokens` tokens were generated.
    MaxTokens,
    /// Stop string `index` starts at byte `at` of the text: print only `text[..at]`.
    StopString { index: usize, at: usize },
    /// The caller asked to stop ([`super::Generator::generate_until`]).
    Cancelled,
}

impl StopConditions {
    /// Checks after a token: `token` is the one just sampled, `generated`
    /// counts generated tokens including it, and `text` is the decoded output
    /// so far (the caller owns the tokenizer). EOS wins over a stop string,
    /// which wins over the token budget.
    pub fn check(&self, token: u32, generated: usize, text: &str) -> Option<StopReason> {
        if self.eos.contains(&token) {
            return Some(StopReason::Eos(token));
        }
        if let Some((index, at)) = find_stop(text, &self.stop_strings) {
            return Some(StopReason::StopString { index, at });
        }
        match self.max_tokens {
            Some(max) if generated >= max => Some(StopReason::MaxTokens),
            _ => None,
        }
    }
}

/// The stop string that occurs earliest in `text`, as `(index in stops,
/// byte offset)`; among stops starting at the same byte, the first listed.
/// Empty stop strings are ignored (they would match anything).
pub fn find_stop(text: &str, stops: &[String]) -> Option<(usize, usize)> {
    stops
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.is_empty())
        .filter_map(|(i, s)| text.find(s.as_str()).map(|at| (i, at)))
        .min_by_key(|&(i, at)| (at, i))
}

/// Length in bytes of the longest end of `text` that could still grow into a
/// stop string (a proper prefix of one). A streaming caller prints
/// `text[..text.len() - partial_stop_len(..)]` and holds the rest back until
/// the next token shows whether a stop string is forming.
pub fn partial_stop_len(text: &str, stops: &[String]) -> usize {
    stops
        .iter()
        .flat_map(|s| {
            (1..s.len()).rev().filter(|&n| s.is_char_boundary(n)).find(|&n| text.ends_with(&s[..n]))
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::Pcg32;

    #[test]
    fn pcg_seeds_give_distinct_streams_in_range() {
        let draws = |seed| {
            let mut r = Pcg32::new(seed);
            (0..4).map(|_| r.next_f64()).collect::<Vec<_>>()
        };
        assert_eq!(draws(7), draws(7));
        assert_ne!(draws(7), draws(8));
        assert!(draws(1).iter().all(|&u| (0.0..1.0).contains(&u)));
    }
}
