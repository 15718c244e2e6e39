//! wgqa: WebGPU compute kernels for grouped-query attention.
//!
//! One kernel family covers MHA, GQA and MQA: each workgroup owns one KV head
//! and every query row that reads it, so a KV head is read from memory once
//! per step for its whole query-head group. Keys live in a paged KV cache;
//! decode splits long contexts across workgroups (split-K) and prefill tiles
//! query tokens, both through the same kernel.
//!
//! ```no_run
//! # async fn demo(q: wgpu::Buffer, k: wgpu::Buffer, v: wgpu::Buffer, out: wgpu::Buffer) -> wgqa::Result<()> {
//! use wgqa::{attend, AttentionConfig, GpuContext, KvCache, KvCacheConfig, Plan};
//! let ctx = GpuContext::new().await?;
//! let cfg = AttentionConfig::new(32, 8, 128)?;
//! let mut cache = KvCache::new(&ctx, KvCacheConfig::uniform(cfg, 1, 16, 4096))?;
//! let seq = cache.add_sequence();
//! let mut plan = Plan::new(&ctx);
//! // One decode step: reserve a token, write its K/V, attend from its query.
//! cache.plan_append(&mut plan, &[(seq, 1)])?;
//! let mut encoder = ctx.device().create_command_encoder(&Default::default());
//! cache.append(&mut encoder, &plan, 0, &k, &v, None)?;
//! attend(&mut encoder, &cache, &plan, 0, &q, &out)?;
//! ctx.queue().submit([encoder.finish()]);
//! # Ok(()) }
//! ```

pub mod attention;
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod convert;
mod error;
pub mod gpu;
mod kernels;
pub mod kv;
pub mod model;
pub mod reference;
pub mod rope;
#[cfg(target_arch = "wasm32")]
mod wasm;

/// Every kernel of wgqa, for validation (`tests/shaders.rs`).
pub fn kernels() -> Vec<&'static gpu::kernel::KernelSpec> {
    use model::ops::kernels::*;
    #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
    let mut all = vec![
        &kernels::ATTEND,
        &kernels::MERGE,
        &kernels::APPEND,
        &kernels::ROPE,
        &MATVEC,
        &MATMUL,
        &EMBED,
        &RMS_NORM,
        &ELEMENTWISE,
        &HEAD_NORM,
        &ARGMAX,
    ];
    #[cfg(not(target_arch = "wasm32"))]
    all.extend([&bench::COPY, &bench::REPEAT_KV, &bench::FMA]);
    all
}

pub use attention::{AttentionConfig, DType, MAX_SCALE, MAX_SOFTCAP};
pub use error::{Error, Result};
pub use gpu::{AdapterClass, Capabilities, ContextOptions, FeatureUse, GpuContext};
pub use kernels::attend;
pub use kv::{KvCache, KvCacheConfig, Plan, SeqId, SplitPolicy};
pub use rope::{Rope, RopeLayout, RopeScaling};
