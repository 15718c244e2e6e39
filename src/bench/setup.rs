//! Caches, plans and buffers for the benchmark cases. K/V pages are reserved
//! but not written: timing does not depend on the values.

use crate::gpu::unit_groups;
use crate::{attend, AttentionConfig, GpuContext, KvCache, KvCacheConfig, Plan, Result, SplitPolicy};

pub(crate) const PAGE_SIZE: u32 = 16;

/// One decode step over sequences of `lens` tokens (the last one new), for
/// timing attention alone.
pub struct Decode {
    pub(crate) cfg: AttentionConfig,
    pub(crate) cache: KvCache,
    plan: Plan,
    q: wgpu::Buffer,
    out: wgpu::Buffer,
    lens: Vec<u32>,
}

impl Decode {
    pub fn new(ctx: &GpuContext, cfg: &AttentionConfig, lens: &[u32], split: SplitPolicy) -> Result<Self> {
        let capacity: u32 = lens.iter().map(|l| l.next_multiple_of(PAGE_SIZE)).sum();
        let mut cache = KvCache::new(ctx, KvCacheConfig::uniform(cfg.clone(), 1, PAGE_SIZE, capacity))?;
        let seqs: Vec<_> = lens.iter().map(|_| cache.add_sequence()).collect();
        let mut plan = Plan::new(ctx);
        plan.set_split_policy(split);
        let past: Vec<_> = seqs.iter().zip(lens).filter(|(_, &l)| l > 1).map(|(&s, &l)| (s, l - 1)).collect();
        if !past.is_empty() {
            cache.plan_append(&mut plan, &past)?;
        }
        let step: Vec<_> = seqs.iter().map(|&s| (s, 1)).collect();
        cache.plan_append(&mut plan, &step)?;
        let n = lens.len() as u64 * cfg.q_heads as u64 * 4;
        Ok(Decode {
            q: ctx.storage_buffer("bench q", n * cfg.head_dim as u64),
            out: ctx.storage_buffer("bench out", n * cfg.v_head_dim as u64),
            cfg: cfg.clone(),
            cache,
            plan,
            lens: lens.to_vec(),
        })
    }

    /// KV bytes one step reads.
    pub fn kv_bytes(&self) -> u64 {
        self.lens.iter().map(|&l| l as u64).sum::<u64>() * self.cfg.kv_bytes_per_token()
    }

    /// Attention FLOPs of one step: per query head and key, a dot product
    /// over head_dim and a weighted sum over v_head_dim (2 FLOPs an element).
    pub fn flops(&self) -> u64 {
        let per_key = 2 * (self.cfg.head_dim + self.cfg.v_head_dim) as u64 * self.cfg.q_heads as u64;
        self.lens.iter().map(|&l| l as u64).sum::<u64>() * per_key
    }

    pub fn encode(&self, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        attend(enc, &self.cache, &self.plan, 0, &self.q, &self.out)
    }
}

/// Plain copy of `bytes` bytes: the bandwidth roof.
pub(crate) struct Copy {
    ctx: GpuContext,
    src: wgpu::Buffer,
    dst: wgpu::Buffer,
}

impl Copy {
    pub fn new(ctx: &GpuContext, bytes: u64) -> Self {
        Copy {
            src: ctx.storage_buffer("bench copy src", bytes),
            dst: ctx.storage_buffer("bench copy dst", bytes),
            ctx: ctx.clone(),
        }
    }

    /// Bytes read plus written.
    pub fn bytes(&self) -> u64 {
        self.src.size() + self.dst.size()
    }

    pub fn encode(&self, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        use crate::gpu::shader::{KvStorage, ShaderVariant};
        let variant = ShaderVariant { kernel: &super::COPY, kv: KvStorage::F32, subgroups: false };
        let pipeline = self.ctx.pipeline(variant, &Default::default())?;
        let groups = (self.dst.size() / 16).div_ceil(256).min(65535) as u32;
        self.ctx.dispatch(enc, &pipeline, &[&self.src, &self.dst], [groups, 1, 1])
    }
}

