//! Host side of `attention/attend.wgsl` and `attention/merge.wgsl`.

use crate::gpu::shader::{Kernel, KvStorage, ShaderVariant, MAX_ROWS};
use crate::gpu::{Constants, GpuContext};
use crate::kv::{KvCache, Plan};
use crate::{AttentionConfig, DType, Error, Result};

/// Threads per attention workgroup, also keys per tile.
const WG: u32 = 64;

/// Workgroup geometry of the attention kernel for one layer, chosen from the
/// config and the adapter's workgroup-memory limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttendShape {
    /// Query heads per workgroup.
    pub gh: u32,
    /// Workgroups sharing one KV head when its group exceeds the row budget.
    pub chunks: u32,
    /// Query tokens per workgroup.
    pub bq: u32,
    /// Most keys one workgroup may walk (a multiple of the tile), so that
    /// its loops stay within the adapter's loop-trip limit; `u32::MAX` when
    /// the adapter has none. Longer rows are split (see `Plan`).
    pub max_keys: u32,
}

impl AttendShape {
    pub fn new(cfg: &AttentionConfig, limits: &wgpu::Limits, loop_trip_limit: Option<u32>) -> Result<Self> {
        // Workgroup memory: key slots, then per row the tile's scores, the
        // output accumulator and four scalars (max, sum, rescale, q offset)
        // plus the subgroup path's max bits.
        let fixed = WG * 4;
        let per_row = WG * 4 + cfg.v_head_dim * 4 + 5 * 4;
        let budget = limits.max_compute_workgroup_storage_size;
        let rows = (budget.saturating_sub(fixed) / per_row).min(MAX_ROWS);
        if rows == 0 {
            return Err(Error::AdapterLimit {
                limit: "maxComputeWorkgroupStorageSize",
                needed: (fixed + per_row) as u64,
                available: budget as u64,
                what: format!("run attention with v_head_dim {}", cfg.v_head_dim),
            });
        }
        let group = cfg.group_size();
        let chunks = group.div_ceil(rows);
        let gh = group.div_ceil(chunks);
        let bq = (rows / gh).max(1);
        let max_keys = match loop_trip_limit {
            None => u32::MAX,
            Some(limit) => {
                let (fixed, per_tile) = loop_trips(cfg, gh * bq);
                // Half the limit: the count is an estimate of the compiled loops.
                let tiles = (limit / 2).saturating_sub(fixed) / per_tile;
                if tiles == 0 {
                    return Err(Error::AdapterLimit {
                        limit: "loop iterations per invocation",
                        needed: (fixed + per_tile) as u64 * 2,
                        available: limit as u64,
                        what: format!("run attention with head dims {}/{}", cfg.head_dim, cfg.v_head_dim),
                    });
                }
                tiles.saturating_mul(WG)
            }
        };
        Ok(AttendShape { gh, chunks, bq, max_keys })
    }
}

/// V columns (vec4) one thread accumulates per row in `attend.wgsl`: 4, 2
/// or 1, dividing the V head dim's vec4 count.
fn v_cols(cfg: &AttentionConfig) -> u32 {
    [4, 2, 1].into_iter().find(|&c| (cfg.v_head_dim / 4).is_multiple_of(c)).unwrap_or(1)
}

/// Loop iterations one invocation of `attend.wgsl` runs with `rows` rows:
/// (outside the tile loop, per tile of keys). Mirrors the kernel's loops,
/// rounding up, and counts both `tile_max` versions.
fn loop_trips(cfg: &AttentionConfig, rows: u32) -> (u32, u32) {
    let (d4, v4) = (cfg.head_dim / 4, cfg.v_head_dim / 4);
    let cols = v_cols(cfg);
    let per_thread = |items: u32| items.div_ceil(WG);
    // Row setup and accumulator zeroing; the output write (4 per partial).
    let fixed = per_thread(rows) + per_thread(rows * v4) * 6;
    let score = rows + (d4 / 4 + d4 % 4) * (rows + 1) + rows;
    let tile_max = (rows + 1) + per_thread(rows) * (WG + 1);
    let probs = rows;
    let pv = per_thread(rows * v4 / cols) * (WG + 1);
    (fixed, 1 + score + tile_max + probs + pv)
}

