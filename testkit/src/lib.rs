//! wgqa's shared test helpers, a dev-only crate so each test binary uses
//! what it needs without dead-code warnings: the attention harness here
//! (run on the GPU through the real cache, plan and kernels, and compare
//! with `wgqa::reference` within `wgqa::reference::tolerance`), the default
//! model's path and a GGUF writer for fixture files.

use std::sync::OnceLock;

pub mod gguf_writer;
pub mod model_file;
pub mod tokenizer_fixture;

use wgqa::reference::tolerance::Tolerance;
use wgqa::{
    reference, AdapterClass, AttentionConfig, ContextOptions, DType, FeatureUse, GpuContext, KvCache,
    KvCacheConfig, Plan, Rope, RopeLayout, SplitPolicy,
};

pub fn ctx() -> &'static GpuContext {
    variant_ctx(0)
}

/// A context without `shader-f16` and subgroups: f16 is packed in u32 and
/// tile maxima use workgroup memory.
pub fn ctx_fallback() -> &'static GpuContext {
    variant_ctx(1)
}

/// A context whose kernels are tiled for `class`, whatever the adapter is.
pub fn ctx_class(class: AdapterClass) -> &'static GpuContext {
    variant_ctx(2 + AdapterClass::ALL.iter().position(|&c| c == class).expect("a listed class"))
}

/// Kernel variants a test can force: the adapter's own, the fallback paths,
/// the tiling of every adapter class, and a GPU's tiling on the fallback
/// paths (a browser that reports no device type and offers no `shader-f16`).
pub const VARIANTS: [&str; 6] =
    ["native", "fallback", "cpu tiles", "integrated tiles", "discrete tiles", "discrete tiles, fallback"];

pub fn variant_ctx(i: usize) -> &'static GpuContext {
    static CTX: [OnceLock<GpuContext>; VARIANTS.len()] = [const { OnceLock::new() }; VARIANTS.len()];
    let off = ContextOptions { f16: FeatureUse::Off, subgroups: FeatureUse::Off, ..Default::default() };
    let opts = match i {
        0 => ContextOptions::default(),
        1 => off,
        5 => ContextOptions { adapter_class: Some(AdapterClass::DiscreteGpu), ..off },
        _ => ContextOptions { adapter_class: Some(AdapterClass::ALL[i - 2]), ..Default::default() },
    };
    CTX[i].get_or_init(|| {
        pollster::block_on(GpuContext::with_options(opts)).expect("a GPU adapter (lavapipe on CI)")
    })
}

/// Deterministic uniform values in [-1, 1).
pub fn random(seed: u64, n: usize) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// One sequence's full data: q, k, v for every position.
pub struct SeqData {
    pub q: Vec<f32>,
    pub k: Vec<f32>,
    pub v: Vec<f32>,
}

impl SeqData {
    pub fn new(cfg: &AttentionConfig, len: usize, seed: u64, q_scale: f32) -> Self {
        let (hq, hkv) = (cfg.q_heads as usize, cfg.kv_heads as usize);
        let (d, dv) = (cfg.head_dim as usize, cfg.v_head_dim as usize);
        SeqData {
            q: random(seed * 3, len * hq * d).into_iter().map(|x| x * q_scale).collect(),
            k: random(seed * 3 + 1, len * hkv * d),
            v: random(seed * 3 + 2, len * hkv * dv),
        }
    }
}

/// A non-finite value written into one sequence's K or V at one position.
#[derive(Clone, Copy, Debug)]
pub struct Poison {
    pub seq: usize,
    pub pos: usize,
    /// K when true, V otherwise.
    pub in_k: bool,
    pub value: f32,
}

/// Tokens each sequence appends in one step (0 skips it), and whether the
/// step also attends from them (a fill step only appends).
#[derive(Clone, Debug)]
pub struct Step {
    pub tokens: Vec<usize>,
    pub attend: bool,
}

/// A self-attention run over sequences of `lens` tokens, fed in `steps`.
/// Outputs are compared at the attended positions only.
#[derive(Clone)]
pub struct Run {
    pub cfg: AttentionConfig,
    pub lens: Vec<usize>,
    pub steps: Vec<Step>,
    pub page_size: u32,
    pub splits: SplitPolicy,
    pub rope: Option<(RopeLayout, f32)>,
    pub q_scale: f32,
    pub seed: u64,
    pub ctx: &'static GpuContext,
    /// Values placed into the data after it is generated.
    pub poison: Vec<Poison>,
}

