//! The model's kernels (see [`KernelSpec`]).

use crate::gpu::kernel::{Access::*, KernelSpec};

const DEQUANT: &str = include_str!("../../../shaders/model/dequant.wgsl");
const MATMUL_IO: &str = include_str!("../../../shaders/model/matmul_io.wgsl");
const ACTIVATION: &str = include_str!("../../../shaders/model/activation.wgsl");
const NORM_SUM: &str = include_str!("../../../shaders/model/norm_sum.wgsl");

/// Bindings of both matmuls: batch, x, scales, quants, y, y1, y2
/// (`matmul_io.wgsl`, `dequant.wgsl`).
const MATMUL_BINDINGS: &[(&str, crate::gpu::kernel::Access)] = &[
    ("batch", Read),
    ("x", Read),
    ("w_scales", Read),
    ("w_quants", Read),
    ("y", ReadWrite),
    ("y1", ReadWrite),
    ("y2", ReadWrite),
];
const MATMUL_OVERRIDES: &[&str] = &["WTYPE", "K", "N", "Y_STRIDE", "Y_OFFSET", "OUT", "ACT", "N0", "N1"];

/// `model/matvec.wgsl`: decode matmul on quantised weights.
pub(crate) static MATVEC: KernelSpec = KernelSpec {
    name: "matvec",
    sources: &[DEQUANT, ACTIVATION, MATMUL_IO, include_str!("../../../shaders/model/matvec.wgsl")],
    subgroup_sources: None,
    bindings: MATMUL_BINDINGS,
    overrides: MATMUL_OVERRIDES,
    generated: KernelSpec::nothing,
};

/// `model/matmul.wgsl`: prefill matmul on quantised weights, tiled by tokens.
pub(crate) static MATMUL: KernelSpec = KernelSpec {
    name: "matmul",
    sources: &[DEQUANT, ACTIVATION, MATMUL_IO, include_str!("../../../shaders/model/matmul.wgsl")],
    subgroup_sources: None,
    bindings: MATMUL_BINDINGS,
    overrides: MATMUL_OVERRIDES,
    generated: KernelSpec::nothing,
};

/// `model/embed.wgsl`: embedding lookup from a quantised table.
pub(crate) static EMBED: KernelSpec = KernelSpec {
    name: "embed",
    sources: &[DEQUANT, include_str!("../../../shaders/model/embed.wgsl")],
    subgroup_sources: None,
    bindings: &[("batch", Read), ("ids", Read), ("w_scales", Read), ("w_quants", Read), ("out", ReadWrite)],
    overrides: &["WTYPE", "K", "N", "ROW0", "ROWS", "SCALE"],
    generated: KernelSpec::nothing,
};

/// `model/rms_norm.wgsl`: RMSNorm, one workgroup per token.
pub(crate) static RMS_NORM: KernelSpec = KernelSpec {
    name: "rms_norm",
    sources: &[NORM_SUM, include_str!("../../../shaders/model/rms_norm.wgsl")],
    subgroup_sources: None,
    bindings: &[("batch", Read), ("x", Read), ("w", Read), ("y", ReadWrite)],
    overrides: &["D4", "EPS", "ADD"],
    generated: KernelSpec::nothing,
};

/// `model/head_norm.wgsl`: RMSNorm of each head in place (Gemma's Q/K norms).
pub(crate) static HEAD_NORM: KernelSpec = KernelSpec {
    name: "head_norm",
    sources: &[NORM_SUM, include_str!("../../../shaders/model/head_norm.wgsl")],
    subgroup_sources: None,
    bindings: &[("batch", Read), ("x", ReadWrite), ("w", Read)],
    overrides: &["D4", "HEADS", "EPS"],
    generated: KernelSpec::nothing,
};

/// `model/elementwise.wgsl`: residual add, SwiGLU, GeGLU and biases, in place.
pub(crate) static ELEMENTWISE: KernelSpec = KernelSpec {
    name: "elementwise",
    sources: &[ACTIVATION, include_str!("../../../shaders/model/elementwise.wgsl")],
    subgroup_sources: None,
    bindings: &[("batch", Read), ("x", ReadWrite), ("y", Read)],
    overrides: &["OP", "WIDTH"],
    generated: KernelSpec::nothing,
};

/// `model/argmax.wgsl`: the greedy token, picked on the GPU.
pub(crate) static ARGMAX: KernelSpec = KernelSpec {
    name: "argmax",
    sources: &[include_str!("../../../shaders/model/argmax.wgsl")],
    subgroup_sources: None,
    bindings: &[("logits", Read), ("out", ReadWrite)],
    overrides: &["N"],
    generated: KernelSpec::nothing,
};
