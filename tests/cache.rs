//! The paged KV cache: sequence lifecycle, rollback, page reuse, memory
//! accounting, variable GQA, and a full cache that loses nothing.

use std::ops::Range;
use wgqa_testkit::*;

use wgqa::{reference, AttentionConfig, DType, GpuContext, KvCache, KvCacheConfig, Plan, SeqId};

/// Appends tokens `range` of `data` (for layer `layer`) to `seq`.
fn append(
    cache: &mut KvCache,
    plan: &mut Plan,
    seq: SeqId,
    data: &SeqData,
    layer: usize,
    range: Range<usize>,
) {
    let ctx = cache.context().clone();
    let (from, to) = (range.start, range.end);
    let cfg = cache.layer_config(layer).unwrap().clone();
    let (kw, vw) = ((cfg.kv_heads * cfg.head_dim) as usize, (cfg.kv_heads * cfg.v_head_dim) as usize);
    cache.plan_append(plan, &[(seq, (to - from) as u32)]).unwrap();
    let k = ctx.upload("k", &data.k[from * kw..to * kw]);
    let v = ctx.upload("v", &data.v[from * vw..to * vw]);
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    cache.append(&mut enc, plan, layer, &k, &v, None).unwrap();
    ctx.queue().submit([enc.finish()]);
}

/// Attends from the last token of `seq` in `layer` and compares with the
/// reference over `data`'s first `len` tokens.
fn check_last(case: &str, ctx: &GpuContext, cache: &KvCache, seq: SeqId, data: &SeqData, layer: usize) {
    check_tail(case, ctx, cache, seq, data, layer, 1);
}

/// As `check_last`, from the last `n` tokens.
fn check_tail(
    case: &str,
    ctx: &GpuContext,
    cache: &KvCache,
    seq: SeqId,
    data: &SeqData,
    layer: usize,
    n: usize,
) {
    let cfg = cache.layer_config(layer).unwrap().clone();
    let len = cache.len(seq).unwrap() as usize;
    let (d, dv, hq, hkv) =
        (cfg.head_dim as usize, cfg.v_head_dim as usize, cfg.q_heads as usize, cfg.kv_heads as usize);
    let mut plan = Plan::new(ctx);
    cache.plan_queries(&mut plan, &[(seq, n as u32, (len - n) as u32)]).unwrap();
    let q = &data.q[(len - n) * hq * d..len * hq * d];
    let out = ctx.storage_buffer("out", (n * hq * dv * 4) as u64);
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    wgqa::attend(&mut enc, cache, &plan, layer, &ctx.upload("q", q), &out).unwrap();
    ctx.queue().submit([enc.finish()]);
    let got = pollster::block_on(ctx.read_f32(&out)).unwrap();
    let (mut k, mut v) = (data.k[..len * hkv * d].to_vec(), data.v[..len * hkv * dv].to_vec());
    reference::round_to_storage(cfg.dtype, d, &mut k);
    reference::round_to_storage(cfg.dtype, dv, &mut v);
    let positions: Vec<u32> = (len - n..len).map(|p| p as u32).collect();
    let want = reference::attention(&cfg, q, &positions, &k, &v);
    assert_close(case, cfg.dtype, &[got], &[want]);
}

#[test]
fn truncate_then_reappend_overwrites_in_place() {
    let ctx = ctx();
    let cfg = AttentionConfig::new(4, 2, 32).unwrap();
    let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg.clone(), 1, 8, 256)).unwrap();
    let mut plan = Plan::new(ctx);
    let seq = cache.add_sequence();
    let first = SeqData::new(&cfg, 60, 1, 1.0);
    append(&mut cache, &mut plan, seq, &first, 0, 0..60);
    check_last("before rollback", ctx, &cache, seq, &first, 0);
    cache.truncate(seq, 21).unwrap();
    assert_eq!(cache.len(seq).unwrap(), 21);
    assert_eq!(cache.free_pages(), 32 - 3, "pages past the kept tokens are released");
    // New tokens 21..50 replace the old ones; 0..21 are kept.
    let mut second = SeqData::new(&cfg, 50, 2, 1.0);
    let (kw, vw) = (2 * 32, 2 * 32);
    second.k[..21 * kw].copy_from_slice(&first.k[..21 * kw]);
    second.v[..21 * vw].copy_from_slice(&first.v[..21 * vw]);
    append(&mut cache, &mut plan, seq, &second, 0, 21..50);
    check_last("after rollback", ctx, &cache, seq, &second, 0);
    cache.reset(seq).unwrap();
    assert_eq!((cache.len(seq).unwrap(), cache.free_pages()), (0, 32));
}

