//! Every WGSL variant parses and validates with naga: no GPU needed.

use wgqa::gpu::shader::{Kernel, ShaderVariant};
use wgqa::model::TensorType;

/// Sets of override values as the host sets them: for attention, a GQA layer
/// (9 query heads, 3 KV heads, head dim 64, sinks on); for the model kernels,
/// SmolLM2's shapes with every weight type, and Gemma 3's where it differs.
fn constant_sets(kernel: Kernel) -> Vec<Vec<(&'static str, f64)>> {
    let types = TensorType::ALL.map(|t| t.ggml_id() as f64);
    match kernel {
        // One set per adapter class's tiling (dim lanes, key lanes, keys per
        // lane, vec4 columns per lane), with the rows each allows.
        Kernel::Attend => {
            [(4.0, 16.0, 4.0, 4.0, 2.0), (8.0, 16.0, 2.0, 2.0, 2.0), (16.0, 16.0, 1.0, 1.0, 2.0)]
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
                        ("SCALE", 0.125),
                        ("SOFTCAP", 0.0),
                        ("HAS_SINKS", 1.0),
                    ]
                })
                .to_vec()
        }
        Kernel::Merge => vec![vec![("Q_HEADS", 9.0), ("V_DIM4", 16.0), ("HAS_SINKS", 1.0)]],
        Kernel::Append | Kernel::Rope => vec![vec![("HEADS", 3.0), ("DIM4", 16.0), ("ROPE", 2.0)]],
        Kernel::Copy => vec![vec![]],
        Kernel::Fma => vec![vec![("ITERS", 0.0)], vec![("ITERS", 4096.0)]],
        Kernel::RepeatKv => {
            vec![vec![("KV_HEADS", 3.0), ("GROUP", 3.0), ("DIM4", 16.0), ("PAGE_SIZE", 16.0)]]
        }
        Kernel::Matvec | Kernel::Matmul => {
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
        Kernel::Argmax => vec![vec![("N", 49152.0)]],
        Kernel::Embed => {
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
        Kernel::RmsNorm => [0.0, 1.0].map(|add| vec![("D4", 144.0), ("EPS", 1e-5), ("ADD", add)]).to_vec(),
        Kernel::HeadNorm => vec![vec![("D4", 64.0), ("HEADS", 4.0), ("EPS", 1e-6)]],
        Kernel::Elementwise => [0.0, 1.0, 2.0, 3.0].map(|op| vec![("OP", op), ("WIDTH", 1536.0)]).to_vec(),
    }
}

#[test]
fn every_shader_variant_validates() {
    let variants = ShaderVariant::all();
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
