//! CPU references for every kernel, accumulating in f64: attention, RoPE
//! and the model's ops. Users and tests compare GPU results against these,
//! within [`tolerance`]. (The CPU *model*, a whole forward pass, is
//! [`crate::model::CpuModel`].)

mod attention;
mod model_ops;
mod rope;
pub mod tolerance;

pub use attention::{attention, attention_repeat_kv, round_to_storage};
pub use model_ops::{add, add_bias, embed, geglu, geglu_halves, matmul, rms_norm, swiglu, swiglu_halves};
pub use rope::{rope, rope_scaled};
