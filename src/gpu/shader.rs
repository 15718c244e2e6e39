//! WGSL assembly: a short generated prelude (storage type, enables, shared
//! constants) followed by the kernel's source files. Shapes never enter the
//! text; they are `override` constants set at pipeline creation.

use super::kernel::KernelSpec;

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
    pub kernel: &'static KernelSpec,
    pub kv: KvStorage,
    pub subgroups: bool,
}

impl ShaderVariant {
    /// Every variant of `kernels`, for validation.
    pub fn all(kernels: &[&'static KernelSpec]) -> Vec<ShaderVariant> {
        let mut out = Vec::new();
        for &kernel in kernels {
            for kv in KvStorage::ALL {
                for subgroups in [false, true] {
                    if subgroups && kernel.subgroup_sources.is_none() {
                        continue;
                    }
                    out.push(ShaderVariant { kernel, kv, subgroups });
                }
            }
        }
        out
    }

    /// The full WGSL source: prelude, the kernel's generated constants, then
    /// its files.
    pub fn source(&self) -> String {
        let mut s = self.prelude();
        s.push_str(&(self.kernel.generated)());
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
        s.push_str(
            "// Score of a key a row must not see; finite so no inf - inf.\n\
             const MASKED: f32 = -3.0e38;\n",
        );
        s
    }
}
