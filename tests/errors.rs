//! Bad input reaches a clear error, never a panic or a hang; each error
//! variant of the host layer is hit here (config variants are unit-tested in
//! `attention::config`, `MissingFeature` in `gpu::context`).

use wgqa::{
    AttentionConfig, ContextOptions, Error, GpuContext, KvCache, KvCacheConfig, Plan, Rope, RopeLayout,
};
use wgqa_testkit::*;

fn cache(cfg: AttentionConfig, capacity: u32) -> KvCache {
    KvCache::new(ctx(), KvCacheConfig::uniform(cfg, 2, 16, capacity)).unwrap()
}

fn cfg() -> AttentionConfig {
    AttentionConfig::new(4, 2, 32).unwrap()
}

#[test]
fn adapter_errors() {
    let opts = ContextOptions { adapter: Some("no-such-adapter".into()), ..Default::default() };
    let err = pollster::block_on(GpuContext::with_options(opts)).unwrap_err();
    assert!(matches!(err, Error::NoAdapter(_)) && err.to_string().contains("no-such-adapter"), "{err}");

    // 64 KV heads x 1024 dims x 4 bytes x 2^20 tokens: far past any binding limit.
    let huge = AttentionConfig::new(64, 64, 1024).unwrap();
    let err = KvCache::new(ctx(), KvCacheConfig::uniform(huge, 1, 16, 1 << 20)).err().unwrap();
    assert!(matches!(err, Error::AdapterLimit { limit: "maxStorageBufferBindingSize", .. }), "{err}");
}

/// WebGPU's default limits on request: a cache one layer of which needs more
/// than the default 128 MiB binding names that limit and both sizes.
#[test]
fn default_limits_are_requested_and_reported() {
    let opts = ContextOptions { limits: Some(wgpu::Limits::default()), ..Default::default() };
    let ctx = pollster::block_on(GpuContext::with_options(opts)).unwrap();
    let binding = wgpu::Limits::default().max_storage_buffer_binding_size;
    assert_eq!(ctx.limits().max_storage_buffer_binding_size, binding);
    // 2 KV heads x 64 dims x 4 bytes = 512 bytes a token: 2^18 + 16 tokens overflow by one page.
    let cfg = AttentionConfig::new(4, 2, 64).unwrap();
    let err = KvCache::new(&ctx, KvCacheConfig::uniform(cfg, 1, 16, (1 << 18) + 16)).err().unwrap();
    let needed = ((1u64 << 18) + 16) * 512;
    assert_eq!(
        err.to_string(),
        format!(
            "the adapter cannot hold one layer's K or V pages: needs maxStorageBufferBindingSize >= {needed}, \
             the adapter has {binding}"
        )
    );
}

#[test]
fn cache_config_errors() {
    let ctx = ctx();
    let bad = |c: KvCacheConfig| KvCache::new(ctx, c).err().unwrap();
    assert!(matches!(
        bad(KvCacheConfig { layers: vec![], page_size: 16, capacity_tokens: 16, max_sequences: None }),
        Error::NoLayers
    ));
    assert!(matches!(bad(KvCacheConfig::uniform(cfg(), 1, 0, 16)), Error::InvalidPageSize(0)));
    assert!(matches!(bad(KvCacheConfig::uniform(cfg(), 1, 16, 0)), Error::ZeroCapacity));
    let err = bad(KvCacheConfig::uniform(AttentionConfig { kv_heads: 3, ..cfg() }, 1, 16, 16));
    assert_eq!(err.to_string(), "q_heads (4) must be a multiple of kv_heads (3)");
}