impl Run {
    /// One prefill step of every token.
    pub fn new(cfg: AttentionConfig, lens: Vec<usize>) -> Self {
        let steps = vec![Step { tokens: lens.clone(), attend: true }];
        Run {
            cfg,
            lens,
            steps,
            page_size: 16,
            splits: SplitPolicy::default(),
            rope: None,
            q_scale: 1.0,
            seed: 1,
            ctx: ctx(),
            poison: Vec::new(),
        }
    }

    /// Prefill in chunks of at most `chunk` tokens per sequence per step.
    pub fn chunked(mut self, chunk: usize) -> Self {
        self.steps = chunks(&self.lens, chunk);
        self
    }

    /// Fill all but the last `queries` tokens without attending, then attend
    /// from the last ones in a single step (a multi-token decode).
    pub fn last(mut self, queries: usize) -> Self {
        let q: Vec<usize> = self.lens.iter().map(|&l| l.min(queries)).collect();
        let fill: Vec<usize> = self.lens.iter().zip(&q).map(|(l, q)| l - q).collect();
        self.steps = vec![Step { tokens: fill, attend: false }, Step { tokens: q, attend: true }];
        self
    }

    /// Fill `prefix` tokens, then decode one token per step.
    pub fn decode_after(mut self, prefix: usize) -> Self {
        let fill: Vec<usize> = self.lens.iter().map(|&l| prefix.min(l)).collect();
        let rest: Vec<usize> = self.lens.iter().zip(&fill).map(|(l, f)| l - f).collect();
        self.steps = vec![Step { tokens: fill, attend: false }];
        self.steps.extend(chunks(&rest, 1));
        self
    }

    pub fn with(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }

    pub fn data(&self) -> Vec<SeqData> {
        let mut data: Vec<SeqData> = (self.lens.iter().enumerate())
            .map(|(i, &len)| SeqData::new(&self.cfg, len, self.seed * 1000 + i as u64, self.q_scale))
            .collect();
        let (hkv, d, dv) =
            (self.cfg.kv_heads as usize, self.cfg.head_dim as usize, self.cfg.v_head_dim as usize);
        for p in &self.poison {
            let (values, width) = match p.in_k {
                true => (&mut data[p.seq].k, hkv * d),
                false => (&mut data[p.seq].v, hkv * dv),
            };
            values[p.pos * width..(p.pos + 1) * width].fill(p.value);
        }
        data
    }

    /// Positions each sequence attends from.
    pub fn queried(&self) -> Vec<Vec<u32>> {
        let mut done = vec![0usize; self.lens.len()];
        let mut out = vec![Vec::new(); self.lens.len()];
        for step in &self.steps {
            for (i, &n) in step.tokens.iter().enumerate() {
                if step.attend {
                    out[i].extend(done[i] as u32..(done[i] + n) as u32);
                }
                done[i] += n;
            }
        }
        out
    }

    /// GPU outputs at the queried positions, per sequence `[queries, q_heads, v_head_dim]`.
    pub fn gpu(&self) -> wgqa::Result<Vec<Vec<f32>>> {
        let ctx = self.ctx;
        let cfg = &self.cfg;
        let (hq, hkv) = (cfg.q_heads as usize, cfg.kv_heads as usize);
        let (d, dv) = (cfg.head_dim as usize, cfg.v_head_dim as usize);
        let data = self.data();
        let capacity: usize = self.lens.iter().map(|l| l.div_ceil(self.page_size as usize) + 1).sum();
        let mut cache = KvCache::new(
            ctx,
            KvCacheConfig::uniform(cfg.clone(), 1, self.page_size, capacity as u32 * self.page_size),
        )?;
        let rope = match self.rope {
            Some((layout, base)) => Some(Rope::new(ctx, layout, base, cfg.head_dim)?),
            None => None,
        };
        let seqs: Vec<_> = self.lens.iter().map(|_| cache.add_sequence()).collect();
        let mut plan = Plan::new(ctx);
        plan.set_split_policy(self.splits);
        let mut outs: Vec<Vec<f32>> = vec![Vec::new(); self.lens.len()];
        let mut done = vec![0usize; self.lens.len()];
        for step in &self.steps {
            let batch: Vec<(usize, usize)> =
                step.tokens.iter().copied().enumerate().filter(|&(_, n)| n > 0).collect();
            if batch.is_empty() {
                continue;
            }
            let ids: Vec<_> = batch.iter().map(|&(i, n)| (seqs[i], n as u32)).collect();
            cache.plan_append(&mut plan, &ids)?;
            let gather = |f: &dyn Fn(&SeqData) -> &Vec<f32>, width: usize| -> Vec<f32> {
                batch
                    .iter()
                    .flat_map(|&(i, n)| f(&data[i])[done[i] * width..(done[i] + n) * width].to_vec())
                    .collect()
            };
            let k = ctx.upload("k", &gather(&|s| &s.k, hkv * d));
            let v = ctx.upload("v", &gather(&|s| &s.v, hkv * dv));
            let mut enc = ctx.device().create_command_encoder(&Default::default());
            cache.append(&mut enc, &plan, 0, &k, &v, rope.as_ref())?;
            if !step.attend {
                ctx.queue().submit([enc.finish()]);
                batch.iter().for_each(|&(i, n)| done[i] += n);
                continue;
            }
            let q = ctx.upload("q", &gather(&|s| &s.q, hq * d));
            let out = ctx.storage_buffer("out", (plan.tokens() as usize * hq * dv * 4) as u64);
            if let Some(r) = &rope {
                r.apply(&mut enc, &cache, &plan, 0, &q)?;
            }
            wgqa::attend(&mut enc, &cache, &plan, 0, &q, &out)?;
            ctx.queue().submit([enc.finish()]);
            let o = pollster::block_on(ctx.read_f32(&out))?;
            let w = hq * dv;
            let mut at = 0;
            for &(i, n) in &batch {
                outs[i].extend_from_slice(&o[at * w..(at + n) * w]);
                at += n;
                done[i] += n;
            }
        }
        Ok(outs)
    }

