//! Host side of `kv/append.wgsl`: new K/V rows into their reserved slots.

use crate::attention::kv_storage;
use crate::gpu::kernel::{Access::*, KernelSpec};
use crate::gpu::shader::ShaderVariant;
use crate::gpu::{check_len, unit_groups, Constants};
use crate::kv::{plan_layout, KvCache, Plan};
use crate::{Error, Result, Rope};

/// `kv/append.wgsl`: writes new K/V into the paged cache.
pub(crate) static APPEND: KernelSpec = KernelSpec {
    name: "append",
    sources: &[
        include_str!("../../shaders/kv/plan.wgsl"),
        include_str!("../../shaders/rope/rotate.wgsl"),
        include_str!("../../shaders/kv/append.wgsl"),
    ],
    subgroup_sources: None,
    bindings: &[("plan", Read), ("src", Read), ("pool", ReadWrite), ("rope_freqs", Read)],
    overrides: &["HEADS", "DIM4", "ROPE", "PAGE_GROUP"],
    generated: plan_layout::wgsl,
};

impl KvCache {
    /// Records writing `k` (`[plan tokens, kv_heads, head_dim]` f32) and `v`
    /// (`[plan tokens, kv_heads, v_head_dim]` f32) of `layer` into the slots
    /// `plan_append` reserved, applying `rope` to K on the way in.
    ///
    /// On invalid input the plan's reservation is rolled back, so every
    /// sequence is exactly as it was before `plan_append`.
    pub fn append(
        &mut self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &Plan,
        layer: usize,
        k: &wgpu::Buffer,
        v: &wgpu::Buffer,
        rope: Option<&Rope>,
    ) -> Result<()> {
        self.check_plan(plan)?;
        if !plan.can_append() {
            return Err(Error::PlanCannotAppend);
        }
        let result = self.encode_append(encoder, plan, layer, k, v, rope);
        if result.is_err() {
            self.rollback(plan)?;
        }
        result
    }

    fn encode_append(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        plan: &Plan,
        layer: usize,
        k: &wgpu::Buffer,
        v: &wgpu::Buffer,
        rope: Option<&Rope>,
    ) -> Result<()> {
        let l = self.layer(layer)?;
        let cfg = &l.cfg;
        let tokens = plan.tokens() as u64;
        check_len("k buffer", k, tokens * (cfg.kv_heads * cfg.head_dim) as u64 * 4)?;
        check_len("v buffer", v, tokens * (cfg.kv_heads * cfg.v_head_dim) as u64 * 4)?;
        if let Some(r) = rope {
            r.check_head_dim(cfg.head_dim)?;
        }
        let ctx = self.context();
        let kv = kv_storage(&ctx.capabilities(), cfg.dtype);
        let (plan_buf, _) = plan.buffers();
        let writes = [(k, &l.k, cfg.head_dim, rope), (v, &l.v, cfg.v_head_dim, None)];
        for (src, pool, dim, rope) in writes {
            let mode = rope.map_or(0, |r| r.layout().mode());
            let pipeline = ctx.pipeline(
                ShaderVariant { kernel: &APPEND, kv, subgroups: false },
                &Constants::default()
                    .set("HEADS", cfg.kv_heads)
                    .set("DIM4", dim / 4)
                    .set("ROPE", mode)
                    .set("PAGE_GROUP", l.pool),
            )?;
            let freqs = rope.map_or(&self.no_rope, |r| r.frequencies());
            // A thread per 4-wide unit, or per row where the row shares a scale.
            let units = match (kv.scale_words(), mode) {
                (1.., _) => 1,
                (0, 2) => dim / 8,
                (0, _) => dim / 4,
            };
            let groups = unit_groups(tokens * (cfg.kv_heads * units) as u64);
            ctx.dispatch(encoder, &pipeline, &[plan_buf, src, pool, freqs], groups)?;
        }
        Ok(())
    }
}
