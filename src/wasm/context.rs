//! `Context`: the GPU device, created asynchronously from JS.

use wasm_bindgen::prelude::*;

use super::invalid;
use crate::{ContextOptions, FeatureUse, GpuContext};

/// A WebGPU device and wgqa's pipeline caches. Create with `Context.create()`.
#[wasm_bindgen(js_name = Context)]
pub struct WasmContext {
    pub(super) ctx: GpuContext,
}

#[wasm_bindgen(js_class = Context)]
impl WasmContext {
    /// Requests an adapter and device. `f16` and `subgroups` are each
    /// "auto" (use when the adapter has it; the default), "off" (test the
    /// fallback) or "require" (fail without it).
    pub async fn create(f16: Option<String>, subgroups: Option<String>) -> Result<WasmContext, JsError> {
        // wgpu's own message for a missing `navigator.gpu` is about drivers;
        // say plainly that the browser lacks WebGPU instead.
        let gpu = js_sys::Reflect::get(&js_sys::global(), &"navigator".into())
            .and_then(|nav| js_sys::Reflect::get(&nav, &"gpu".into()))
            .unwrap_or(JsValue::UNDEFINED);
        if gpu.is_undefined() || gpu.is_null() {
            return Err(invalid("WebGPU is not available here: navigator.gpu is missing".into()));
        }
        let opts = ContextOptions {
            adapter: None,
            f16: feature_use("f16", f16)?,
            subgroups: feature_use("subgroups", subgroups)?,
            adapter_class: None,
        };
        Ok(WasmContext { ctx: GpuContext::with_options(opts).await? })
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

    /// The largest storage buffer binding, in bytes (bounds a KV-cache page pool).
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
