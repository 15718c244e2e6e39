//! Criterion benches of decode attention for development. Each iteration is
//! one attention dispatch, submitted and waited for; the report figures come
//! from `wgqa bench`, which times on the GPU and reports ratios.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wgqa::bench::Decode;
use wgqa::{AttentionConfig, DType, GpuContext, SplitPolicy};

fn decode(c: &mut Criterion) {
    let ctx = pollster::block_on(GpuContext::new()).expect("a GPU adapter");
    let mut group = c.benchmark_group("decode");
    group.sample_size(10);
    for (q, kv) in [(32, 32), (32, 8), (32, 1)] {
        for dtype in DType::ALL {
            let cfg = AttentionConfig::new(q, kv, 128).unwrap().with_dtype(dtype);
            let case = Decode::new(&ctx, &cfg, &[2048], SplitPolicy::default()).unwrap();
            group.throughput(Throughput::Bytes(case.kv_bytes()));
            group.bench_function(format!("{q}q_{kv}kv_128d_ctx2048_{dtype:?}"), |b| {
                b.iter(|| {
                    let mut enc = ctx.device().create_command_encoder(&Default::default());
                    case.encode(&mut enc).unwrap();
                    ctx.queue().submit([enc.finish()]);
                    ctx.device().poll(wgpu::PollType::wait_indefinitely()).unwrap();
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
