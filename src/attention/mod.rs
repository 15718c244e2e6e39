//! Attention: the problem config, and the workgroup geometry of its kernel
//! on an adapter. The kernel's host side is in `kernels/attend.rs`, above the
//! cache it reads.

mod config;
mod shape;

pub use config::{AttentionConfig, DType, MAX_SCALE, MAX_SOFTCAP};
pub(crate) use shape::{kv_storage, AttendShape, KEY_ALIGN, MAX_KPT, MAX_ROWS, REGS};