/// The KV storage variant a context uses for a dtype.
pub(crate) fn kv_storage(ctx: &GpuContext, dtype: DType) -> KvStorage {
    match dtype {
        DType::F32 => KvStorage::F32,
        DType::F16 if ctx.capabilities().shader_f16 => KvStorage::F16Native,
        DType::F16 => KvStorage::F16Packed,
    }
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
    let kv = kv_storage(ctx, cfg.dtype);
    let s = l.shape;
    let attend = ctx.pipeline(
        ShaderVariant { kernel: Kernel::Attend, kv, subgroups: ctx.capabilities().subgroups },
        &Constants::default()
            .set("WG", WG)
            .set("HEAD_DIM4", cfg.head_dim / 4)
            .set("V_DIM4", cfg.v_head_dim / 4)
            .set("COLS", v_cols(cfg))
            .set("Q_HEADS", cfg.q_heads)
            .set("KV_HEADS", cfg.kv_heads)
            .set("GH", s.gh)
            .set("BQ", s.bq)
            .flag("CAUSAL", cfg.causal)
            .set("WINDOW", cfg.window.unwrap_or(0))
            .set("SCALE", cfg.scale())
            .set("SOFTCAP", cfg.softcap.unwrap_or(0.0))
            .flag("HAS_SINKS", cfg.sinks.is_some()),
    )?;
    let (plan_buf, partial) = plan.buffers();
    ctx.dispatch(
        encoder,
        &attend,
        &[plan_buf, q, &l.k, &l.v, &l.sinks, partial, out],
        [plan.splits(), cfg.kv_heads * s.chunks, plan.blocks(s.bq)],
    )?;
    if plan.splits() > 1 {
        let merge = ctx.pipeline(
            ShaderVariant { kernel: Kernel::Merge, kv, subgroups: false },
            &Constants::default()
                .set("Q_HEADS", cfg.q_heads)
                .set("V_DIM4", cfg.v_head_dim / 4)
                .flag("HAS_SINKS", cfg.sinks.is_some()),
        )?;
        ctx.dispatch(encoder, &merge, &[plan_buf, partial, &l.sinks, out], [cfg.q_heads, plan.tokens(), 1])?;
    }
    Ok(())
}

/// Errors unless `buffer` holds at least `bytes`.
pub(crate) fn check_len(what: &'static str, buffer: &wgpu::Buffer, bytes: u64) -> Result<()> {
    if buffer.size() < bytes {
        return Err(Error::WrongLength { what, expected: bytes, got: buffer.size(), unit: "bytes" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_fits_the_limits() {
        let defaults = wgpu::Limits::default();
        let gqa = AttentionConfig::new(32, 8, 64).unwrap();
        let s = AttendShape::new(&gqa, &defaults, None).unwrap();
        assert_eq!((s.gh, s.chunks, s.max_keys), (4, 1, u32::MAX));
        assert!(s.gh * s.bq <= MAX_ROWS);
        // A 64-query-head group takes two or more workgroups.
        let mqa = AttentionConfig::new(64, 1, 64).unwrap();
        let s = AttendShape::new(&mqa, &defaults, None).unwrap();
        assert!(s.chunks >= 2 && s.gh * s.chunks >= 64 && s.bq == 1, "{s:?}");
        // Small workgroup memory: fewer rows, still within it.
        let small = wgpu::Limits { max_compute_workgroup_storage_size: 4096, ..defaults.clone() };
        let s = AttendShape::new(&gqa, &small, None).unwrap();
        assert!(s.gh * s.bq * (WG * 4 + 64 * 4 + 20) + WG * 4 <= 4096, "{s:?}");
    }

    #[test]
    fn dims_beyond_the_adapter_are_errors() {
        let tiny = wgpu::Limits { max_compute_workgroup_storage_size: 1024, ..wgpu::Limits::default() };
        let err = AttendShape::new(&AttentionConfig::new(8, 2, 256).unwrap(), &tiny, None).unwrap_err();
        assert!(matches!(err, Error::AdapterLimit { limit: "maxComputeWorkgroupStorageSize", .. }), "{err}");
    }

    #[test]
    fn a_loop_trip_limit_caps_keys_per_workgroup() {
        let limits = wgpu::Limits { max_compute_workgroup_storage_size: 32768, ..wgpu::Limits::default() };
        // The shape that llvmpipe cut short at 31 tiles: 31 rows of dim 188.
        let wide = AttentionConfig::new(31, 1, 188).unwrap();
        let s = AttendShape::new(&wide, &limits, Some(65535)).unwrap();
        let (fixed, per_tile) = loop_trips(&wide, s.gh * s.bq);
        assert!(per_tile > 2000, "{per_tile}");
        assert!(
            s.max_keys.is_multiple_of(WG)
                && s.max_keys >= WG
                && s.max_keys / WG * per_tile + fixed <= 65535 / 2
        );
        // Fewer rows walk more keys; no limit means no cap.
        let narrow =
            AttendShape::new(&AttentionConfig::new(2, 2, 64).unwrap(), &limits, Some(65535)).unwrap();
        assert!(narrow.max_keys > s.max_keys);
        assert_eq!(AttendShape::new(&wide, &limits, None).unwrap().max_keys, u32::MAX);
        let err = AttendShape::new(&wide, &limits, Some(1000)).unwrap_err();
        assert!(matches!(err, Error::AdapterLimit { limit: "loop iterations per invocation", .. }), "{err}");
    }
}
