//! Pipelines, layouts and bind groups, built once and cached by typed keys.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::shader::{Kernel, ShaderVariant};
use super::GpuContext;
use crate::{Error, Result};

/// Bind groups kept before the cache is flushed; each pins its buffers.
const MAX_BIND_GROUPS: usize = 512;

/// How a kernel binding is accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    ReadWrite,
}

impl Kernel {
    /// The bindings of group 0, in binding order.
    fn bindings(self) -> &'static [Access] {
        use Access::*;
        match self {
            Kernel::Attend => &[Read, Read, Read, Read, Read, ReadWrite, ReadWrite],
            Kernel::Merge => &[Read, Read, Read, ReadWrite],
            Kernel::Append => &[Read, Read, ReadWrite, Read],
            Kernel::Rope => &[Read, ReadWrite, Read],
            // batch, x, scales, quants, y, y1, y2 (matmul_io.wgsl).
            Kernel::Matvec | Kernel::Matmul => &[Read, Read, Read, Read, ReadWrite, ReadWrite, ReadWrite],
            Kernel::Embed => &[Read, Read, Read, Read, ReadWrite],
            Kernel::RmsNorm => &[Read, Read, Read, ReadWrite],
            Kernel::Elementwise | Kernel::HeadNorm => &[Read, ReadWrite, Read],
            Kernel::Copy | Kernel::RepeatKv | Kernel::Fma | Kernel::Argmax => &[Read, ReadWrite],
        }
    }
}

/// Values of a pipeline's `override` constants, by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Constants(Vec<(&'static str, f64)>);

impl Constants {
    pub fn set(mut self, name: &'static str, value: impl Into<f64>) -> Self {
        self.0.push((name, value.into()));
        self
    }

    pub fn flag(self, name: &'static str, on: bool) -> Self {
        self.set(name, if on { 1.0 } else { 0.0 })
    }

