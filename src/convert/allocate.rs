//! Variable GQA: the KV heads of each layer that lose the least under a KV
//! budget, by dynamic programming over layers (exact for the measured
//! per-layer losses, which are assumed to add).

use super::{divisors, head_bytes, LlamaConfig};
use crate::error::{Error, Result};

/// One layer's KV heads in an allocation.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerChoice {
    pub layer: usize,
    pub kv_heads: u32,
    /// Increase of the mean NLL (nats per token) on the calibration text when
    /// only this layer is converted so; 0 when it keeps its heads or gains some.
    pub loss_increase: f64,
}

/// For each layer, the KV-head count among the divisors of its query heads
/// that minimises the summed loss increase with at most `budget` f16 KV
/// bytes per token in all. `loss(layer, kv_heads)` measures one layer; it is
/// only asked for counts below the layer's own (more heads replicate
/// exactly and cost nothing). Among equal losses the smaller cache wins.
pub fn allocate(
    cfg: &LlamaConfig,
    budget: u64,
    mut loss: impl FnMut(usize, u32) -> Result<f64>,
) -> Result<Vec<LayerChoice>> {
    let unit = head_bytes(cfg);
    let max_heads = (budget / unit) as usize;
    let options: Vec<Vec<(u32, f64)>> = cfg
        .layers
        .iter()
        .enumerate()
        .map(|(layer, a)| {
            divisors(cfg.q_heads)
                .into_iter()
                .map(|g| Ok((g, if g < a.kv_heads { loss(layer, g)? } else { 0.0 })))
                .collect::<Result<Vec<_>>>()
        })
        .collect::<Result<_>>()?;
    // best[n] = (summed loss, choices) using exactly n heads over the layers so far.
    let mut best: Vec<Option<(f64, Vec<u32>)>> = vec![None; max_heads + 1];
    best[0] = Some((0.0, Vec::new()));
    for opts in &options {
        let mut next: Vec<Option<(f64, Vec<u32>)>> = vec![None; max_heads + 1];
        for (n, entry) in best.iter().enumerate() {
            let Some((l, picks)) = entry else { continue };
            for &(g, dl) in opts {
                let m = n + g as usize;
                if m > max_heads {
                    continue;
                }
                let cand = l + dl;
                if next[m].as_ref().is_none_or(|(bl, _)| cand < *bl) {
                    let mut p = picks.clone();
                    p.push(g);
                    next[m] = Some((cand, p));
                }
            }
        }
        best = next;
    }
    let (_, picks) =
        best.into_iter().flatten().reduce(|a, b| if b.0 < a.0 { b } else { a }).ok_or_else(|| {
            Error::ConvertOption {
                option: "--kv-budget",
                problem: format!("{budget} bytes per token cannot hold one KV head in every layer"),
            }
        })?;
    Ok(picks
        .into_iter()
        .enumerate()
        .map(|(layer, g)| {
            let dl = options[layer].iter().find(|o| o.0 == g).map_or(0.0, |o| o.1);
            LayerChoice { layer, kv_heads: g, loss_increase: dl }
        })
        .collect())
}
