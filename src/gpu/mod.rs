//! The GPU runtime: context, shader assembly, pipeline and bind-group caches,
//! buffer helpers.

mod buffers;
mod context;
mod grid;
pub mod kernel;
mod pipelines;
pub mod shader;

pub(crate) use buffers::{check_buffer_size, check_len};
pub use context::{AdapterClass, Capabilities, ContextOptions, FeatureUse, GpuContext, ADAPTER_ENV};
pub(crate) use grid::{check_index, grid, unit_groups};
pub(crate) use pipelines::Constants;
