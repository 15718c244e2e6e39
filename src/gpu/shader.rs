//! WGSL assembly: a short generated prelude (storage type, enables, shared
//! constants) followed by the kernel's source files. Shapes never enter the
//! text; they are `override` constants set at pipeline creation.

use crate::kv::plan_layout as pl;

/// Most query rows one attention workgroup serves.
pub const MAX_ROWS: u32 = 32;

/// The kernels of wgqa.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    /// `attention/attend.wgsl`: attention partials per key split.
    Attend,
    /// `attention/merge.wgsl`: combines key splits.
    Merge,
    /// `kv/append.wgsl`: writes new K/V into the paged cache.
    Append,
    /// `rope/rope.wgsl`: RoPE on queries in place.
    Rope,
    /// `bench/copy.wgsl`: streaming copy, the benchmark's bandwidth roof.
    Copy,
    /// `bench/repeat_kv.wgsl`: the naive baseline's KV-head repetition.
    RepeatKv,
    /// `bench/fma.wgsl`: independent FMA chains, the benchmark's compute roof
    /// (and, with no iterations, its empty dispatch).
    Fma,
    /// `model/matvec.wgsl`: decode matmul on quantised weights.
    Matvec,
    /// `model/matmul.wgsl`: prefill matmul on quantised weights, tiled by tokens.
    Matmul,
    /// `model/embed.wgsl`: embedding lookup from a quantised table.
    Embed,
    /// `model/rms_norm.wgsl`: RMSNorm, one workgroup per token.
    RmsNorm,
    /// `model/elementwise.wgsl`: residual add, SwiGLU and GeGLU, in place.
    Elementwise,
    /// `model/head_norm.wgsl`: RMSNorm of each head, in place (Gemma's Q/K norms).
    HeadNorm,
    /// `model/argmax.wgsl`: the greedy token, picked on the GPU.
    Argmax,
}

impl Kernel {
    pub const ALL: [Kernel; 14] = [
        Kernel::Attend,
        Kernel::Merge,
        Kernel::Append,
        Kernel::Rope,
        Kernel::Copy,
        Kernel::RepeatKv,
        Kernel::Fma,
        Kernel::Matvec,
        Kernel::Matmul,
        Kernel::Embed,
        Kernel::RmsNorm,
        Kernel::Elementwise,
        Kernel::HeadNorm,
        Kernel::Argmax,
    ];

    fn sources(self, subgroups: bool) -> &'static [&'static str] {
        const ATTEND: &str = include_str!("../../shaders/attention/attend.wgsl");
        const MERGE: &str = include_str!("../../shaders/attention/merge.wgsl");
        const DOTS_SHARED: &str = include_str!("../../shaders/attention/dots_shared.wgsl");
        const DOTS_SUBGROUP: &str = include_str!("../../shaders/attention/dots_subgroup.wgsl");
        const FINISH: &str = include_str!("../../shaders/attention/finish.wgsl");
        const ROTATE: &str = include_str!("../../shaders/rope/rotate.wgsl");
        const ROPE: &str = include_str!("../../shaders/rope/rope.wgsl");
        const APPEND: &str = include_str!("../../shaders/kv/append.wgsl");
        const DEQUANT: &str = include_str!("../../shaders/model/dequant.wgsl");
        const MATMUL_IO: &str = include_str!("../../shaders/model/matmul_io.wgsl");
        const MATVEC: &str = include_str!("../../shaders/model/matvec.wgsl");
        const MATMUL: &str = include_str!("../../shaders/model/matmul.wgsl");
        const EMBED: &str = include_str!("../../shaders/model/embed.wgsl");
        const RMS_NORM: &str = include_str!("../../shaders/model/rms_norm.wgsl");
        const ELEMENTWISE: &str = include_str!("../../shaders/model/elementwise.wgsl");
        const ACTIVATION: &str = include_str!("../../shaders/model/activation.wgsl");
        const HEAD_NORM: &str = include_str!("../../shaders/model/head_norm.wgsl");
        const ARGMAX: &str = include_str!("../../shaders/model/argmax.wgsl");
        const COPY: &str = include_str!("../../shaders/bench/copy.wgsl");
        const REPEAT_KV: &str = include_str!("../../shaders/bench/repeat_kv.wgsl");
        const FMA: &str = include_str!("../../shaders/bench/fma.wgsl");
        // A file declaring an `override` comes before the files using it:
        // naga 30 panics specialising overrides declared after their users.
        match (self, subgroups) {
            (Kernel::Attend, false) => &[FINISH, ATTEND, DOTS_SHARED],
            (Kernel::Attend, true) => &[FINISH, ATTEND, DOTS_SUBGROUP],
            (Kernel::Merge, _) => &[FINISH, MERGE],
            (Kernel::Append, _) => &[ROTATE, APPEND],
            (Kernel::Rope, _) => &[ROTATE, ROPE],
            (Kernel::Matvec, _) => &[DEQUANT, ACTIVATION, MATMUL_IO, MATVEC],
            (Kernel::Matmul, _) => &[DEQUANT, ACTIVATION, MATMUL_IO, MATMUL],
            (Kernel::Embed, _) => &[DEQUANT, EMBED],
            (Kernel::RmsNorm, _) => &[RMS_NORM],
            (Kernel::Elementwise, _) => &[ACTIVATION, ELEMENTWISE],
            (Kernel::HeadNorm, _) => &[HEAD_NORM],
            (Kernel::Argmax, _) => &[ARGMAX],
            (Kernel::Copy, _) => &[COPY],
            (Kernel::RepeatKv, _) => &[REPEAT_KV],
            (Kernel::Fma, _) => &[FMA],
        }
    }

    /// Whether the kernel has a subgroup variant at all.
    pub fn uses_subgroups(self) -> bool {
        self == Kernel::Attend
    }
}

