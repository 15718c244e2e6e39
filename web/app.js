// The demo page's main thread: it only renders; wgqa runs in worker.js.
// Two views share one worker: the model (default) and the kernel playground.
import { modelView } from './model-view.js';

const $ = (id) => document.getElementById(id);
const form = $('playground-form');

function notice(text) {
  $('notice').textContent = text;
  $('notice').hidden = false;
}

/** MHA, MQA or GQA-G, as a person would name the chosen shape. */
function kindOf(q, kv) {
  if (!(q > 0 && kv > 0)) return '';
  if (q % kv !== 0) return `${q} query heads cannot be split evenly over ${kv} KV heads`;
  if (kv === q) return `MHA: every query head has its own KV head`;
  if (kv === 1) return `MQA: all ${q} query heads share one KV head`;
  return `GQA-${kv}: ${kv} KV heads, each shared by ${q / kv} query heads`;
}

/** "used", or why not: the adapter lacks it, or wgpu does not request it. */
function featureUse(used, offered, fast, fallback) {
  if (used) return `used (${fast})`;
  if (offered) return `offered by the browser, not used: wgpu's WebGPU backend does not request it (${fallback})`;
  return `not available (${fallback})`;
}

function params() {
  const f = new FormData(form);
  const num = (k) => Number(f.get(k));
  return { qHeads: num('qHeads'), kvHeads: num('kvHeads'), headDim: num('headDim'), context: num('context'), steps: num('steps'), dtype: f.get('dtype'), tiling: f.get('tiling') };
}

function showKind() {
  const p = params();
  $('kind').textContent = kindOf(p.qHeads, p.kvHeads);
}

/** The view the URL's hash names; the model view unless it says playground. */
const currentView = () => (location.hash === '#playground' ? 'playground' : 'model');

function showView() {
  const view = currentView();
  for (const section of document.querySelectorAll('section.view')) section.hidden = section.id !== view;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.id === `nav-${view}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function start() {
  if (!('gpu' in navigator)) {
    notice('This browser has no WebGPU (navigator.gpu is missing), so wgqa cannot run here. Try a recent Chrome or Edge, or enable WebGPU in your browser’s settings.');
    $('adapter-name').textContent = 'none';
    $('load-status').textContent = 'No WebGPU, so no model.';
    return;
  }
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  worker.onerror = (e) => notice(`The worker failed to start: ${e.message ?? 'unknown error'}`);
  const model = modelView(worker);
  let ready = false;
  // The model downloads only once its view is shown, so the playground
  // alone never pays for 98 MB.
  const loadIfShown = () => ready && currentView() === 'model' && model.load();
  addEventListener('hashchange', loadIfShown);
  worker.onmessage = ({ data }) => {
    if (model.handle(data)) return;
    if (data.type === 'ready') {
      const a = data.adapter;
      $('adapter-name').textContent = a.name || a.vendor || '(the browser does not say)';
      $('adapter-vendor').textContent = a.vendor || '—';
      $('adapter-f16').textContent = featureUse(a.shaderF16, a.offersF16, 'native f16', 'f16 packed in u32');
      $('adapter-subgroups').textContent = featureUse(a.subgroups, a.offersSubgroups, 'subgroup sums', 'workgroup-memory fallback');
      $('adapter-runs-on').textContent = a.runsOnCpu
        ? 'the CPU: this WebGPU adapter is a software rasteriser, so expect CPU speeds (a few tokens/s for this model), far below a GPU\'s'
        : `a GPU (kernels tiled for a ${a.tiling.replace('-', ' ')})`;
      $('run').disabled = false;
      $('status').textContent = 'Ready.';
      ready = true;
      loadIfShown();
    } else if (data.type === 'progress') {
      $('status').textContent = `Decode step ${data.step} of ${params().steps}…`;
    } else if (data.type === 'result') {
      const r = data.result;
      $('ms-step').textContent = r.msPerStep.toFixed(2);
      $('ms-prefill').textContent = r.prefillMs.toFixed(1);
      $('max-error').textContent = r.maxError.toExponential(2);
      $('verdict').textContent = r.withinTolerance
        ? `within tolerance (|Δ| ≤ ${r.tolerance.atol} + ${r.tolerance.rtol}·|ref|)`
        : `OUTSIDE tolerance (|Δ| ≤ ${r.tolerance.atol} + ${r.tolerance.rtol}·|ref|)`;
      $('verdict').className = r.withinTolerance ? 'pass' : 'fail';
      $('kv-bytes').textContent = r.kvBytes.toLocaleString('en');
      $('result').dataset.state = 'done';
      $('status').textContent = `Done: ${kindOf(data.params.qHeads, data.params.kvHeads)}, context ${data.params.context}.`;
      $('run').disabled = false;
    } else if (data.type === 'error') {
      if (data.during === 'init') {
        $('adapter-name').textContent = 'none';
        $('load-status').textContent = 'No GPU, so no model.';
        notice(`WebGPU could not start here: ${data.message}`);
      } else {
        $('result').dataset.state = 'error';
        $('status').textContent = `Error: ${data.message}`;
        $('run').disabled = false;
      }
    }
  };
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    $('run').disabled = true;
    $('result').dataset.state = 'running';
    $('status').textContent = 'Prefilling…';
    worker.postMessage({ type: 'run', params: params() });
  });
  worker.postMessage({ type: 'init' });
}

addEventListener('hashchange', showView);
showView();
form.addEventListener('input', showKind);
showKind();
start();