#[test]
fn freed_pages_are_reused_and_ids_go_stale() {
    let ctx = ctx();
    let cfg = AttentionConfig::new(2, 1, 16).unwrap();
    let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg.clone(), 1, 4, 32)).unwrap();
    let mut plan = Plan::new(ctx);
    let a = cache.add_sequence();
    let da = SeqData::new(&cfg, 32, 3, 1.0);
    append(&mut cache, &mut plan, a, &da, 0, 0..32);
    assert_eq!(cache.free_pages(), 0);
    cache.free(a).unwrap();
    assert_eq!(cache.free_pages(), 8);
    assert!(matches!(cache.len(a), Err(wgqa::Error::UnknownSequence(_))));
    let b = cache.add_sequence();
    assert_ne!(a, b, "a recycled slot gets a new generation");
    let db = SeqData::new(&cfg, 30, 4, 1.0);
    append(&mut cache, &mut plan, b, &db, 0, 0..30);
    check_last("reused pages", ctx, &cache, b, &db, 0);
    assert_eq!(cache.sequences(), vec![b]);
}

#[test]
fn memory_accounting() {
    let ctx = ctx();
    let layers = vec![
        AttentionConfig::new(9, 3, 64).unwrap().with_dtype(DType::F16),
        AttentionConfig::new(8, 8, 32).unwrap().with_v_head_dim(16),
    ];
    let mut cache =
        KvCache::new(ctx, KvCacheConfig { layers, page_size: 16, capacity_tokens: 100, max_sequences: None })
            .unwrap();
    let per_token = 3 * 128 * 2 + 8 * 48 * 4;
    assert_eq!(cache.bytes_per_token(), per_token);
    assert_eq!(cache.capacity_tokens(), 112, "capacity rounds up to whole pages");
    assert_eq!(cache.capacity_bytes(), 112 * per_token);
    let seq = cache.add_sequence();
    cache.plan_append(&mut Plan::new(ctx), &[(seq, 17)]).unwrap();
    assert_eq!(cache.bytes_in_use(), 32 * per_token);
}

#[test]
fn variable_gqa_layers_share_one_cache() {
    let ctx = ctx();
    let layers = vec![
        AttentionConfig::new(9, 3, 64).unwrap().with_dtype(DType::F16),
        AttentionConfig::new(8, 8, 32).unwrap().with_v_head_dim(16),
        AttentionConfig::new(12, 1, 128).unwrap().with_window(40),
    ];
    let mut cache = KvCache::new(
        ctx,
        KvCacheConfig { layers: layers.clone(), page_size: 16, capacity_tokens: 512, max_sequences: None },
    )
    .unwrap();
    let seq = cache.add_sequence();
    let data: Vec<SeqData> =
        layers.iter().enumerate().map(|(i, c)| SeqData::new(c, 150, 10 + i as u64, 1.0)).collect();
    let mut plan = Plan::new(ctx);
    cache.plan_append(&mut plan, &[(seq, 150)]).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    for (i, d) in data.iter().enumerate() {
        cache.append(&mut enc, &plan, i, &ctx.upload("k", &d.k), &ctx.upload("v", &d.v), None).unwrap();
    }
    ctx.queue().submit([enc.finish()]);
    for (i, d) in data.iter().enumerate() {
        check_last(&format!("layer {i}"), ctx, &cache, seq, d, i);
    }
}

