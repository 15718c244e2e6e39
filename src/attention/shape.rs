//! Workgroup geometry of `attention/attend.wgsl`: how one layer's query
//! rows, dims and keys map onto invocations on a class of adapter, within the
//! adapter's limits. The cache computes it when it is built, so a layer the
//! adapter cannot run is an error up front, and plans size their blocks and
//! splits by it.

use crate::gpu::shader::KvStorage;
use crate::gpu::{AdapterClass, Capabilities};
use crate::{AttentionConfig, DType, Error, Result};

/// Register budget of one invocation in vec4s, for the query slices and for
/// the output slices (`REGS` in `attend.wgsl`).
pub(crate) const REGS: u32 = 32;
/// Most query rows one workgroup serves (`MAX_ROWS` in `attend.wgsl`), so
/// also most query tokens of one block: a plan keeps a block list for each
/// count up to this.
pub(crate) const MAX_ROWS: u32 = 8;
/// Most keys per key lane per tile (`MAX_KPT` in `attend.wgsl`).
pub(crate) const MAX_KPT: u32 = 4;
/// Keys of a split, and the keys one workgroup may walk, are whole multiples
/// of this (`Plan` rounds split lengths to it).
pub(crate) const KEY_ALIGN: u32 = 64;

/// How `attend.wgsl` lays invocations out on a class of adapter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tiling {
    /// vec4 columns of a head one dim lane aims to own.
    vec4_per_lane: u32,
    /// Invocations per workgroup to aim for.
    invocations: u32,
    /// Keys per key lane per tile: more amortise a tile's two barriers.
    keys_per_lane: u32,
}

impl Tiling {
    fn of(class: AdapterClass) -> Self {
        match class {
            // Each lane's loads cost the same whatever their addresses, so a
            // lane takes 64 bytes of a key and few lanes share a workgroup.
            // A barrier switches between invocations' saved states there, so
            // tiles are long.
            AdapterClass::Cpu => Tiling { vec4_per_lane: 4, invocations: 64, keys_per_lane: 4 },
            AdapterClass::IntegratedGpu => Tiling { vec4_per_lane: 2, invocations: 128, keys_per_lane: 2 },
            // 16 bytes per lane and wide workgroups, as GPUs coalesce best.
            AdapterClass::DiscreteGpu => Tiling { vec4_per_lane: 1, invocations: 256, keys_per_lane: 1 },
        }
    }
}

/// Workgroup geometry of the attention kernel for one layer, chosen from the
/// config, the adapter's class and its limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AttendShape {
    /// Query heads per workgroup.
    pub gh: u32,
    /// Workgroups sharing one KV head when its group exceeds the row budget.
    pub chunks: u32,
    /// Query tokens per workgroup.
    pub bq: u32,
    /// Dim lanes and key lanes of a workgroup, and keys per key lane per tile.
    pub tx: u32,
    pub ty: u32,
    pub kpt: u32,
    /// vec4 columns of K and of V per dim lane.
    pub kpl: u32,
    pub vpl: u32,
    /// Whether partial dot products are added up by subgroup shuffles (the
    /// workgroup is then one subgroup) rather than in workgroup memory.
    pub subgroup: bool,
    /// Most keys one workgroup may walk (a multiple of 64), so that its
    /// loops stay within the adapter's loop-trip limit; `u32::MAX` when the
    /// adapter has none. Longer rows are split (see `Plan`).
    pub max_keys: u32,
}

