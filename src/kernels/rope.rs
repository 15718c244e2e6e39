//! Host side of `rope/rope.wgsl`: RoPE on queries, at the positions a plan
//! gives their tokens.

use crate::gpu::kernel::{Access::*, KernelSpec};
use crate::gpu::shader::{KvStorage, ShaderVariant};
use crate::gpu::{check_len, unit_groups, Constants};
use crate::kv::{plan_layout, KvCache, Plan};
use crate::{Result, Rope, RopeLayout};

/// `rope/rope.wgsl`: RoPE on queries in place.
pub(crate) static ROPE: KernelSpec = KernelSpec {
    name: "rope",
    sources: &[
        include_str!("../../shaders/kv/plan.wgsl"),
        include_str!("../../shaders/rope/rotate.wgsl"),
        include_str!("../../shaders/rope/rope.wgsl"),
    ],
    subgroup_sources: None,
    bindings: &[("plan", Read), ("x", ReadWrite), ("rope_freqs", Read)],
    overrides: &["HEADS", "DIM4", "ROPE"],
    generated: plan_layout::wgsl,
};

impl Rope {
    /// Records rotating the queries of `layer`, `q` (`[plan tokens, q_heads,
    /// head_dim]` f32), in place, each token at the position the plan gives
    /// it. The head count and head dim are the layer's, as for
    /// [`crate::attend`], so a query buffer cannot be rotated as if it held
    /// another count of heads.
    pub fn apply(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        cache: &KvCache,
        plan: &Plan,
        layer: usize,
        q: &wgpu::Buffer,
    ) -> Result<()> {
        cache.check_plan(plan)?;
        let ctx = self.context();
        let cfg = cache.layer_config(layer)?;
        self.check_head_dim(cfg.head_dim)?;
        let heads = cfg.q_heads;
        let tokens = plan.tokens() as u64;
        check_len("q buffer", q, tokens * (heads * self.head_dim()) as u64 * 4)?;
        let pipeline = ctx.pipeline(
            ShaderVariant { kernel: &ROPE, kv: KvStorage::F32, subgroups: false },
            &Constants::default()
                .set("HEADS", heads)
                .set("DIM4", self.head_dim() / 4)
                .set("ROPE", self.layout().mode()),
        )?;
        let units = self.head_dim() / if self.layout() == RopeLayout::HalfSplit { 8 } else { 4 };
        let (plan_buf, _) = plan.buffers();
        let groups = unit_groups(tokens * (heads * units) as u64);
        ctx.dispatch(encoder, &pipeline, &[plan_buf, q, self.frequencies()], groups)?;
        Ok(())
    }
}