#[test]
fn a_full_cache_errors_and_loses_nothing() {
    let ctx = ctx();
    let cfg = AttentionConfig::new(4, 1, 32).unwrap();
    let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg.clone(), 1, 16, 64)).unwrap();
    let mut plan = Plan::new(ctx);
    let (a, b) = (cache.add_sequence(), cache.add_sequence());
    let (da, db) = (SeqData::new(&cfg, 40, 5, 1.0), SeqData::new(&cfg, 30, 6, 1.0));
    append(&mut cache, &mut plan, a, &da, 0, 0..40);
    append(&mut cache, &mut plan, b, &db, 0, 0..10);
    // All 4 pages are held; b's 6 tokens fit its page, a's 25 need 2 more.
    let err = cache.plan_append(&mut plan, &[(b, 6), (a, 25)]).unwrap_err();
    assert!(matches!(err, wgqa::Error::CacheFull { needed: 2, free: 0, .. }), "{err}");
    assert_eq!((cache.len(a).unwrap(), cache.len(b).unwrap()), (40, 10));
    check_last("a after failed append", ctx, &cache, a, &da, 0);
    check_last("b after failed append", ctx, &cache, b, &db, 0);
    // What fits still goes in.
    append(&mut cache, &mut plan, b, &db, 0, 10..16);
    check_last("b after append", ctx, &cache, b, &db, 0);
}

#[test]
fn a_failed_append_rolls_the_reservation_back() {
    let ctx = ctx();
    let cfg = AttentionConfig::new(4, 2, 32).unwrap();
    let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg.clone(), 1, 16, 64)).unwrap();
    let mut plan = Plan::new(ctx);
    let seq = cache.add_sequence();
    let data = SeqData::new(&cfg, 20, 7, 1.0);
    append(&mut cache, &mut plan, seq, &data, 0, 0..20);
    let free = cache.free_pages();
    cache.plan_append(&mut plan, &[(seq, 30)]).unwrap();
    let short = ctx.upload("k", &[0f32; 8]);
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    let err = cache.append(&mut enc, &plan, 0, &short, &short, None).unwrap_err();
    assert!(matches!(err, wgqa::Error::WrongLength { what: "k buffer", .. }), "{err}");
    assert_eq!((cache.len(seq).unwrap(), cache.free_pages()), (20, free));
    check_last("after failed append", ctx, &cache, seq, &data, 0);
}

/// Appends tokens `range` of every layer's data under one plan.
fn append_all(cache: &mut KvCache, plan: &mut Plan, seq: SeqId, data: &[SeqData], range: Range<usize>) {
    let ctx = cache.context().clone();
    cache.plan_append(plan, &[(seq, range.len() as u32)]).unwrap();
    let mut enc = ctx.device().create_command_encoder(&Default::default());
    for (layer, d) in data.iter().enumerate() {
        let cfg = cache.layer_config(layer).unwrap().clone();
        let (kw, vw) = ((cfg.kv_heads * cfg.head_dim) as usize, (cfg.kv_heads * cfg.v_head_dim) as usize);
        let k = ctx.upload("k", &d.k[range.start * kw..range.end * kw]);
        let v = ctx.upload("v", &d.v[range.start * vw..range.end * vw]);
        cache.append(&mut enc, plan, layer, &k, &v, None).unwrap();
    }
    ctx.queue().submit([enc.finish()]);
}