/// How KV-cache elements are stored and read in WGSL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvStorage {
    F32,
    /// f16 pairs packed in u32, read with `unpack2x16float`: works everywhere.
    F16Packed,
    /// Native `f16` (needs `shader-f16`). Same bytes as `F16Packed`.
    F16Native,
    /// Four int8 in a u32 (`pack4x8snorm`), each row followed by one f32
    /// scale word (`DType::Int8`): works everywhere.
    Int8,
}

impl KvStorage {
    pub const ALL: [KvStorage; 4] =
        [KvStorage::F32, KvStorage::F16Packed, KvStorage::F16Native, KvStorage::Int8];

    /// Bytes of one `kv4` (four elements).
    pub fn vec4_bytes(self) -> u64 {
        match self {
            KvStorage::F32 => 16,
            KvStorage::F16Packed | KvStorage::F16Native => 8,
            KvStorage::Int8 => 4,
        }
    }

    /// `kv4` words after each row's `DIM4` holding its scale
    /// (`KV_SCALE_WORDS` in WGSL).
    pub fn scale_words(self) -> u32 {
        match self {
            KvStorage::Int8 => 1,
            _ => 0,
        }
    }
}

/// Everything that changes the WGSL text of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ShaderVariant {
    pub kernel: Kernel,
    pub kv: KvStorage,
    pub subgroups: bool,
}

impl ShaderVariant {
    /// Every variant, for validation.
    pub fn all() -> Vec<ShaderVariant> {
        let mut out = Vec::new();
        for kernel in Kernel::ALL {
            for kv in KvStorage::ALL {
                for subgroups in [false, true] {
                    if subgroups && !kernel.uses_subgroups() {
                        continue;
                    }
                    out.push(ShaderVariant { kernel, kv, subgroups });
                }
            }
        }
        out
    }

    /// The full WGSL source: prelude then the kernel's files.
    pub fn source(&self) -> String {
        let mut s = self.prelude();
        for part in self.kernel.sources(self.subgroups) {
            s.push_str(part);
            s.push('\n');
        }
        s
    }

    fn prelude(&self) -> String {
        let mut s = String::new();
        if self.kv == KvStorage::F16Native {
            s.push_str("enable f16;\n");
        }
        // Browsers require the enable; naga (native) rejects it and needs none.
        if self.subgroups && cfg!(target_arch = "wasm32") {
            s.push_str("enable subgroups;\n");
        }
        s.push_str(match self.kv {
            KvStorage::F32 => {
                "alias kv4 = vec4<f32>;\n\
                 fn kv_load(v: kv4) -> vec4<f32> { return v; }\n\
                 fn kv_store(v: vec4<f32>) -> kv4 { return v; }\n"
            }
            KvStorage::F16Packed => {
                "alias kv4 = vec2<u32>;\n\
                 fn kv_load(v: kv4) -> vec4<f32> { return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)); }\n\
                 fn kv_store(v: vec4<f32>) -> kv4 { return vec2<u32>(pack2x16float(v.xy), pack2x16float(v.zw)); }\n"
            }
            KvStorage::F16Native => {
                "alias kv4 = vec4<f16>;\n\
                 fn kv_load(v: kv4) -> vec4<f32> { return vec4<f32>(v); }\n\
                 fn kv_store(v: vec4<f32>) -> kv4 { return vec4<f16>(v); }\n"
            }
            // `v` is the row's values over its scale, in [-1, 1].
            KvStorage::Int8 => {
                "alias kv4 = u32;\n\
                 fn kv_load(v: kv4) -> vec4<f32> { return unpack4x8snorm(v); }\n\
                 fn kv_store(v: vec4<f32>) -> kv4 { return pack4x8snorm(v); }\n"
            }
        });
        // A row is DIM4 kv4 words, then KV_SCALE_WORDS words holding its
        // scale; float storages have none and scale 1, and their dead
        // branches on the constant fold away.
        s.push_str(match self.kv {
            KvStorage::Int8 => {
                "fn kv_scale_load(w: kv4) -> f32 { return bitcast<f32>(w); }\n\
                 fn kv_scale_store(s: f32) -> kv4 { return bitcast<u32>(s); }\n"
            }
            _ => {
                "fn kv_scale_load(w: kv4) -> f32 { return 1.0; }\n\
                 fn kv_scale_store(s: f32) -> kv4 { return kv_store(vec4<f32>(s)); }\n"
            }
        });
        s.push_str(&format!("const KV_SCALE_WORDS: u32 = {}u;\n", self.kv.scale_words()));
        s.push_str(&format!(
            "// Score of a key a row must not see; finite so no inf - inf.\n\
             const MASKED: f32 = -3.0e38;\n\
             const PLAN_SPLITS: u32 = {}u;\n\
             const PLAN_PAGE_SIZE: u32 = {}u;\n\
             const PLAN_TOKENS: u32 = {}u;\n\
             const PLAN_TOKEN_MAP: u32 = {}u;\n\
             const PLAN_BLOCKS: u32 = {}u;\n\
             const PLAN_ENTRIES: u32 = {}u;\n\
             const ENTRY_WORDS: u32 = {}u;\n",
            pl::SPLITS,
            pl::PAGE_SIZE,
            pl::TOKENS,
            pl::TOKEN_MAP,
            pl::BLOCKS,
            pl::ENTRIES,
            pl::ENTRY_WORDS,
        ));
        s
    }
}
