//! The benchmark report: a table for people, JSON for machines, and the
//! targets each ratio is held to on lavapipe.

use std::fmt;

use serde::Serialize;

use super::{Batch, Clock, DecodeCell, DispatchOverhead, GroupCell, Prefill, Speedups, TokenTime};
use crate::GpuContext;

#[derive(Clone, Debug, Serialize)]
pub struct Adapter {
    pub name: String,
    pub backend: String,
    pub f16: bool,
    pub subgroups: bool,
    /// See `Capabilities::loop_trip_limit`.
    pub loop_trip_limit: Option<u32>,
}

impl Adapter {
    pub(crate) fn of(ctx: &GpuContext) -> Self {
        let caps = ctx.capabilities();
        Adapter {
            name: ctx.adapter_info().name.clone(),
            backend: format!("{:?}", ctx.adapter_info().backend),
            f16: caps.shader_f16,
            subgroups: caps.subgroups,
            loop_trip_limit: caps.loop_trip_limit,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub adapter: Adapter,
    #[serde(serialize_with = "clock_name")]
    pub clock: Clock,
    pub runs: usize,
    pub reps: usize,
    pub copy_gbps: f64,
    /// The FMA kernel's rate, the compute roof.
    pub fma_gflops: f64,
    pub dispatch: DispatchOverhead,
    pub decode: Vec<DecodeCell>,
    pub group_scaling: Vec<GroupCell>,
    pub speedups: Speedups,
    pub prefill: Prefill,
    pub batch: Batch,
    /// Where a model's decode token goes, when a model was given.
    pub token: Option<TokenTime>,
}

fn clock_name<S: serde::Serializer>(c: &Clock, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(match c {
        Clock::GpuTimestamps => "gpu timestamps",
        Clock::WallTime => "wall time",
    })
}

/// A figure, its value and the target it must meet (`at_most` flips the test).
struct Target {
    figure: &'static str,
    value: f64,
    target: f64,
    at_most: bool,
}

impl Target {
    fn met(&self) -> bool {
        if self.at_most {
            self.value <= self.target
        } else {
            self.value >= self.target
        }
    }
}

impl Report {
    /// The targets of the speed issue, each from this report's own cells.
    fn targets(&self) -> Vec<Target> {
        let mha = |dtype: &str| {
            (self.decode.iter()).find(|c| {
                (c.q_heads, c.kv_heads, c.head_dim, c.ctx) == (32, 32, 128, 8192) && c.dtype == dtype
            })
        };
        let mha_copy = mha("f32").map_or(f64::NAN, |c| c.ratio_to_copy);
        let mha_f16 = match (mha("f32"), mha("f16")) {
            (Some(a), Some(b)) => a.ms / b.ms,
            _ => f64::NAN,
        };
        let group_32 =
            self.group_scaling.iter().find(|g| g.q_heads == 32).map_or(f64::NAN, |g| g.relative_time);
        let worst_roof = self.decode.iter().map(|c| c.ratio_to_roofline).fold(f64::INFINITY, f64::min);
        let s = &self.speedups;
        let t = |figure, value, target, at_most| Target { figure, value, target, at_most };
        let model = self.token.as_ref().map(|m| {
            [
                t("model decode: ratio to its roofline", m.model_ratio_to_roofline, 0.35, false),
                t("model decode tokens/s (step without sampling)", m.tokens_per_s, 15.0, false),
            ]
        });
        let mut targets = vec![
            t("MHA 32/32/128 ctx 8192 f32: ratio to copy", mha_copy, 0.7, false),
            t("every decode cell: ratio to roofline (worst cell)", worst_roof, 0.5, false),
            t("MHA / GQA-8 time", s.mha_over_gqa8, 3.0, false),
            t("MHA / MQA time", s.mha_over_mqa, 5.0, false),
            t("group scaling: time at 32 vs 8 query heads (8 KV heads)", group_32, 1.3, true),
            t("f16 over f32, MHA 32/32/128 ctx 8192", mha_f16, 1.5, false),
            t("speedup over naive repeat-KV, group 4", s.over_naive_g4, 3.0, false),
            t("split-K gain (MQA, ctx 8192)", s.split_k, 1.5, false),
        ];
        targets.extend(model.into_iter().flatten());
        targets
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.adapter;
        writeln!(f, "adapter: {} ({}), shader-f16 {}, subgroups {}", a.name, a.backend, a.f16, a.subgroups)?;
        if let Some(limit) = a.loop_trip_limit {
            writeln!(
                f,
                "loop-trip limit {limit}: a workgroup walks a bounded number of keys, \
                 so \"no split\" means the fewest splits that bound allows"
            )?;
        }
        writeln!(
            f,
            "timing: {}, median of {} runs of {} repetitions after a warm-up run",
            match self.clock {
                Clock::GpuTimestamps => "GPU timestamps",
                Clock::WallTime => "wall time",
            },
            self.runs,
            self.reps
        )?;
        writeln!(f, "copy kernel bandwidth (read + write): {:.2} GB/s", self.copy_gbps)?;
        writeln!(f, "FMA kernel rate: {:.1} GFLOP/s", self.fma_gflops)?;
        writeln!(f, "empty dispatch (own compute pass): {:.4} ms\n", self.dispatch.empty_dispatch_ms)?;

        writeln!(f, "decode attention, one sequence, one query token (roof = max(bytes/copy, FLOPs/FMA))")?;
        writeln!(
            f,
            "{:>7} {:>8} {:>8} {:>6} {:>5} {:>10} {:>8} {:>8} {:>9} {:>10} {:>6}",
            "q_heads",
            "kv_heads",
            "head_dim",
            "ctx",
            "dtype",
            "ms",
            "GB/s",
            "/copy",
            "MFLOP",
            "roof ms",
            "/roof"
        )?;
        for c in &self.decode {
            writeln!(
                f,
                "{:>7} {:>8} {:>8} {:>6} {:>5} {:>10.3} {:>8.2} {:>8.2} {:>9.1} {:>10.3} {:>6.2}",
                c.q_heads,
                c.kv_heads,
                c.head_dim,
                c.ctx,
                c.dtype,
                c.ms,
                c.gbps,
                c.ratio_to_copy,
                c.flops as f64 / 1e6,
                c.roofline_ms,
                c.ratio_to_roofline
            )?;
        }
        writeln!(f, "\ngroup scaling (8 KV heads, head dim 128, ctx 4096, f32)")?;
        for g in &self.group_scaling {
            writeln!(
                f,
                "  {:>2} query heads: {:>8.3} ms  {:>5.2}x the time of 8",
                g.q_heads, g.ms, g.relative_time
            )?;
        }
        let p = &self.prefill;
        writeln!(
            f,
            "\nprefill (32/8/128, f32, causal): {} tokens in {:.2} ms = {:.0} tokens/s; token by token {:.2} ms",
            p.tokens, p.ms, p.tokens_per_s, p.token_by_token_ms
        )?;
        let b = &self.batch;
        writeln!(
            f,
            "batch decode (32/8/128, f16): {} sequences of {}..{} tokens: {:.3} ms = {:.1} steps/s, {:.2} GB/s = {:.2} of copy",
            b.sequences,
            b.lens.first().unwrap_or(&0),
            b.lens.last().unwrap_or(&0),
            b.ms,
            b.steps_per_s,
            b.gbps,
            b.ratio_to_copy
        )?;
        if let Some(t) = &self.token {
            writeln!(
                f,
                "{} decode token at {} cached tokens: {:.1} ms = attention {:.1} + matmuls {:.1} + rest {:.1}",
                t.model, t.ctx, t.step_ms, t.attention_ms, t.matmul_ms, t.rest_ms
            )?;
            writeln!(
                f,
                "  {:.1} tokens/s; roofline {:.1} ms ({:.1} MB weights + {:.1} MB KV at copy bandwidth) = {:.2} of it",
                t.tokens_per_s,
                t.roofline_ms,
                t.weight_bytes as f64 / 1e6,
                t.kv_bytes as f64 / 1e6,
                t.model_ratio_to_roofline
            )?;
            writeln!(
                f,
                "  {} dispatches and {} submission(s) a token: about {:.1} ms of empty-dispatch overhead",
                t.dispatches,
                t.submissions,
                t.dispatches as f64 * self.dispatch.empty_dispatch_ms
            )?;
        }
        let s = &self.speedups;
        writeln!(f, "\nspeedups (ctx 4096, f32 unless noted)")?;
        for (name, v) in [
            ("MHA / GQA-8", s.mha_over_gqa8),
            ("MHA / MQA", s.mha_over_mqa),
            ("naive repeat-KV / ours, group 4", s.over_naive_g4),
            ("naive repeat-KV / ours, group 8", s.over_naive_g8),
            ("no split / split-K (MQA, ctx 8192)", s.split_k),
            ("f32 / f16 (ctx 8192)", s.f16_over_f32),
            ("f16 / int8 (ctx 8192)", s.int8_over_f16),
            ("f32 / int8 (ctx 8192)", s.int8_over_f32),
            ("token by token / prefill (512 tokens)", s.prefill_over_decode),
        ] {
            writeln!(f, "  {name:<40} {v:>6.2}x")?;
        }
        writeln!(f, "\ntargets (lavapipe)")?;
        for t in self.targets() {
            let op = if t.at_most { "<=" } else { ">=" };
            let verdict = if t.met() { "met" } else { "MISSED" };
            writeln!(f, "  {:<58} {:>6.2} {op} {:<4} {verdict}", t.figure, t.value, t.target)?;
        }
        Ok(())
    }
}