#[test]
fn sliding_window_layers_keep_only_their_window() {
    let ctx = ctx();
    let (window, page) = (24u32, 8u32);
    let global = AttentionConfig::new(4, 1, 32).unwrap();
    let layers = vec![
        global.clone(),
        global.clone().with_window(window),
        global.with_dtype(DType::F16).with_window(window),
    ];
    let config = KvCacheConfig {
        layers: layers.clone(),
        page_size: page,
        capacity_tokens: 512,
        max_sequences: Some(1),
    };
    let mut cache = KvCache::new(ctx, config).unwrap();
    // The windowed pool holds one sequence's 2 windows and a page: 7 pages, not 64.
    let per_token = |l: &AttentionConfig| l.kv_bytes_per_token();
    let windowed = per_token(&layers[1]) + per_token(&layers[2]);
    assert_eq!(cache.capacity_bytes(), 512 * per_token(&layers[0]) + 7 * page as u64 * windowed);
    let seq = cache.add_sequence();
    let data: Vec<SeqData> =
        layers.iter().enumerate().map(|(i, c)| SeqData::new(c, 240, 20 + i as u64, 1.0)).collect();
    let mut plan = Plan::new(ctx);
    // Ragged chunks of up to a window to ten windows' length, checked
    // against the reference from every token of each chunk.
    let mut len = 0;
    for chunk in [1usize, 5, 17, 3, 24, 9, 2, 20, 11, 1, 24, 7, 23, 13, 1, 24, 18, 24, 13] {
        append_all(&mut cache, &mut plan, seq, &data, len..len + chunk);
        len += chunk;
        for (layer, d) in data.iter().enumerate() {
            check_tail(&format!("layer {layer} at {len}"), ctx, &cache, seq, d, layer, chunk);
        }
        assert_eq!(
            cache.pages_in_use(0).unwrap(),
            len.div_ceil(page as usize),
            "the global layer keeps every page"
        );
        // The window's pages before this chunk, and the chunk's.
        let first_kept = (len - chunk + 1).saturating_sub(window as usize) / page as usize;
        assert_eq!(cache.pages_in_use(1).unwrap(), len.div_ceil(page as usize) - first_kept, "at {len}");
    }
    assert_eq!(len, 240);
    let windowed_pages = cache.pages_in_use(1).unwrap() as u64;
    assert!(windowed_pages <= 7);
    let in_use = 30 * page as u64 * per_token(&layers[0]) + windowed_pages * page as u64 * windowed;
    assert_eq!(cache.bytes_in_use(), in_use);
    // An append longer than the pool holds is refused and changes nothing.
    let err = cache.plan_append(&mut plan, &[(seq, 60)]).unwrap_err();
    assert!(matches!(err, wgqa::Error::CacheFull { .. }), "{err}");
    assert_eq!((cache.len(seq).unwrap(), cache.bytes_in_use()), (240, in_use));

    // Rolling back across the window's edge: the keys a query at 225 sees
    // (from 202) are still held.
    cache.truncate(seq, 225).unwrap();
    for (layer, d) in data.iter().enumerate() {
        check_last(&format!("layer {layer} after rollback"), ctx, &cache, seq, d, layer);
    }
    // New tokens replace the rolled-back ones and are seen.
    let fresh: Vec<SeqData> = layers
        .iter()
        .zip(&data)
        .enumerate()
        .map(|(i, (c, old))| {
            let mut d = SeqData::new(c, 240, 40 + i as u64, 1.0);
            let (kw, vw) =
                ((c.kv_heads * c.head_dim) as usize * 225, (c.kv_heads * c.v_head_dim) as usize * 225);
            d.k[..kw].copy_from_slice(&old.k[..kw]);
            d.v[..vw].copy_from_slice(&old.v[..vw]);
            d
        })
        .collect();
    append_all(&mut cache, &mut plan, seq, &fresh, 225..240);
    for (layer, d) in fresh.iter().enumerate() {
        check_tail(&format!("layer {layer} after re-append"), ctx, &cache, seq, d, layer, 15);
    }
    // Further back, the window's released keys would be needed: an error
    // that changes nothing.
    let err = cache.truncate(seq, 200).unwrap_err();
    assert!(matches!(err, wgqa::Error::WindowDropped { position: 200, needed: 177, .. }), "{err}");
    let err = cache.plan_queries(&mut plan, &[(seq, 1, 150)]).unwrap_err();
    assert!(matches!(err, wgqa::Error::WindowDropped { .. }), "{err}");
    assert_eq!(cache.len(seq).unwrap(), 240);
    check_last("after refused rollback", ctx, &cache, seq, &fresh[1], 1);
    // Emptying always works and releases every pool's pages.
    cache.reset(seq).unwrap();
    assert_eq!((cache.bytes_in_use(), cache.pages_in_use(1).unwrap()), (0, 0));
    append_all(&mut cache, &mut plan, seq, &data, 0..30);
    check_tail("after reset", ctx, &cache, seq, &data[2], 2, 30);
}
