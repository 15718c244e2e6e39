// The kernel playground on the main thread: its form, the shape's name, and
// what the worker reports about a run; the worker (playground-worker.js)
// does the work.
import { MSG } from './protocol.js';

const $ = (id) => document.getElementById(id);

/** MHA, MQA or GQA-G, as a person would name the chosen shape. */
function kindOf(q, kv) {
  if (!(q > 0 && kv > 0)) return '';
  if (q % kv !== 0) return `${q} query heads cannot be split evenly over ${kv} KV heads`;
  if (kv === q) return `MHA: every query head has its own KV head`;
  if (kv === 1) return `MQA: all ${q} query heads share one KV head`;
  return `GQA-${kv}: ${kv} KV heads, each shared by ${q / kv} query heads`;
}

export function playgroundView() {
  const form = $('playground-form');
  let worker;

  function params() {
    const f = new FormData(form);
    const num = (k) => Number(f.get(k));
    return { qHeads: num('qHeads'), kvHeads: num('kvHeads'), headDim: num('headDim'), context: num('context'), steps: num('steps'), dtype: f.get('dtype'), tiling: f.get('tiling') };
  }

  const showKind = () => {
    const p = params();
    $('kind').textContent = kindOf(p.qHeads, p.kvHeads);
  };
  form.addEventListener('input', showKind);
  showKind();

  function showResult(r, p) {
    $('ms-step').textContent = r.msPerStep.toFixed(2);
    $('ms-prefill').textContent = r.prefillMs.toFixed(1);
    $('max-error').textContent = r.maxError.toExponential(2);
    const bound = `|Δ| ≤ ${r.tolerance.atol} + ${r.tolerance.rtol}·|ref|`;
    $('verdict').textContent = r.withinTolerance ? `within tolerance (${bound})` : `OUTSIDE tolerance (${bound})`;
    $('verdict').className = r.withinTolerance ? 'pass' : 'fail';
    $('kv-bytes').textContent = r.kvBytes.toLocaleString('en');
    $('result').dataset.state = 'done';
    $('status').textContent = `Done: ${kindOf(p.qHeads, p.kvHeads)}, context ${p.context}.`;
    $('run').disabled = false;
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    $('run').disabled = true;
    $('result').dataset.state = 'running';
    $('status').textContent = 'Prefilling…';
    worker.postMessage({ type: MSG.RUN, params: params() });
  });

  return {
    /** Sends runs to `w` from now on (Run stays disabled until `ready`). */
    connect(w) {
      worker = w;
    },
    /** The worker is ready: runs may start. */
    ready() {
      $('run').disabled = false;
      $('status').textContent = 'Ready.';
    },
    /** Handles a worker message meant for this view; false if it was not. */
    handle(data) {
      if (data.type === MSG.PROGRESS) {
        $('status').textContent = `Decode step ${data.step} of ${params().steps}…`;
      } else if (data.type === MSG.RESULT) {
        showResult(data.result, data.params);
      } else if (data.type === MSG.ERROR) {
        // A failed run (the model view and app.js take theirs first).
        $('result').dataset.state = 'error';
        $('status').textContent = `Error: ${data.message}`;
        $('run').disabled = false;
      } else {
        return false;
      }
      return true;
    },
  };
}
