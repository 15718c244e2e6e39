// Gate activations of the gated MLPs, shared by the fused matmul output
// (`matmul_io.wgsl`) and the elementwise kernel.

// SiLU (act 0) or tanh-approximated GELU (act 1) of a gate value.
fn gate_act(act: u32, g: f32) -> f32 {
    if act == 1u {
        // tanh saturates to +-1 in f32 well before 10; the clamp keeps a
        // backend's exp-based tanh from inf / inf.
        let u = clamp(0.7978846 * (g + 0.044715 * g * g * g), -10.0, 10.0);
        return 0.5 * g * (1.0 + tanh(u));
    }
    // exp(-g) overflows to inf for very negative g, giving -0: silu's limit.
    return g / (1.0 + exp(-g));
}