    fn key(&self) -> Vec<(&'static str, u64)> {
        self.0.iter().map(|&(n, v)| (n, v.to_bits())).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    variant: ShaderVariant,
    constants: Vec<(&'static str, u64)>,
}

/// A compute pipeline and the kernel it runs.
pub(crate) struct Pipeline {
    pub kernel: Kernel,
    pub pipeline: wgpu::ComputePipeline,
}

#[derive(Default)]
pub(crate) struct PipelineCache {
    modules: Mutex<HashMap<ShaderVariant, wgpu::ShaderModule>>,
    layouts: Mutex<HashMap<Kernel, (wgpu::BindGroupLayout, wgpu::PipelineLayout)>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<Pipeline>>>,
    bind_groups: Mutex<HashMap<(Kernel, Vec<wgpu::Buffer>), wgpu::BindGroup>>,
    created: AtomicUsize,
    dispatched: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PipelineCache {
    pub fn pipelines_created(&self) -> usize {
        self.created.load(Ordering::Relaxed)
    }

    pub fn dispatches_recorded(&self) -> usize {
        self.dispatched.load(Ordering::Relaxed)
    }
}

impl GpuContext {
    fn layout(&self, kernel: Kernel) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
        let device = self.device();
        lock(&self.inner.cache.layouts)
            .entry(kernel)
            .or_insert_with(|| {
                let entries: Vec<_> = kernel
                    .bindings()
                    .iter()
                    .enumerate()
                    .map(|(i, a)| wgpu::BindGroupLayoutEntry {
                        binding: i as u32,
                        visibility: wgpu::ShaderStages::COMPUTE,
                        ty: wgpu::BindingType::Buffer {
                            ty: wgpu::BufferBindingType::Storage { read_only: *a == Access::Read },
                            has_dynamic_offset: false,
                            min_binding_size: None,
                        },
                        count: None,
                    })
                    .collect();
                let bgl = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
                    label: Some("wgqa"),
                    entries: &entries,
                });
                let pl = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                    label: Some("wgqa"),
                    bind_group_layouts: &[Some(&bgl)],
                    immediate_size: 0,
                });
                (bgl, pl)
            })
            .clone()
    }

    /// The pipeline for a shader variant and its override constants.
    pub(crate) fn pipeline(&self, variant: ShaderVariant, constants: &Constants) -> Result<Arc<Pipeline>> {
        let key = PipelineKey { variant, constants: constants.key() };
        if let Some(p) = lock(&self.inner.cache.pipelines).get(&key) {
            return Ok(p.clone());
        }
        let module = lock(&self.inner.cache.modules)
            .entry(variant)
            .or_insert_with(|| {
                self.device().create_shader_module(wgpu::ShaderModuleDescriptor {
                    label: Some("wgqa"),
                    source: wgpu::ShaderSource::Wgsl(variant.source().into()),
                })
            })
            .clone();
        let (_, layout) = self.layout(variant.kernel);
        let pipeline = self.device().create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("wgqa"),
            layout: Some(&layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants.0,
                zero_initialize_workgroup_memory: true,
            },
            cache: None,
        });
        self.take_error()?;
        self.inner.cache.created.fetch_add(1, Ordering::Relaxed);
        let p = Arc::new(Pipeline { kernel: variant.kernel, pipeline });
        lock(&self.inner.cache.pipelines).insert(key, p.clone());
        Ok(p)
    }

    /// A bind group of whole buffers for `pipeline`, cached by the buffers.
    /// A buffer the kernel cannot bind (say, without `STORAGE` usage) is an error.
    pub(crate) fn bind_group(
        &self,
        pipeline: &Pipeline,
        buffers: &[&wgpu::Buffer],
    ) -> Result<wgpu::BindGroup> {
        let key = (pipeline.kernel, buffers.iter().map(|b| (*b).clone()).collect::<Vec<_>>());
        let mut groups = lock(&self.inner.cache.bind_groups);
        if let Some(g) = groups.get(&key) {
            return Ok(g.clone());
        }
        if groups.len() >= MAX_BIND_GROUPS {
            groups.clear();
        }
        check_aliasing(pipeline.kernel, buffers)?;
        let (bgl, _) = self.layout(pipeline.kernel);
        let entries: Vec<_> = buffers
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() })
            .collect();
        let group = self.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("wgqa"),
            layout: &bgl,
            entries: &entries,
        });
        self.take_error()?;
        groups.insert(key, group.clone());
        Ok(group)
    }

    /// Records one dispatch of `pipeline` into `encoder`.
    pub(crate) fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &Pipeline,
        buffers: &[&wgpu::Buffer],
        groups: [u32; 3],
    ) -> Result<()> {
        let bind_group = self.bind_group(pipeline, buffers)?;
        let mut pass = encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("wgqa"), timestamp_writes: None });
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        self.inner.cache.dispatched.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// WebGPU forbids binding one buffer twice in a dispatch where either binding
/// is writable; native wgpu does not check it, so wgqa does, everywhere.
fn check_aliasing(kernel: Kernel, buffers: &[&wgpu::Buffer]) -> Result<()> {
    let access = kernel.bindings();
    for (i, a) in buffers.iter().enumerate() {
        for (j, b) in buffers.iter().enumerate().skip(i + 1) {
            let writable =
                access.get(i) == Some(&Access::ReadWrite) || access.get(j) == Some(&Access::ReadWrite);
            if a == b && writable {
                return Err(Error::InvalidOp {
                    op: "dispatch",
                    why: format!(
                        "{kernel:?} bindings {i} and {j} are one buffer, and one of them is writable"
                    ),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::shader::KvStorage;

    #[test]
    fn one_buffer_bound_for_reading_and_writing_is_an_error() {
        let ctx = pollster::block_on(GpuContext::new()).expect("a GPU adapter (lavapipe on CI)");
        let variant = ShaderVariant { kernel: Kernel::Copy, kv: KvStorage::F32, subgroups: false };
        let pipeline = ctx.pipeline(variant, &Constants::default()).unwrap();
        let (a, b) = (ctx.storage_buffer("a", 64), ctx.storage_buffer("b", 64));
        let mut enc = ctx.device().create_command_encoder(&Default::default());
        let err = ctx.dispatch(&mut enc, &pipeline, &[&a, &a], [1, 1, 1]).unwrap_err();
        assert!(err.to_string().contains("Copy bindings 0 and 1 are one buffer"), "{err}");
        ctx.dispatch(&mut enc, &pipeline, &[&a, &b], [1, 1, 1]).unwrap();
    }
}
