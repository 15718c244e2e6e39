//! Every WGSL variant parses and validates with naga, and matches its
//! kernel's spec (bindings, override constants): no GPU needed.

use wgqa::gpu::kernel::{Access, KernelSpec};
use wgqa::gpu::shader::ShaderVariant;
use wgqa::model::TensorType;

/// Sets of override values as the host sets them: for attention, a GQA layer
/// (9 query heads, 3 KV heads, head dim 64, sinks on); for the model kernels,
/// SmolLM2's shapes with every weight type, and Gemma 3's where it differs.
fn constant_sets(kernel: &KernelSpec) -> Vec<Vec<(&'static str, f64)>> {
    let types = TensorType::ALL.map(|t| t.ggml_id() as f64);
    match kernel.name {
        // One set per adapter class's tiling (dim lanes, key lanes, keys per
        // lane, vec4 columns per lane), with the rows each allows.
        "attend" => [(4.0, 16.0, 4.0, 4.0, 2.0), (8.0, 16.0, 2.0, 2.0, 2.0), (16.0, 16.0, 1.0, 1.0, 2.0)]
            .map(|(tx, ty, kpt, per_lane, bq)| {
                vec![
                    ("TX", tx),
                    ("TY", ty),
                    ("KPT", kpt),
                    ("KPL", per_lane),
                    ("VPL", per_lane),
                    ("HEAD_DIM4", 16.0),
                    ("V_DIM4", 16.0),
                    ("Q_HEADS", 9.0),
                    ("KV_HEADS", 3.0),
                    ("GH", 3.0),
                    ("BQ", bq),
                    ("CAUSAL", 1.0),
                    ("WINDOW", 0.0),
                    ("PAGE_GROUP", 1.0),
                    ("SCALE", 0.125),
                    ("SOFTCAP", 0.0),
                    ("HAS_SINKS", 1.0),
                ]
            })
            .to_vec(),
        "merge" => vec![vec![("Q_HEADS", 9.0), ("V_DIM4", 16.0), ("HAS_SINKS", 1.0)]],
        "append" | "rope" => vec![vec![("HEADS", 3.0), ("DIM4", 16.0), ("ROPE", 2.0)]],
        "copy" => vec![vec![]],
        "fma" => vec![vec![("ITERS", 0.0)], vec![("ITERS", 4096.0)]],
        "repeat_kv" => {
            vec![vec![("KV_HEADS", 3.0), ("GROUP", 3.0), ("DIM4", 16.0), ("PAGE_SIZE", 16.0)]]
        }
        "matvec" | "matmul" => {
            let plain =
                |w| vec![("WTYPE", w), ("K", 576.0), ("N", 192.0), ("Y_STRIDE", 960.0), ("Y_OFFSET", 576.0)];
            let mut sets: Vec<_> = types.map(plain).to_vec();
            // Every fusion: residual add, SwiGLU, GeGLU, Q/K/V split.
            for (out, act, n0, n1) in [
                (1.0, 0.0, 960.0, 960.0),
                (2.0, 0.0, 3072.0, 3072.0),
                (2.0, 1.0, 3072.0, 3072.0),
                (0.0, 0.0, 576.0, 768.0),
            ] {
                sets.push(vec![
                    ("WTYPE", 3.0),
                    ("K", 576.0),
                    ("N", if out == 2.0 { 3072.0 } else { 960.0 }),
                    ("Y_STRIDE", n0),
                    ("OUT", out),
                    ("ACT", act),
                    ("N0", n0),
                    ("N1", n1),
                ]);
            }
            sets
        }
        "argmax" => vec![vec![("N", 49152.0)]],
        "embed" => {
            let mut sets: Vec<_> = types.map(|w| vec![("WTYPE", w), ("K", 576.0), ("N", 49152.0)]).to_vec();
            // Gemma's: the second of two row chunks, scaled.
            sets.push(vec![
                ("WTYPE", 8.0),
                ("K", 640.0),
                ("N", 131072.0),
                ("ROW0", 131072.0),
                ("ROWS", 262144.0),
                ("SCALE", 25.3),
            ]);
            sets
        }
        "rms_norm" => [0.0, 1.0].map(|add| vec![("D4", 144.0), ("EPS", 1e-5), ("ADD", add)]).to_vec(),
        "head_norm" => vec![vec![("D4", 64.0), ("HEADS", 4.0), ("EPS", 1e-6)]],
        "elementwise" => [0.0, 1.0, 2.0, 3.0].map(|op| vec![("OP", op), ("WIDTH", 1536.0)]).to_vec(),
        other => panic!("no override values for kernel {other}: add a set here"),
    }
}