/// The naive baseline: repeat the KV heads into an MHA cache, then run
/// attention with one query head per KV head, same kernel and tiling.
pub(crate) struct Naive {
    gqa: Decode,
    mha: Decode,
}

impl Naive {
    pub fn new(ctx: &GpuContext, cfg: &AttentionConfig, len: u32) -> Result<Self> {
        let mha_cfg = AttentionConfig { kv_heads: cfg.q_heads, ..cfg.clone() };
        Ok(Naive {
            gqa: Decode::new(ctx, cfg, &[len], SplitPolicy::default())?,
            mha: Decode::new(ctx, &mha_cfg, &[len], SplitPolicy::default())?,
        })
    }

    pub fn encode(&self, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        use crate::attention::kv_storage;
        use crate::gpu::shader::ShaderVariant;
        use crate::gpu::Constants;
        let ctx = self.gqa.cache.context();
        let cfg = &self.gqa.cfg;
        let variant = ShaderVariant {
            kernel: &super::REPEAT_KV,
            kv: kv_storage(&ctx.capabilities(), cfg.dtype),
            subgroups: false,
        };
        let (src, dst) = (self.gqa.cache.layer(0)?, self.mha.cache.layer(0)?);
        for (from, to, dim) in [(&src.k, &dst.k, cfg.head_dim), (&src.v, &dst.v, cfg.v_head_dim)] {
            let constants = Constants::default()
                .set("KV_HEADS", cfg.kv_heads)
                .set("GROUP", cfg.group_size())
                .set("DIM4", dim / 4 + variant.kv.scale_words())
                .set("PAGE_SIZE", PAGE_SIZE);
            let pipeline = ctx.pipeline(variant, &constants)?;
            let vec4s = to.size() / variant.kv.vec4_bytes();
            ctx.dispatch(enc, &pipeline, &[from, to], unit_groups(vec4s))?;
        }
        self.mha.encode(enc)
    }
}

/// Independent FMA chains (`bench/fma.wgsl`): the compute roof. With
/// `iters` 0 and one workgroup it is an empty dispatch.
pub(crate) struct Fma {
    ctx: GpuContext,
    seed: wgpu::Buffer,
    out: wgpu::Buffer,
    workgroups: u32,
    iters: u32,
}

/// Threads per FMA workgroup and FLOPs per thread per iteration (8 vec4 FMAs), as in the WGSL.
const FMA_WG: u32 = 64;
const FMA_FLOPS_PER_ITER: u64 = 8 * 4 * 2;

impl Fma {
    pub fn new(ctx: &GpuContext, workgroups: u32, iters: u32) -> Self {
        Fma {
            seed: ctx.upload("bench fma seed", &[0.999f32, 0.999, 0.999, 0.999, 1e-3, 1e-3, 1e-3, 1e-3]),
            out: ctx.storage_buffer("bench fma out", workgroups as u64 * FMA_WG as u64 * 16),
            ctx: ctx.clone(),
            workgroups,
            iters,
        }
    }

    pub fn flops(&self) -> u64 {
        self.workgroups as u64 * FMA_WG as u64 * self.iters as u64 * FMA_FLOPS_PER_ITER
    }

    pub fn encode(&self, enc: &mut wgpu::CommandEncoder) -> Result<()> {
        use crate::gpu::shader::{KvStorage, ShaderVariant};
        use crate::gpu::Constants;
        let variant = ShaderVariant { kernel: &super::FMA, kv: KvStorage::F32, subgroups: false };
        let pipeline = self.ctx.pipeline(variant, &Constants::default().set("ITERS", self.iters))?;
        self.ctx.dispatch(enc, &pipeline, &[&self.seed, &self.out], [self.workgroups, 1, 1])
    }
}
