//! The GPU context: adapter choice, feature and limit negotiation in one
//! place, and the caches every kernel shares.

use std::sync::{Arc, Mutex};

use super::pipelines::PipelineCache;
use crate::{Error, Result};

/// How a context shares its device: `Arc` natively, where wgpu's types are
/// Send and Sync and a context may move between threads; `Rc` on wasm32,
/// where they are neither (WebGPU objects belong to one JS thread), so an
/// `Arc` would only pay for atomics nothing can use.
#[cfg(not(target_arch = "wasm32"))]
type Shared<T> = Arc<T>;
#[cfg(target_arch = "wasm32")]
type Shared<T> = std::rc::Rc<T>;

/// Environment variable that forces an adapter by (case-insensitive) name substring.
pub const ADAPTER_ENV: &str = "WGQA_ADAPTER";

/// Whether to use an optional adapter feature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FeatureUse {
    /// Use it when the adapter has it.
    #[default]
    Auto,
    /// Never use it (for testing fallbacks).
    Off,
    /// Fail with [`Error::MissingFeature`] when the adapter lacks it.
    Require,
}

/// How to create a [`GpuContext`].
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Pick the adapter whose name contains this (native only). Defaults to
    /// the `WGQA_ADAPTER` environment variable, then the system's choice.
    pub adapter: Option<String>,
    /// Native `f16` in shaders (`shader-f16`); f16 storage works without it.
    pub f16: FeatureUse,
    /// Subgroup operations, an optimisation with a fallback.
    pub subgroups: FeatureUse,
    /// Tile the kernels for this kind of adapter instead of the one the
    /// adapter reports (for testing every tiling on one machine).
    pub adapter_class: Option<AdapterClass>,
    /// Request these limits instead of everything the adapter offers, e.g.
    /// `wgpu::Limits::default()` to run as on a baseline WebGPU device
    /// (128 MiB storage bindings); each must be within the adapter's.
    pub limits: Option<wgpu::Limits>,
}

/// The kind of adapter, which sets how the attention kernel lays out its
/// invocations and which f16 storage it reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AdapterClass {
    /// A CPU rasteriser (lavapipe/llvmpipe, SwiftShader, WARP): every memory
    /// access costs about the same whatever its address, so each lane reads
    /// wide slices and packed f16 halves the accesses.
    Cpu,
    IntegratedGpu,
    /// Discrete GPUs and anything the adapter does not name.
    DiscreteGpu,
}

impl AdapterClass {
    pub const ALL: [AdapterClass; 3] =
        [AdapterClass::Cpu, AdapterClass::IntegratedGpu, AdapterClass::DiscreteGpu];

    /// The class an adapter reports; software rasterisers are recognised by
    /// name where the backend does not report a device type (the browser).
    pub fn of(info: &wgpu::AdapterInfo) -> Self {
        Self::classify(info.device_type, &[&info.name, &info.driver, &info.driver_info])
    }

    /// The class of an adapter of this device type that names itself so.
    pub fn classify(device_type: wgpu::DeviceType, names: &[&str]) -> Self {
        let named = |n: &str| names.iter().any(|s| s.to_lowercase().contains(n));
        match device_type {
            wgpu::DeviceType::Cpu => AdapterClass::Cpu,
            _ if named("llvmpipe") || named("swiftshader") => AdapterClass::Cpu,
            wgpu::DeviceType::IntegratedGpu => AdapterClass::IntegratedGpu,
            _ => AdapterClass::DiscreteGpu,
        }
    }

    /// The class's name in wgqa's JS API and reports.
    pub fn name(self) -> &'static str {
        match self {
            AdapterClass::Cpu => "cpu",
            AdapterClass::IntegratedGpu => "integrated-gpu",
            AdapterClass::DiscreteGpu => "discrete-gpu",
        }
    }

    /// The class of a [`AdapterClass::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What the device was created with; kernels specialise on these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub shader_f16: bool,
    pub subgroups: bool,
    /// Timestamps can be written between passes (used by the benchmark).
    pub timestamp_query: bool,
    /// Loop iterations one invocation may run, summed over all loops of a
    /// shader, before the driver silently breaks out of them (llvmpipe stops
    /// at 65535). Kernels whose work grows with the context split it so that
    /// no invocation comes near this; `None` means no such limit is known.
    pub loop_trip_limit: Option<u32>,
    /// The tiling the kernels use (see [`ContextOptions::adapter_class`]).
    pub adapter_class: AdapterClass,
    /// The subgroup size where subgroups are on and the adapter has one
    /// fixed size; a workgroup of that many invocations is one subgroup.
    pub fixed_subgroup_size: Option<u32>,
}

