//! Attention: the problem config, the GPU kernels, and the split policy.

mod attend;
mod config;

pub use attend::attend;
pub(crate) use attend::{kv_storage, AttendShape, ATTEND, MAX_ROWS, MERGE};
pub use config::{AttentionConfig, DType, MAX_SCALE, MAX_SOFTCAP};
