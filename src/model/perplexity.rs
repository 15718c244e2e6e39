//! Perplexity from a model's logits: one definition for the CPU and the GPU
//! model, so their figures differ only by their logits.

use crate::error::{Error, Result};

/// Negative log-likelihood (natural log) of `target` under `logits`, via a
/// log-sum-exp in f64; `None` when `target` is not an index of `logits`.
pub fn token_nll(logits: &[f32], target: u32) -> Option<f64> {
    let chosen = *logits.get(target as usize)? as f64;
    let max = logits.iter().fold(f64::NEG_INFINITY, |m, &l| m.max(l as f64));
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    Some(max + sum.ln() - chosen)
}

/// Errors unless `tokens` can be scored: two at least, and the last one (a
/// target only, never fed to the model, so nothing else checks it) inside
/// the vocabulary.
pub(crate) fn check_tokens(tokens: &[u32], vocab: u32) -> Result<()> {
    if tokens.len() < 2 {
        return Err(Error::TooFewTokens { what: "perplexity", needed: 2, got: tokens.len() });
    }
    let last = tokens[tokens.len() - 1];
    if last >= vocab {
        return Err(Error::TokenOutOfRange { token: last, index: tokens.len() - 1, vocab });
    }
    Ok(())
}

/// `exp` of the mean negative log-likelihood of `targets[i]` under the
/// logits `logits[i]` (the model's output after the tokens before it).
pub(crate) fn from_logits(logits: &[Vec<f32>], targets: &[u32]) -> f64 {
    let nll: f64 = logits.iter().zip(targets).filter_map(|(l, &t)| token_nll(l, t)).sum();
    (nll / logits.len() as f64).exp()
}
