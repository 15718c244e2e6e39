//! The GPU runtime: context, shader assembly, pipeline and bind-group caches,
//! buffer helpers.

mod buffers;
mod context;
pub mod kernel;
mod pipelines;
pub mod shader;

pub use context::{AdapterClass, Capabilities, ContextOptions, FeatureUse, GpuContext, ADAPTER_ENV};
pub(crate) use pipelines::Constants;