impl AttendShape {
    pub fn new(cfg: &AttentionConfig, limits: &wgpu::Limits, caps: &Capabilities) -> Result<Self> {
        let (d4, v4) = (cfg.head_dim / 4, cfg.v_head_dim / 4);
        let tiling = Tiling::of(caps.adapter_class);
        let most =
            limits.max_compute_invocations_per_workgroup.min(limits.max_compute_workgroup_size_x).max(1);
        let wide = d4.max(v4).div_ceil(tiling.vec4_per_lane);
        // On a CPU adapter with a fixed subgroup size, one subgroup is the
        // workgroup (it runs as one SIMD vector) and shuffles add the dots.
        let subgroup = caps
            .fixed_subgroup_size
            .filter(|&s| caps.adapter_class == AdapterClass::Cpu && s.is_power_of_two() && s <= most);
        let (tx, mut ty, mut kpt) = match subgroup {
            Some(s) => {
                let tx = wide.next_power_of_two().min(s);
                (tx, s / tx, 1)
            }
            None => {
                let tx = wide.min(most);
                (tx, (tiling.invocations / tx).clamp(1, most / tx), tiling.keys_per_lane)
            }
        };
        let (kpl, vpl) = (d4.div_ceil(tx), v4.div_ceil(tx));
        let mut rows = (REGS / kpl.max(vpl)).min(MAX_ROWS);
        let budget = limits.max_compute_workgroup_storage_size;
        while rows > 0 && workgroup_bytes(tx, ty, kpt, rows, vpl) > budget {
            if kpt > 1 {
                kpt /= 2;
            } else if ty > 1 && subgroup.is_none() {
                ty /= 2;
            } else {
                rows -= 1;
            }
        }
        if rows == 0 {
            return Err(Error::AdapterLimit {
                limit: "maxComputeWorkgroupStorageSize",
                needed: workgroup_bytes(tx, 1, 1, 1, vpl) as u64,
                available: budget as u64,
                what: format!("run attention with head dims {}/{}", cfg.head_dim, cfg.v_head_dim),
            });
        }
        let group = cfg.group_size();
        let chunks = group.div_ceil(rows);
        let gh = group.div_ceil(chunks);
        let bq = (rows / gh).max(1);
        let subgroup = subgroup.is_some();
        let mut shape = AttendShape { gh, chunks, bq, tx, ty, kpt, kpl, vpl, subgroup, max_keys: u32::MAX };
        if let Some(limit) = caps.loop_trip_limit {
            let (fixed, per_tile) = shape.loop_trips();
            // Half the limit: the count is an estimate of the compiled loops.
            let tiles = (limit / 2).saturating_sub(fixed) / per_tile;
            let keys = tiles.saturating_mul(ty * kpt) / KEY_ALIGN * KEY_ALIGN;
            if keys == 0 {
                return Err(Error::AdapterLimit {
                    limit: "loop iterations per invocation",
                    needed: (fixed as u64 + (KEY_ALIGN.div_ceil(ty * kpt) * per_tile) as u64) * 2,
                    available: limit as u64,
                    what: format!("run attention with head dims {}/{}", cfg.head_dim, cfg.v_head_dim),
                });
            }
            shape.max_keys = keys;
        }
        Ok(shape)
    }

    /// Loop iterations one invocation of `attend.wgsl` runs: (outside the
    /// tile loop, per tile of `ty * kpt` keys). Mirrors the kernel's loops,
    /// one more trip per loop for its exit test, as if none were unrolled;
    /// the larger of the two `tile_dots` versions.
    fn loop_trips(&self) -> (u32, u32) {
        let rows = self.gh * self.bq;
        let (tx, ty, kpt, kpl, vpl) = (self.tx, self.ty, self.kpt, self.kpl, self.vpl);
        let setup = 1 + rows * (kpl + 2);
        let merge = 1 + rows * (1 + (vpl + 1) + 2 * (ty + 1) + (vpl + 1) * (ty + 5));
        let slots = kpt + 1;
        let score = 1 + kpt * (1 + (kpl + 1) * (rows + 1) + (rows + 1));
        let shared = 3 + 2 * kpt * (rows + 1) + (kpt * ty * rows).div_ceil(tx * ty) * (tx + 1);
        let shuffles = 1 + kpt * (1 + rows.div_ceil(4) * (tx.ilog2() + 2));
        let reduce = shared.max(shuffles);
        let fold = 1 + kpt * ((rows + 1) + (vpl + 1) * (rows + 1));
        (setup + merge, 1 + slots + score + reduce + fold)
    }
}

/// Workgroup memory of `attend.wgsl` in bytes.
fn workgroup_bytes(tx: u32, ty: u32, kpt: u32, rows: u32, vpl: u32) -> u32 {
    let (wg, tile) = (tx * ty, ty * kpt);
    4 * tile * rows * tx + 4 * tile * rows + 16 * wg * vpl + 8 * wg
}

