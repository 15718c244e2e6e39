// Final normalisation shared by `attend.wgsl` (one key split) and
// `merge.wgsl` (several): given a row's max `m` (log2 domain), sum `l` and
// unnormalised output `o`, the output is `o * finish_scale(m, l, head)`.
// Attention-sink logits join the denominator only. A row that saw no key
// (l == 0, no sink) gets 0, never NaN.

override HAS_SINKS: bool = false;

fn finish_scale(m: f32, l: f32, head: u32) -> f32 {
    var top = m;
    var extra = 0.0;
    if HAS_SINKS {
        let sink = sinks[head] * LOG2E;
        top = max(m, sink);
        extra = exp2(sink - top);
    }
    let w = exp2(m - top);
    let denom = l * w + extra;
    return select(0.0, w / denom, denom > 0.0);
}
