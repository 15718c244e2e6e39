// The kernel playground's measurement: prefill a random context, then time
// decode steps and compare every output with the CPU reference.
import { AttentionConfig, KvCache, referenceAttention } from './pkg/wgqa.js';

// |gpu - ref| <= atol + rtol * |ref|: the same tolerances as the Rust tests
// (tests/common/mod.rs), f16 and int8 looser because K/V are stored rounded.
export const TOLERANCE = {
  f32: { atol: 5e-4, rtol: 2e-3 },
  f16: { atol: 2e-3, rtol: 5e-3 },
  int8: { atol: 5e-3, rtol: 1e-2 },
};

/** Deterministic values in [-1, 1), so a run can be repeated exactly. */
function noise(seed, n) {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s >>> 8) / (1 << 23) - 1;
  }
  return out;
}

/** Largest error and largest error relative to the tolerance, over one output. */
function compare(gpu, ref, tol) {
  let maxError = 0;
  let worst = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(gpu[i] - ref[i]);
    maxError = Math.max(maxError, Number.isNaN(err) ? Infinity : err);
    worst = Math.max(worst, Number.isNaN(err) ? Infinity : err / (tol.atol + tol.rtol * Math.abs(ref[i])));
  }
  return { maxError, worst };
}

/**
 * Runs one playground case on `ctx`: `context` tokens of prefill, then
 * `steps` decode steps. Reports ms per decode step (median, each step is
 * upload + dispatch + readback), prefill ms, and the errors against the
 * reference. `onStep(i)` is told after each decode step.
 */
export async function measure(ctx, { qHeads, kvHeads, headDim, context, steps, dtype }, onStep = () => {}) {
  const cfg = new AttentionConfig(qHeads, kvHeads, headDim);
  cfg.setDtype(dtype);
  const total = context + steps;
  const cache = new KvCache(ctx, cfg, 1, 16, total);
  try {
    const seq = cache.addSequence();
    const [qw, kw] = [qHeads * headDim, kvHeads * headDim];
    const q = noise(1, total * qw);
    const k = noise(2, total * kw);
    const v = noise(3, total * kw);
    const tol = TOLERANCE[dtype];
    let errors = { maxError: 0, worst: 0 };
    const fold = (e) => (errors = { maxError: Math.max(errors.maxError, e.maxError), worst: Math.max(errors.worst, e.worst) });

    const t0 = performance.now();
    const pre = await cache.prefill(seq, q.subarray(0, context * qw), k.subarray(0, context * kw), v.subarray(0, context * kw));
    const prefillMs = performance.now() - t0;
    const positions = Uint32Array.from({ length: context }, (_, i) => i);
    const kPre = k.subarray(0, context * kw);
    fold(compare(pre, referenceAttention(cfg, q.subarray(0, context * qw), positions, kPre, v.subarray(0, context * kw)), tol));

    const times = [];
    for (let i = 0; i < steps; i++) {
      const pos = context + i;
      const [qt, kt, vt] = [q.subarray(pos * qw, (pos + 1) * qw), k.subarray(pos * kw, (pos + 1) * kw), v.subarray(pos * kw, (pos + 1) * kw)];
      const start = performance.now();
      const out = await cache.decode(seq, qt, kt, vt);
      times.push(performance.now() - start);
      const ref = referenceAttention(cfg, qt, new Uint32Array([pos]), k.subarray(0, (pos + 1) * kw), v.subarray(0, (pos + 1) * kw));
      fold(compare(out, ref, tol));
      onStep(i + 1);
    }
    times.sort((a, b) => a - b);
    return {
      msPerStep: times[times.length >> 1],
      prefillMs,
      maxError: errors.maxError,
      withinTolerance: errors.worst <= 1,
      tolerance: tol,
      kvBytes: cache.bytesInUse,
    };
  } finally {
    cache.free();
    cfg.free();
  }
}
