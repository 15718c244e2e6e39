//! The benchmark's own kernels: its roofs and the naive baseline.

use crate::gpu::kernel::{Access::*, KernelSpec};

/// `bench/copy.wgsl`: streaming copy, the bandwidth roof.
pub(crate) static COPY: KernelSpec = KernelSpec {
    name: "copy",
    sources: &[include_str!("../../shaders/bench/copy.wgsl")],
    subgroup_sources: None,
    bindings: &[("src", Read), ("dst", ReadWrite)],
    overrides: &[],
    generated: KernelSpec::nothing,
};

/// `bench/repeat_kv.wgsl`: the naive baseline's KV-head repetition.
pub(crate) static REPEAT_KV: KernelSpec = KernelSpec {
    name: "repeat_kv",
    sources: &[include_str!("../../shaders/bench/repeat_kv.wgsl")],
    subgroup_sources: None,
    bindings: &[("src", Read), ("dst", ReadWrite)],
    overrides: &["KV_HEADS", "GROUP", "DIM4", "PAGE_SIZE"],
    generated: KernelSpec::nothing,
};

/// `bench/fma.wgsl`: independent FMA chains, the compute roof (and, with no
/// iterations, the empty dispatch).
pub(crate) static FMA: KernelSpec = KernelSpec {
    name: "fma",
    sources: &[include_str!("../../shaders/bench/fma.wgsl")],
    subgroup_sources: None,
    bindings: &[("seed", Read), ("out", ReadWrite)],
    overrides: &["ITERS"],
    generated: KernelSpec::nothing,
};