#[test]
fn sequence_and_plan_errors() {
    let ctx = ctx();
    let mut c = cache(cfg(), 64);
    let mut plan = Plan::new(ctx);
    let seq = c.add_sequence();
    let gone = c.add_sequence();
    c.free(gone).unwrap();
    assert!(matches!(c.plan_append(&mut plan, &[(gone, 1)]), Err(Error::UnknownSequence(_))));
    assert!(matches!(c.truncate(gone, 0), Err(Error::UnknownSequence(_))));
    assert!(matches!(c.plan_append(&mut plan, &[]), Err(Error::EmptyBatch)));
    assert!(matches!(c.plan_append(&mut plan, &[(seq, 0)]), Err(Error::EmptyBatch)));
    assert!(matches!(c.plan_append(&mut plan, &[(seq, 1), (seq, 2)]), Err(Error::DuplicateSequence(_))));
    assert!(matches!(c.plan_append(&mut plan, &[(seq, 65)]), Err(Error::CacheFull { .. })));
    assert_eq!(c.len(seq).unwrap(), 0, "failed plans change nothing");

    c.plan_append(&mut plan, &[(seq, 10)]).unwrap();
    assert!(matches!(c.truncate(seq, 11), Err(Error::PositionOutOfRange { position: 11, len: 10, .. })));
    let err = c.plan_queries(&mut plan, &[(seq, 2, 9)]).unwrap_err();
    assert!(matches!(err, Error::PositionOutOfRange { position: 10, len: 10, .. }), "{err}");
    let err = c.plan_queries(&mut plan, &[(seq, 70_000, 0)]).unwrap_err();
    assert!(matches!(err, Error::PositionOutOfRange { .. }), "{err}");

    // A cross-attention cache takes any query count, up to one dispatch.
    let mut cross = cache(cfg().with_causal(false), 16);
    let s = cross.add_sequence();
    let err = cross.plan_queries(&mut plan, &[(s, 70_000, 0)]).unwrap_err();
    assert!(matches!(err, Error::BatchTooLarge { got: 70_000, max: 65535, .. }), "{err}");
}

#[test]
fn kernel_call_errors() {
    let ctx = ctx();
    let mut c = cache(cfg(), 64);
    let mut plan = Plan::new(ctx);
    let seq = c.add_sequence();
    let q = ctx.storage_buffer("q", 3 * 4 * 32 * 4);
    let kv = ctx.storage_buffer("kv", 3 * 2 * 32 * 4);
    let out = ctx.storage_buffer("out", 3 * 4 * 32 * 4);
    let mut enc = ctx.device().create_command_encoder(&Default::default());

    assert!(matches!(wgqa::attend(&mut enc, &c, &plan, 0, &q, &out), Err(Error::ForeignPlan)));
    c.plan_append(&mut plan, &[(seq, 3)]).unwrap();
    assert!(matches!(
        c.append(&mut enc, &plan, 2, &kv, &kv, None),
        Err(Error::LayerOutOfRange { layer: 2, layers: 2 })
    ));
    c.plan_append(&mut plan, &[(seq, 3)]).unwrap();
    let short = ctx.storage_buffer("short", 8);
    let err = wgqa::attend(&mut enc, &c, &plan, 0, &short, &out).unwrap_err();
    assert_eq!(err.to_string(), "q buffer: expected 1536 bytes, got 8 bytes");
    assert!(matches!(wgqa::attend(&mut enc, &c, &plan, 0, &q, &q), Err(Error::Aliased { .. })));
    let rope = Rope::new(ctx, RopeLayout::Adjacent, 1e4, 64).unwrap();
    let err = c.append(&mut enc, &plan, 0, &kv, &kv, Some(&rope)).unwrap_err();
    assert!(matches!(err, Error::InvalidRope { field: "head_dim", .. }), "{err}");
    assert!(matches!(
        Rope::new(ctx, RopeLayout::Adjacent, 0.5, 64),
        Err(Error::InvalidRope { field: "base", .. })
    ));
    assert!(matches!(
        Rope::new(ctx, RopeLayout::HalfSplit, 1e4, 36),
        Err(Error::InvalidRope { field: "head_dim", .. })
    ));

    // A buffer the kernels cannot bind is a GPU error, not a panic.
    c.plan_append(&mut plan, &[(seq, 3)]).unwrap();
    let unbindable = ctx.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: q.size(),
        usage: wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let err = wgqa::attend(&mut enc, &c, &plan, 0, &unbindable, &out).unwrap_err();
    assert!(matches!(err, Error::Gpu(_)), "{err}");

    // Plans go stale when the cache changes, and query plans cannot append.
    c.truncate(seq, 1).unwrap();
    assert!(matches!(wgqa::attend(&mut enc, &c, &plan, 0, &q, &out), Err(Error::StalePlan)));
    c.plan_queries(&mut plan, &[(seq, 1, 0)]).unwrap();
    assert!(matches!(c.append(&mut enc, &plan, 0, &kv, &kv, None), Err(Error::PlanCannotAppend)));
    assert!(matches!(c.rollback(&plan), Err(Error::PlanCannotAppend)));
}