/// The KV storage variant an adapter with `caps` uses for a dtype.
pub(crate) fn kv_storage(caps: &Capabilities, dtype: DType) -> KvStorage {
    match dtype {
        DType::F32 => KvStorage::F32,
        // On a CPU adapter a load costs per 32-bit word: packed pairs halve them.
        DType::F16 if caps.shader_f16 && caps.adapter_class != AdapterClass::Cpu => KvStorage::F16Native,
        DType::F16 => KvStorage::F16Packed,
        DType::Int8 => KvStorage::Int8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CPU: AdapterClass = AdapterClass::Cpu;

    fn caps(
        class: AdapterClass,
        fixed_subgroup_size: Option<u32>,
        loop_trip_limit: Option<u32>,
    ) -> Capabilities {
        Capabilities {
            shader_f16: false,
            subgroups: fixed_subgroup_size.is_some(),
            timestamp_query: false,
            loop_trip_limit,
            adapter_class: class,
            fixed_subgroup_size,
        }
    }

    /// Every tiling: each class with workgroup memory, and CPU subgroups of 8 and 4.
    fn tilings(loop_trip_limit: Option<u32>) -> Vec<Capabilities> {
        let mut all: Vec<_> = AdapterClass::ALL.iter().map(|&c| caps(c, None, loop_trip_limit)).collect();
        all.extend([8, 4].map(|s| caps(CPU, Some(s), loop_trip_limit)));
        all
    }

    #[test]
    fn shape_fits_the_limits() {
        let defaults = wgpu::Limits::default();
        let gqa = AttentionConfig::new(32, 8, 64).unwrap();
        for c in tilings(None) {
            let s = AttendShape::new(&gqa, &defaults, &c).unwrap();
            assert_eq!((s.gh, s.chunks, s.max_keys), (4, 1, u32::MAX), "{c:?}");
            assert_eq!(s.subgroup, c.fixed_subgroup_size.is_some());
            if let Some(size) = c.fixed_subgroup_size {
                assert!(s.tx * s.ty == size && s.tx.is_power_of_two(), "{s:?}");
            }
            assert!(s.gh * s.bq <= MAX_ROWS && s.kpt <= MAX_KPT && s.tx * s.ty <= 256, "{s:?}");
            assert!(s.tx * s.kpl >= 16 && (s.gh * s.bq) * s.kpl.max(s.vpl) <= REGS, "{s:?}");
        }
        // A 64-query-head group takes two or more workgroups.
        let mqa = AttentionConfig::new(64, 1, 64).unwrap();
        let s = AttendShape::new(&mqa, &defaults, &caps(CPU, None, None)).unwrap();
        assert!(s.chunks >= 2 && s.gh * s.chunks >= 64 && s.bq == 1, "{s:?}");
        // Small workgroup memory: fewer key lanes or rows, still within it.
        let small = wgpu::Limits { max_compute_workgroup_storage_size: 4096, ..defaults.clone() };
        for c in tilings(None) {
            let s = AttendShape::new(&gqa, &small, &c).unwrap();
            assert!(workgroup_bytes(s.tx, s.ty, s.kpt, s.gh * s.bq, s.vpl) <= 4096, "{s:?}");
        }
    }

    #[test]
    fn dims_beyond_the_adapter_are_errors() {
        let tiny = wgpu::Limits { max_compute_workgroup_storage_size: 1024, ..wgpu::Limits::default() };
        let err = AttendShape::new(&AttentionConfig::new(8, 2, 256).unwrap(), &tiny, &caps(CPU, None, None))
            .unwrap_err();
        assert!(matches!(err, Error::AdapterLimit { limit: "maxComputeWorkgroupStorageSize", .. }), "{err}");
    }

    #[test]
    fn a_loop_trip_limit_caps_keys_per_workgroup() {
        let limits = wgpu::Limits { max_compute_workgroup_storage_size: 32768, ..wgpu::Limits::default() };
        // The shape that llvmpipe cut short at 31 tiles: 31 rows of dim 188.
        let wide = AttentionConfig::new(31, 1, 188).unwrap();
        for c in tilings(Some(65535)) {
            let s = AttendShape::new(&wide, &limits, &c).unwrap();
            let (fixed, per_tile) = s.loop_trips();
            assert!(
                s.max_keys.is_multiple_of(KEY_ALIGN)
                    && s.max_keys >= KEY_ALIGN
                    && s.max_keys.div_ceil(s.ty * s.kpt) * per_tile + fixed <= 65535 / 2,
                "{s:?}"
            );
        }
        // Fewer rows walk more keys; no limit means no cap.
        let s = AttendShape::new(&wide, &limits, &caps(CPU, None, Some(65535))).unwrap();
        let narrow = AttendShape::new(
            &AttentionConfig::new(2, 2, 64).unwrap(),
            &limits,
            &caps(CPU, None, Some(65535)),
        )
        .unwrap();
        assert!(narrow.max_keys > s.max_keys);
        assert_eq!(AttendShape::new(&wide, &limits, &caps(CPU, None, None)).unwrap().max_keys, u32::MAX);
        let err = AttendShape::new(&wide, &limits, &caps(CPU, None, Some(1000))).unwrap_err();
        assert!(matches!(err, Error::AdapterLimit { limit: "loop iterations per invocation", .. }), "{err}");
    }
}
