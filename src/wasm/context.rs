//! `Context`: the GPU device, created asynchronously from JS.

use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::invalid;
use crate::{AdapterClass, ContextOptions, FeatureUse, GpuContext};

/// A WebGPU device and wgqa's pipeline caches. Create with `Context.create()`.
#[wasm_bindgen(js_name = Context)]
pub struct WasmContext {
    pub(super) ctx: GpuContext,
    /// The adapter's class by the browser's own description of it.
    reported: AdapterClass,
}

#[wasm_bindgen(js_class = Context)]
impl WasmContext {
    /// Requests an adapter and device. `f16` and `subgroups` are each
    /// "auto" (use when the adapter has it; the default), "off" (test the
    /// fallback) or "require" (fail without it). `tiling` lays the kernels
    /// out for "cpu", "integrated-gpu" or "discrete-gpu" adapters; "auto"
    /// (the default) takes the class the browser describes. `limits`:
    /// "adapter" (the default) requests all the adapter offers, "default"
    /// only WebGPU's default limits, which every adapter has (so a size past
    /// them fails here as it would on the smallest adapter, naming the limit).
    pub async fn create(
        f16: Option<String>,
        subgroups: Option<String>,
        tiling: Option<String>,
        limits: Option<String>,
    ) -> Result<WasmContext, JsError> {
        // wgpu's own message for a missing `navigator.gpu` is about drivers;
        // say plainly that the browser lacks WebGPU instead.
        let gpu = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
            .and_then(|nav| js_sys::Reflect::get(&nav, &"gpu".into()))
            .unwrap_or(JsValue::UNDEFINED);
        if gpu.is_undefined() || gpu.is_null() {
            return Err(invalid("WebGPU is not available here: navigator.gpu is missing".into()));
        }
        let reported = reported_class(&gpu).await;
        let adapter_class = match tiling.as_deref() {
            None | Some("auto") => reported,
            Some(name) => AdapterClass::from_name(name).ok_or_else(|| {
                invalid(format!(
                    "tiling must be \"auto\", \"cpu\", \"integrated-gpu\" or \"discrete-gpu\", got {name:?}"
                ))
            })?,
        };
        let default_limits = match limits.as_deref() {
            None | Some("adapter") => false,
            Some("default") => true,
            Some(other) => {
                return Err(invalid(format!("limits must be \"adapter\" or \"default\", got {other:?}")))
            }
        };
        let opts = ContextOptions {
            adapter: None,
            f16: feature_use("f16", f16)?,
            subgroups: feature_use("subgroups", subgroups)?,
            adapter_class: Some(adapter_class),
            limits: default_limits.then(wgpu::Limits::default),
        };
        Ok(WasmContext { ctx: GpuContext::with_options(opts).await?, reported })
    }

    /// The class the kernels are laid out for: "cpu", "integrated-gpu" or "discrete-gpu".
    #[wasm_bindgen(getter)]
    pub fn tiling(&self) -> String {
        self.ctx.capabilities().adapter_class.name().into()
    }

    /// Whether WebGPU runs on the CPU here (a software rasteriser such as
    /// SwiftShader), by the browser's description of its adapter.
    #[wasm_bindgen(getter, js_name = runsOnCpu)]
    pub fn runs_on_cpu(&self) -> bool {
        self.reported == AdapterClass::Cpu
    }

    #[wasm_bindgen(getter, js_name = adapterName)]
    pub fn adapter_name(&self) -> String {
        self.ctx.adapter_info().name.clone()
    }

    /// Whether kernels use native `f16` (`shader-f16`); f16 storage works without it.
    #[wasm_bindgen(getter, js_name = shaderF16)]
    pub fn shader_f16(&self) -> bool {
        self.ctx.capabilities().shader_f16
    }

    /// Whether kernels use subgroup operations.
    #[wasm_bindgen(getter)]
    pub fn subgroups(&self) -> bool {
        self.ctx.capabilities().subgroups
    }

    /// The largest storage buffer binding the device has, in bytes (bounds
    /// a weight matrix and one layer's KV-cache pages).
    #[wasm_bindgen(getter, js_name = maxStorageBufferBindingSize)]
    pub fn max_storage_buffer_binding_size(&self) -> f64 {
        self.ctx.limits().max_storage_buffer_binding_size as f64
    }
}

fn feature_use(name: &str, value: Option<String>) -> Result<FeatureUse, JsError> {
    match value.as_deref() {
        None | Some("auto") => Ok(FeatureUse::Auto),
        Some("off") => Ok(FeatureUse::Off),
        Some("require") => Ok(FeatureUse::Require),
        Some(other) => {
            Err(invalid(format!("{name} must be \"auto\", \"off\" or \"require\", got {other:?}")))
        }
    }
}

/// The adapter's class from the browser's `GPUAdapterInfo`: wgpu passes on
/// only its description, which Chromium leaves empty, while the vendor and
/// architecture name SwiftShader and `isFallbackAdapter` marks a software one.
async fn reported_class(gpu: &JsValue) -> AdapterClass {
    let get = |o: &JsValue, key: &str| js_sys::Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED);
    let adapter = async {
        let request: js_sys::Function = get(gpu, "requestAdapter").dyn_into().ok()?;
        let promise: js_sys::Promise = request.call0(gpu).ok()?.dyn_into().ok()?;
        wasm_bindgen_futures::JsFuture::from(promise).await.ok().filter(|a| !a.is_null())
    };
    let Some(adapter) = adapter.await else { return AdapterClass::DiscreteGpu };
    let info = get(&adapter, "info");
    let fallback = [get(&info, "isFallbackAdapter"), get(&adapter, "isFallbackAdapter")]
        .iter()
        .any(|v| v.as_bool() == Some(true));
    let names: Vec<String> = ["vendor", "architecture", "device", "description"]
        .map(|k| get(&info, k).as_string().unwrap_or_default())
        .into();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let device_type = if fallback { wgpu::DeviceType::Cpu } else { wgpu::DeviceType::Other };
    AdapterClass::classify(device_type, &names)
}