/// The bindings naga finds in group 0, in binding order: (name, access).
fn reflected_bindings(module: &naga::Module) -> Vec<(String, Access)> {
    let mut found: Vec<(u32, String, Access)> = (module.global_variables.iter())
        .filter_map(|(_, var)| {
            let binding = var.binding.as_ref()?;
            assert_eq!(binding.group, 0, "{:?} is not in group 0", var.name);
            let access = match var.space {
                naga::AddressSpace::Storage { access } if access.contains(naga::StorageAccess::STORE) => {
                    Access::ReadWrite
                }
                naga::AddressSpace::Storage { .. } => Access::Read,
                other => panic!("{:?} is in {other:?}: wgqa binds storage buffers only", var.name),
            };
            Some((binding.binding, var.name.clone().unwrap_or_default(), access))
        })
        .collect();
    found.sort_by_key(|b| b.0);
    for (i, b) in found.iter().enumerate() {
        assert_eq!(b.0, i as u32, "bindings must be 0, 1, 2, ... without gaps");
    }
    found.into_iter().map(|(_, name, access)| (name, access)).collect()
}

#[test]
fn every_kernel_matches_its_spec() {
    let kernels = wgqa::kernels();
    for (i, k) in kernels.iter().enumerate() {
        assert!(kernels[..i].iter().all(|o| o.name != k.name), "two kernels are named {}", k.name);
    }
    for v in ShaderVariant::all(&kernels) {
        let src = v.source();
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{v:?} does not parse:\n{}", e.emit_to_string(&src)));
        let spec: Vec<(String, Access)> =
            v.kernel.bindings.iter().map(|&(n, a)| (n.to_string(), a)).collect();
        assert_eq!(reflected_bindings(&module), spec, "{v:?}: the WGSL bindings differ from the spec's");
        let overrides: Vec<(&str, bool)> = (module.overrides.iter())
            .map(|(_, o)| (o.name.as_deref().unwrap_or_default(), o.init.is_none()))
            .collect();
        for name in v.kernel.overrides {
            assert!(
                overrides.iter().any(|(n, _)| n == name),
                "{v:?}: the spec sets {name}, the WGSL has no such override"
            );
        }
        for (name, required) in overrides {
            assert!(
                !required || v.kernel.overrides.contains(&name),
                "{v:?}: the WGSL needs override {name}, which the spec never sets"
            );
        }
        for set in constant_sets(v.kernel) {
            for (name, _) in &set {
                assert!(
                    v.kernel.overrides.contains(name),
                    "{v:?}: the test sets {name}, which the spec lacks"
                );
            }
        }
    }
}

#[test]
fn every_shader_variant_validates() {
    let variants = ShaderVariant::all(&wgqa::kernels());
    assert!(variants.len() >= 10, "expected every kernel x storage x subgroup variant");
    for v in variants {
        let src = v.source();
        let module = naga::front::wgsl::parse_str(&src)
            .unwrap_or_else(|e| panic!("{v:?} does not parse:\n{}", e.emit_to_string(&src)));
        let info = naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::all(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{v:?} does not validate:\n{}", e.emit_to_string(&src)));
        // Specialising the overrides is where pipeline creation can fail too.
        for set in constant_sets(v.kernel) {
            let constants = set.iter().map(|&(k, v)| (k.to_string(), v)).collect();
            naga::back::pipeline_constants::process_overrides(&module, &info, None, &constants)
                .unwrap_or_else(|e| panic!("{v:?} fails with override constants {set:?}: {e}"));
        }
    }
}