/// A device, its queue, and wgqa's pipeline and bind-group caches. Cheap to clone.
#[derive(Clone)]
pub struct GpuContext {
    pub(crate) inner: Shared<Inner>,
}

pub(crate) struct Inner {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    pub caps: Capabilities,
    pub limits: wgpu::Limits,
    pub cache: PipelineCache,
    /// Two distinct small buffers for writable bindings a dispatch leaves
    /// unused (WebGPU forbids binding one buffer twice where one is writable).
    pub spare: [wgpu::Buffer; 2],
    errors: Arc<Mutex<Option<String>>>,
}

impl GpuContext {
    /// Creates a context on the default (or `WGQA_ADAPTER`) adapter.
    pub async fn new() -> Result<Self> {
        Self::with_options(ContextOptions::default()).await
    }

    pub async fn with_options(opts: ContextOptions) -> Result<Self> {
        let adapter = pick_adapter(&instance(), &opts).await?;
        let features = negotiate(adapter.features(), &opts)?;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgqa"),
                required_features: features,
                required_limits: opts.limits.clone().unwrap_or_else(|| adapter.limits()),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::Gpu(format!("request_device: {e}")))?;
        Ok(Self::with_class(device, queue, adapter.get_info(), opts.adapter_class))
    }

    /// Wraps a caller's device and queue; wgqa uses the features it was created with.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, info: wgpu::AdapterInfo) -> Self {
        Self::with_class(device, queue, info, None)
    }

    fn with_class(
        device: wgpu::Device,
        queue: wgpu::Queue,
        info: wgpu::AdapterInfo,
        class: Option<AdapterClass>,
    ) -> Self {
        let f = device.features();
        let caps = Capabilities {
            shader_f16: f.contains(wgpu::Features::SHADER_F16),
            subgroups: f.contains(wgpu::Features::SUBGROUP),
            timestamp_query: f
                .contains(wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS),
            loop_trip_limit: loop_trip_limit(&info),
            adapter_class: class.unwrap_or_else(|| AdapterClass::of(&info)),
            fixed_subgroup_size: (f.contains(wgpu::Features::SUBGROUP)
                && info.subgroup_min_size == info.subgroup_max_size)
                .then_some(info.subgroup_min_size),
        };
        let errors = Arc::new(Mutex::new(None));
        let sink = errors.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));
        let limits = device.limits();
        let spare = ["wgqa spare 0", "wgqa spare 1"].map(|label| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: 16,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        });
        GpuContext {
            inner: Shared::new(Inner {
                device,
                queue,
                info,
                caps,
                limits,
                cache: PipelineCache::default(),
                spare,
                errors,
            }),
        }
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.inner.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.inner.queue
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.inner.info
    }

    pub fn capabilities(&self) -> Capabilities {
        self.inner.caps
    }

    pub fn limits(&self) -> &wgpu::Limits {
        &self.inner.limits
    }

    /// Returns (and clears) the first GPU error reported since the last call.
    pub fn take_error(&self) -> Result<()> {
        let mut slot = self.inner.errors.lock().unwrap_or_else(|p| p.into_inner());
        match slot.take() {
            Some(e) => Err(Error::Gpu(e)),
            None => Ok(()),
        }
    }

    /// Whether the adapter is a CPU rasteriser (lavapipe/llvmpipe,
    /// SwiftShader, WARP): wgpu reports its device type as `Cpu`.
    pub fn is_cpu_adapter(&self) -> bool {
        self.inner.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Number of compute pipelines created so far (they are cached by key).
    pub fn pipelines_created(&self) -> usize {
        self.inner.cache.pipelines_created()
    }

    /// Number of kernel dispatches recorded so far, by every caller (each in
    /// its own compute pass): the benchmark counts a model token's with it.
    pub fn dispatches_recorded(&self) -> usize {
        self.inner.cache.dispatches_recorded()
    }

    /// Stand-ins for writable bindings a dispatch does not use.
    pub(crate) fn spare_buffers(&self) -> [&wgpu::Buffer; 2] {
        [&self.inner.spare[0], &self.inner.spare[1]]
    }

    /// Errors unless `bytes` fits one storage binding and one buffer.
    pub(crate) fn check_buffer_size(&self, bytes: u64, what: &str) -> Result<()> {
        super::check_buffer_size(&self.inner.limits, bytes, what)
    }
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.inner.info.name)
            .field("backend", &self.inner.info.backend)
            .field("caps", &self.inner.caps)
            .finish()
    }
}

