//! The tensors a llama or gemma3 GGUF must hold and their shapes, derived from a
//! [`LlamaConfig`]: one table that the config check reads, so that every
//! hyperparameter is agreed with the file's tensors before anything is sized
//! from it.

use super::config::LlamaConfig;
use crate::error::{Error, Result};
use crate::model::Gguf;

/// Per-block tensors: the name after `blk.{i}.` and before `.weight`.
pub(crate) const BLOCK_TENSORS: [&str; 9] =
    ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"];

/// Per-head norms of Q and K (`head_dim` wide), when
/// [`LlamaConfig::qk_norm`].
pub(crate) const QK_NORMS: [&str; 2] = ["attn_q_norm", "attn_k_norm"];

/// Norms of the attention and MLP outputs, when [`LlamaConfig::post_norms`].
pub(crate) const POST_NORMS: [&str; 2] = ["post_attention_norm", "post_ffw_norm"];

/// The name of block `i`'s tensor `t` (one of [`BLOCK_TENSORS`],
/// [`QK_NORMS`] or [`POST_NORMS`]).
pub(crate) fn block_tensor(i: usize, t: &str) -> String {
    format!("blk.{i}.{t}.weight")
}

/// Every tensor the model reads with its dims in GGUF order (`[cols, rows]`
/// for a matrix). Products are in u64, so no config can overflow them.
pub(crate) fn llama_tensors(config: &LlamaConfig) -> Vec<(String, Vec<u64>)> {
    let (e, f, vocab) = (config.embedding as u64, config.ffn as u64, config.vocab_size as u64);
    let mut out =
        vec![("token_embd.weight".to_string(), vec![e, vocab]), ("output_norm.weight".into(), vec![e])];
    if !config.tied_output {
        out.push(("output.weight".into(), vec![e, vocab]));
    }
    for (i, a) in config.layers.iter().enumerate() {
        let (hq, hkv) = (a.q_heads as u64, a.kv_heads as u64);
        let (d, dv) = (a.head_dim as u64, a.v_head_dim as u64);
        for t in BLOCK_TENSORS {
            let dims = match t {
                "attn_norm" | "ffn_norm" => vec![e],
                "attn_q" => vec![e, hq * d],
                "attn_k" => vec![e, hkv * d],
                "attn_v" => vec![e, hkv * dv],
                "attn_output" => vec![hq * dv, e],
                "ffn_gate" | "ffn_up" => vec![e, f],
                _ => vec![f, e], // ffn_down
            };
            out.push((block_tensor(i, t), dims));
        }
        if config.qk_norm {
            out.extend(QK_NORMS.map(|t| (block_tensor(i, t), vec![d])));
        }
        if config.post_norms {
            out.extend(POST_NORMS.map(|t| (block_tensor(i, t), vec![e])));
        }
        if config.qkv_bias {
            for (t, width) in [("attn_q", hq * d), ("attn_k", hkv * d), ("attn_v", hkv * dv)] {
                out.push((bias_tensor(i, t), vec![width]));
            }
        }
    }
    out
}

/// The name of block `i`'s bias of projection `t` (`attn_q`, `attn_k`, `attn_v`).
pub(crate) fn bias_tensor(i: usize, t: &str) -> String {
    format!("blk.{i}.{t}.bias")
}

/// The number of blocks the file's tensors describe: `blk.{i}.` prefixes
/// must run from 0 without a gap, so the count is bounded by the file and
/// can be compared with `llama.block_count` before anything is sized by it.
pub(crate) fn blocks_in_file(gguf: &Gguf) -> Result<u32> {
    let mut present = std::collections::BTreeSet::new();
    for t in gguf.tensors() {
        let Some(rest) = t.name.strip_prefix("blk.") else { continue };
        let index = rest.split('.').next().and_then(|i| i.parse::<u64>().ok());
        match index {
            Some(i) => present.insert(i),
            None => return Err(Error::GgufCorrupt(format!("tensor `{}` names no block number", t.name))),
        };
    }
    // At most one block per tensor, so the count is bounded by the file.
    let n = present.len() as u64;
    match present.last() {
        Some(&last) if last + 1 != n => Err(Error::GgufCorrupt(format!(
            "the file has tensors of {n} blocks numbered up to {last}: a block is missing"
        ))),
        _ => u32::try_from(n).map_err(|_| Error::GgufCorrupt(format!("the file has tensors of {n} blocks"))),
    }
}

/// Every tensor of the table is present with exactly its dims.
pub(crate) fn check_tensors(gguf: &Gguf, config: &LlamaConfig) -> Result<()> {
    for (name, dims) in llama_tensors(config) {
        gguf.tensor_with_dims(&name, &dims)?;
    }
    Ok(())
}
