//! Host side of `attention/attend.wgsl` and `attention/merge.wgsl`.

use crate::attention::{kv_storage, MAX_KPT, MAX_ROWS, REGS};
use crate::gpu::kernel::{Access::*, KernelSpec};
use crate::gpu::shader::ShaderVariant;
use crate::gpu::{check_len, Constants};
use crate::kv::{plan_layout, KvCache, Plan};
use crate::{Error, Result};

const PLAN: &str = include_str!("../../shaders/kv/plan.wgsl");
const FINISH: &str = include_str!("../../shaders/attention/finish.wgsl");

/// `attention/attend.wgsl`: attention partials per key split.
pub(crate) static ATTEND: KernelSpec = KernelSpec {
    name: "attend",
    sources: &[
        PLAN,
        FINISH,
        include_str!("../../shaders/attention/attend.wgsl"),
        include_str!("../../shaders/attention/dots_shared.wgsl"),
    ],
    subgroup_sources: Some(&[
        PLAN,
        FINISH,
        include_str!("../../shaders/attention/attend.wgsl"),
        include_str!("../../shaders/attention/dots_subgroup.wgsl"),
    ]),
    bindings: &[
        ("plan", Read),
        ("q", Read),
        ("k_pool", Read),
        ("v_pool", Read),
        ("sinks", Read),
        ("partial", ReadWrite),
        ("out", ReadWrite),
    ],
    overrides: &[
        "TX",
        "TY",
        "KPT",
        "KPL",
        "VPL",
        "HEAD_DIM4",
        "V_DIM4",
        "Q_HEADS",
        "KV_HEADS",
        "GH",
        "BQ",
        "CAUSAL",
        "WINDOW",
        "PAGE_GROUP",
        "SCALE",
        "SOFTCAP",
        "HAS_SINKS",
    ],
    generated: attend_wgsl,
};

/// `attention/merge.wgsl`: combines key splits.
pub(crate) static MERGE: KernelSpec = KernelSpec {
    name: "merge",
    sources: &[PLAN, FINISH, include_str!("../../shaders/attention/merge.wgsl")],
    subgroup_sources: None,
    bindings: &[("plan", Read), ("partial", Read), ("sinks", Read), ("out", ReadWrite)],
    overrides: &["Q_HEADS", "V_DIM4", "HAS_SINKS"],
    generated: plan_layout::wgsl,
};

/// The plan layout and the register budget `AttendShape` keeps to.
fn attend_wgsl() -> String {
    format!(
        "{}const REGS: u32 = {REGS}u;\nconst MAX_ROWS: u32 = {MAX_ROWS}u;\nconst MAX_KPT: u32 = {MAX_KPT}u;\n",
        plan_layout::wgsl()
    )
}

/// Records attention of `layer` for the plan's queries into `encoder`.
///
/// `q` holds `[plan tokens, q_heads, head_dim]` f32 (RoPE already applied);
/// `out` receives `[plan tokens, q_heads, v_head_dim]` f32. Keys are the
/// cache contents the plan describes, including tokens appended under it.
pub fn attend(
    encoder: &mut wgpu::CommandEncoder,
    cache: &KvCache,
    plan: &Plan,
    layer: usize,
    q: &wgpu::Buffer,
    out: &wgpu::Buffer,
) -> Result<()> {
    cache.check_plan(plan)?;
    plan.check_attend()?;
    let l = cache.layer(layer)?;
    let cfg = &l.cfg;
    let tokens = plan.tokens() as u64;
    check_len("q buffer", q, tokens * (cfg.q_heads * cfg.head_dim) as u64 * 4)?;
    check_len("output buffer", out, tokens * (cfg.q_heads * cfg.v_head_dim) as u64 * 4)?;
    if q == out {
        return Err(Error::Aliased { what: "output buffer", other: "q buffer" });
    }
    let ctx = cache.context();
    let kv = kv_storage(&ctx.capabilities(), cfg.dtype);
    let s = l.shape;
    let bq = plan.block_tokens(s.bq);
    let attend = ctx.pipeline(
        ShaderVariant { kernel: &ATTEND, kv, subgroups: s.subgroup },
        &Constants::default()
            .set("TX", s.tx)
            .set("TY", s.ty)
            .set("KPT", s.kpt)
            .set("KPL", s.kpl)
            .set("VPL", s.vpl)
            .set("HEAD_DIM4", cfg.head_dim / 4)
            .set("V_DIM4", cfg.v_head_dim / 4)
            .set("Q_HEADS", cfg.q_heads)
            .set("KV_HEADS", cfg.kv_heads)
            .set("GH", s.gh)
            .set("BQ", bq)
            .flag("CAUSAL", cfg.causal)
            .set("WINDOW", cfg.window.unwrap_or(0))
            .set("PAGE_GROUP", l.pool)
            .set("SCALE", cfg.scale())
            .set("SOFTCAP", cfg.softcap.unwrap_or(0.0))
            .flag("HAS_SINKS", cfg.sinks.is_some()),
    )?;
    let (plan_buf, partial) = plan.buffers();
    ctx.dispatch(
        encoder,
        &attend,
        &[plan_buf, q, &l.k, &l.v, &l.sinks, partial, out],
        [plan.splits(), cfg.kv_heads * s.chunks, plan.blocks(bq)],
    )?;
    if plan.splits() > 1 {
        let merge = ctx.pipeline(
            ShaderVariant { kernel: &MERGE, kv, subgroups: false },
            &Constants::default()
                .set("Q_HEADS", cfg.q_heads)
                .set("V_DIM4", cfg.v_head_dim / 4)
                .flag("HAS_SINKS", cfg.sinks.is_some()),
        )?;
        ctx.dispatch(encoder, &merge, &[plan_buf, partial, &l.sinks, out], [cfg.q_heads, plan.tokens(), 1])?;
    }
    Ok(())
}
