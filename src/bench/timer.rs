//! Timing GPU work: timestamps written around the work where the adapter
//! can, else wall time over several submissions. Medians over runs.

use std::time::Instant;

use crate::{Error, GpuContext, Result};

/// How a figure was timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    GpuTimestamps,
    WallTime,
}

pub(crate) struct Timer {
    ctx: GpuContext,
    clock: Clock,
    /// Timed runs per figure; the median is reported.
    pub runs: usize,
    /// Repetitions of the work inside one timed run.
    pub reps: usize,
    queries: Option<(wgpu::QuerySet, wgpu::Buffer)>,
}

impl Timer {
    pub fn new(ctx: &GpuContext, runs: usize, reps: usize) -> Self {
        let queries = ctx.capabilities().timestamp_query.then(|| {
            let set = ctx.device().create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("wgqa bench"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let buf = ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgqa bench timestamps"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            (set, buf)
        });
        let clock = if queries.is_some() { Clock::GpuTimestamps } else { Clock::WallTime };
        Timer { ctx: ctx.clone(), clock, runs, reps, queries }
    }

    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Median milliseconds of one `work`, after one warm-up run.
    pub fn ms(&self, mut work: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>) -> Result<f64> {
        let mut times = Vec::with_capacity(self.runs);
        for run in 0..=self.runs {
            let ms = match &self.queries {
                Some((set, buf)) => self.timestamped(set, buf, &mut work)?,
                None => self.walled(&mut work)?,
            };
            if run > 0 {
                times.push(ms / self.reps as f64);
            }
        }
        times.sort_by(f64::total_cmp);
        Ok(times[times.len() / 2])
    }

    fn timestamped(
        &self,
        set: &wgpu::QuerySet,
        buf: &wgpu::Buffer,
        work: &mut impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<f64> {
        let mut enc = self.ctx.device().create_command_encoder(&Default::default());
        enc.write_timestamp(set, 0);
        for _ in 0..self.reps {
            work(&mut enc)?;
        }
        enc.write_timestamp(set, 1);
        enc.resolve_query_set(set, 0..2, buf, 0);
        self.ctx.queue().submit([enc.finish()]);
        let ticks: Vec<u64> = pollster::block_on(self.ctx.read(buf))?;
        let ns = ticks[1].saturating_sub(ticks[0]) as f64 * self.ctx.queue().get_timestamp_period() as f64;
        Ok(ns / 1e6)
    }

    fn walled(&self, work: &mut impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>) -> Result<f64> {
        let start = Instant::now();
        for _ in 0..self.reps {
            let mut enc = self.ctx.device().create_command_encoder(&Default::default());
            work(&mut enc)?;
            self.ctx.queue().submit([enc.finish()]);
        }
        self.ctx.device().poll(wgpu::PollType::wait_indefinitely()).map_err(|e| Error::Gpu(e.to_string()))?;
        Ok(start.elapsed().as_secs_f64() * 1e3)
    }
}