/// Where shader loops stop after a fixed trip count (llvmpipe), a plan that
/// needs more key splits than its partial results can hold still appends but
/// refuses to attend, rather than returning attention over part of the keys.
/// Other adapters have no such limit and nothing to refuse.
#[test]
fn attention_past_the_loop_trip_limit_is_an_error() {
    if ctx().capabilities().loop_trip_limit.is_none() {
        return;
    }
    // The same adapter with 4 MiB bindings, so only a few splits fit.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).unwrap();
    let required_limits = wgpu::Limits { max_storage_buffer_binding_size: 4 << 20, ..adapter.limits() };
    let desc = wgpu::DeviceDescriptor { required_limits, ..Default::default() };
    let (device, queue) = pollster::block_on(adapter.request_device(&desc)).unwrap();
    let ctx = GpuContext::from_device(device, queue, adapter.get_info());
    assert!(ctx.capabilities().loop_trip_limit.is_some());

    // 31 rows of dim 188 per workgroup walk under a thousand keys each.
    let wide = AttentionConfig::new(31, 1, 188).unwrap().with_dtype(wgqa::DType::F16);
    let mut c = KvCache::new(&ctx, KvCacheConfig::uniform(wide, 1, 16, 4096)).unwrap();
    let seq = c.add_sequence();
    let mut plan = Plan::new(&ctx);
    c.plan_append(&mut plan, &[(seq, 3936)]).unwrap();
    c.plan_append(&mut plan, &[(seq, 64)]).unwrap();
    let q = ctx.storage_buffer("q", 64 * 31 * 188 * 4);
    let out = ctx.storage_buffer("out", 64 * 31 * 188 * 4);
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let err = wgqa::attend(&mut enc, &c, &plan, 0, &q, &out).unwrap_err();
    assert!(matches!(err, Error::AdapterLimit { limit: "key splits", .. }), "{err}");
    assert!(err.to_string().contains("attend from fewer tokens at a time"), "{err}");
    assert_eq!(c.len(seq).unwrap(), 4000, "the plan still appended");
    // Fewer query tokens at a time fit.
    c.plan_queries(&mut plan, &[(seq, 1, 3999)]).unwrap();
    wgqa::attend(&mut enc, &c, &plan, 0, &q, &out).unwrap();
}

/// Handles of one cache or device used with another: a sequence of another
/// cache is unknown here, and a buffer of another device is an error from
/// the call itself, not a GPU error found later.
#[test]
fn handles_from_elsewhere_are_errors() {
    let mut a = cache(cfg(), 64);
    let mut b = cache(cfg(), 64);
    let seq_b = b.add_sequence();
    let seq_a = a.add_sequence();
    assert_eq!(a.len(seq_a).unwrap(), 0);
    let mut plan = Plan::new(ctx());
    let err = a.plan_append(&mut plan, &[(seq_b, 1)]).unwrap_err();
    assert!(matches!(err, Error::UnknownSequence(_)), "{err}");
    assert!(matches!(a.len(seq_b), Err(Error::UnknownSequence(_))));

    let other = pollster::block_on(GpuContext::new()).unwrap();
    a.plan_append(&mut plan, &[(seq_a, 1)]).unwrap();
    let k = ctx().upload("k", &random(1, 2 * 32));
    let q = other.upload("q from another device", &random(2, 4 * 32));
    let out = ctx().storage_buffer("out", 4 * 32 * 4);
    let mut enc = ctx().device().create_command_encoder(&Default::default());
    a.append(&mut enc, &plan, 0, &k, &k, None).unwrap();
    let err = wgqa::attend(&mut enc, &a, &plan, 0, &q, &out).unwrap_err();
    assert!(matches!(&err, Error::Gpu(m) if m.contains("device")), "{err}");
}