/// The instance every context of this process is made from. Resources of two
/// native instances can carry equal ids, and wgpu then takes another
/// device's buffer for one of its own; from one instance, a buffer of another
/// context is a validation error of the call that binds it.
///
/// Natively it leaves out GL unless `WGPU_BACKEND` asks for it: wgpu's EGL
/// adapters of a shared instance fail (a panic in wgpu-hal) when two threads
/// enumerate and drop them at once, and GL is no compute backend for wgqa.
fn instance() -> wgpu::Instance {
    #[cfg(not(target_arch = "wasm32"))]
    {
        static INSTANCE: std::sync::OnceLock<wgpu::Instance> = std::sync::OnceLock::new();
        let new = || {
            let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
            if std::env::var_os("WGPU_BACKEND").is_none() {
                desc.backends.remove(wgpu::Backends::GL);
            }
            wgpu::Instance::new(desc)
        };
        INSTANCE.get_or_init(new).clone()
    }
    #[cfg(target_arch = "wasm32")]
    wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
}

/// The loop-iteration cap of drivers known to have one (see
/// [`Capabilities::loop_trip_limit`]): Mesa's llvmpipe, which lavapipe runs on.
pub(crate) fn loop_trip_limit(info: &wgpu::AdapterInfo) -> Option<u32> {
    let llvmpipe = info.driver.contains("llvmpipe") || info.name.contains("llvmpipe");
    llvmpipe.then_some(65535)
}

/// The optional features to request, given what the adapter has.
pub(crate) fn negotiate(available: wgpu::Features, opts: &ContextOptions) -> Result<wgpu::Features> {
    let timing = wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS;
    let mut features = available & timing;
    for (feature, name, choice) in [
        (wgpu::Features::SHADER_F16, "shader-f16", opts.f16),
        (wgpu::Features::SUBGROUP, "subgroups", opts.subgroups),
    ] {
        let has = available.contains(feature);
        if choice == FeatureUse::Require && !has {
            return Err(Error::MissingFeature {
                feature: name,
                what: "run with this feature required".into(),
            });
        }
        if choice != FeatureUse::Off && has {
            features |= feature;
        }
    }
    Ok(features)
}

async fn pick_adapter(instance: &wgpu::Instance, opts: &ContextOptions) -> Result<wgpu::Adapter> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let wanted = opts.adapter.clone().or_else(|| std::env::var(ADAPTER_ENV).ok());
        if let Some(wanted) = wanted.filter(|w| !w.is_empty()) {
            let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
            let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
            return adapters
                .into_iter()
                .find(|a| a.get_info().name.to_lowercase().contains(&wanted.to_lowercase()))
                .ok_or_else(|| Error::NoAdapter(format!(" matching {wanted:?}; adapters: {names:?}")));
        }
    }
    #[cfg(target_arch = "wasm32")]
    let _ = opts;
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            Error::NoAdapter(format!(
                " ({e}); on Linux without a GPU install Mesa's lavapipe: apt-get install mesa-vulkan-drivers"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn required_features_are_checked_and_off_means_off() {
        let opts = ContextOptions { f16: FeatureUse::Require, ..Default::default() };
        let err = negotiate(wgpu::Features::SUBGROUP, &opts).unwrap_err();
        assert!(err.to_string().contains("lacks the `shader-f16` feature"), "{err}");
        let all = wgpu::Features::SHADER_F16 | wgpu::Features::SUBGROUP;
        let off = ContextOptions { subgroups: FeatureUse::Off, ..Default::default() };
        assert_eq!(negotiate(all, &off).unwrap(), wgpu::Features::SHADER_F16);
        assert_eq!(negotiate(all, &ContextOptions::default()).unwrap(), all);
    }

    #[test]
    fn llvmpipe_has_a_loop_trip_limit() {
        let info = |name: &str, driver: &str| wgpu::AdapterInfo {
            name: name.into(),
            driver: driver.into(),
            ..wgpu::AdapterInfo::new(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan)
        };
        assert_eq!(loop_trip_limit(&info("llvmpipe (LLVM 15.0.6, 256 bits)", "llvmpipe")), Some(65535));
        assert_eq!(loop_trip_limit(&info("SwiftShader Device", "")), None);
        assert_eq!(loop_trip_limit(&info("NVIDIA GeForce RTX 4090", "NVIDIA")), None);
    }
}