    /// Reference outputs at the queried positions, per sequence. Keys are the
    /// whole sequence, which equals the GPU's view for causal configs and for
    /// non-causal runs that attend in a single last step.
    pub fn reference(&self) -> Vec<Vec<f32>> {
        let cfg = &self.cfg;
        let (hq, hkv) = (cfg.q_heads as usize, cfg.kv_heads as usize);
        let d = cfg.head_dim as usize;
        let queried = self.queried();
        self.data()
            .into_iter()
            .zip(&self.lens)
            .zip(queried)
            .map(|((mut s, &len), pos)| {
                let all: Vec<u32> = (0..len as u32).collect();
                if let Some((layout, base)) = self.rope {
                    reference::rope(layout, base, &mut s.q, hq, d, &all);
                    reference::rope(layout, base, &mut s.k, hkv, d, &all);
                }
                reference::round_to_storage(cfg.dtype, d, &mut s.k);
                reference::round_to_storage(cfg.dtype, cfg.v_head_dim as usize, &mut s.v);
                let q: Vec<f32> =
                    pos.iter().flat_map(|&p| s.q[p as usize * hq * d..][..hq * d].to_vec()).collect();
                reference::attention(cfg, &q, &pos, &s.k, &s.v)
            })
            .collect()
    }
}

fn chunks(lens: &[usize], chunk: usize) -> Vec<Step> {
    let mut left = lens.to_vec();
    let mut steps = Vec::new();
    while left.iter().any(|&l| l > 0) {
        steps.push(Step { tokens: left.iter().map(|&l| l.min(chunk)).collect(), attend: true });
        left.iter_mut().for_each(|l| *l -= (*l).min(chunk));
    }
    steps
}

/// Panics naming the first element outside the attention tolerance of
/// `dtype`, with the case.
pub fn assert_close(case: &str, dtype: DType, got: &[Vec<f32>], want: &[Vec<f32>]) {
    let tol = reference::tolerance::attention(dtype);
    let Tolerance { atol, rtol } = tol;
    assert_eq!(got.len(), want.len(), "{case}: sequence count");
    for (s, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{case}: length of sequence {s}");
        for (i, (&a, &b)) in g.iter().zip(w).enumerate() {
            let ok = a.is_finite() && (a - b).abs() <= tol.bound(b.abs());
            assert!(
                ok,
                "{case}: sequence {s} index {i}: gpu {a} vs reference {b} (atol {atol}, rtol {rtol})"
            );
        }
    }
}

/// Runs on the GPU and checks against the reference.
pub fn check(case: &str, run: &Run) {
    let got = run.gpu().unwrap_or_else(|e| panic!("{case}: {e}"));
    assert_close(case, run.cfg.dtype, &got, &run.reference());
}

/// Cases per GPU property test: `ci` by default, so the whole suite stays
/// within CI's time, or `PROPTEST_CASES` for a deeper run
/// (`PROPTEST_CASES=200 cargo test --test attention_props`).
pub fn gpu_cases(ci: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(ci)
}
