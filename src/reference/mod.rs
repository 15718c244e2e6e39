//! CPU references for every kernel, accumulating in f64. Users and tests
//! compare GPU results against these, within [`tolerance`].

mod attention;
mod rope;
pub mod tolerance;

pub use attention::{attention, attention_repeat_kv, round_to_storage};
pub use rope::{rope, rope_scaled};
