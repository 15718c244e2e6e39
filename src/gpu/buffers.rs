//! Buffer helpers: creation, upload and async readback.

use wgpu::util::DeviceExt;

use super::GpuContext;
use crate::{Error, Result};

impl GpuContext {
    /// A storage buffer of `size` bytes (rounded up to 4, at least 4).
    pub fn storage_buffer(&self, label: &str, size: u64) -> wgpu::Buffer {
        self.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    /// A storage buffer holding `data`.
    pub fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> wgpu::Buffer {
        let bytes: &[u8] = bytemuck::cast_slice(data);
        if bytes.is_empty() {
            return self.storage_buffer(label, 4);
        }
        self.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some(label),
            contents: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
        })
    }

    /// Copies `buffer` back to the CPU (waits for the GPU; not for the token loop).
    pub async fn read_f32(&self, buffer: &wgpu::Buffer) -> Result<Vec<f32>> {
        self.read::<f32>(buffer).await
    }

    /// Copies `buffer` back as `T`s (its size must be a multiple of `T`'s).
    pub async fn read<T: bytemuck::Pod>(&self, buffer: &wgpu::Buffer) -> Result<Vec<T>> {
        let size = buffer.size();
        let staging = self.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgqa readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device().create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, size);
        self.queue().submit([encoder.finish()]);
        self.read_staged(&staging, size as usize / std::mem::size_of::<T>()).await
    }

    /// Maps `staging` (a MAP_READ buffer filled by a submitted copy), reads
    /// its first `count` `T`s and unmaps it.
    pub(crate) async fn read_staged<T: bytemuck::Pod>(
        &self,
        staging: &wgpu::Buffer,
        count: usize,
    ) -> Result<Vec<T>> {
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device()
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| Error::Gpu(format!("poll: {e}")))?;
        rx.await
            .map_err(|_| Error::Gpu("readback was cancelled".into()))?
            .map_err(|e| Error::Gpu(format!("map: {e}")))?;
        let values = {
            let view = staging.get_mapped_range(..).map_err(|e| Error::Gpu(format!("map: {e}")))?;
            bytemuck::cast_slice(&view)[..count].to_vec()
        };
        staging.unmap();
        self.take_error()?;
        Ok(values)
    }
}

/// Errors unless `buffer` holds at least `bytes`.
pub(crate) fn check_len(what: &'static str, buffer: &wgpu::Buffer, bytes: u64) -> Result<()> {
    if buffer.size() < bytes {
        return Err(Error::WrongLength { what, expected: bytes, got: buffer.size(), unit: "bytes" });
    }
    Ok(())
}

/// Errors unless `bytes` fits one storage binding and one buffer under `limits`.
pub(crate) fn check_buffer_size(limits: &wgpu::Limits, bytes: u64, what: &str) -> Result<()> {
    for (limit, available) in [
        ("maxStorageBufferBindingSize", limits.max_storage_buffer_binding_size),
        ("maxBufferSize", limits.max_buffer_size),
    ] {
        if bytes > available {
            return Err(Error::AdapterLimit {
                limit,
                needed: bytes,
                available,
                what: format!("hold {what}"),
            });
        }
    }
    Ok(())
}
