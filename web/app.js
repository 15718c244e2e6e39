// The demo page's main thread: it only renders; wgqa runs in worker.js.
// Three views share one worker: the model (default, model-view.js), the
// kernel playground (playground-view.js) and the GQA spectrum
// (spectrum-view.js); this file shows the adapter and switches between them.
import { modelView } from './model-view.js';
import { playgroundView } from './playground-view.js';
import { spectrumView } from './spectrum-view.js';
import { formatBytes } from './kv-plot.js';
import { MSG } from './protocol.js';

const $ = (id) => document.getElementById(id);

function notice(text) {
  $('notice').textContent = text;
  $('notice').hidden = false;
}

/** "used", or why not: the adapter lacks it, or wgpu does not request it. */
function featureUse(used, offered, fast, fallback) {
  if (used) return `used (${fast})`;
  if (offered) return `offered by the browser, not used: wgpu's WebGPU backend does not request it (${fallback})`;
  return `not available (${fallback})`;
}

/** The view the URL's hash names; the model view unless it names another. */
const currentView = () => ({ '#playground': 'playground', '#spectrum': 'spectrum' })[location.hash] ?? 'model';

function showView() {
  const view = currentView();
  for (const section of document.querySelectorAll('section.view')) section.hidden = section.id !== view;
  for (const link of document.querySelectorAll('nav a')) {
    if (link.id === `nav-${view}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
}

function showAdapter(a) {
  $('adapter-name').textContent = a.name || a.vendor || '(the browser does not say)';
  $('adapter-vendor').textContent = a.vendor || '—';
  $('adapter-f16').textContent = featureUse(a.shaderF16, a.offersF16, 'native f16', 'f16 packed in u32');
  $('adapter-subgroups').textContent = featureUse(a.subgroups, a.offersSubgroups, 'subgroup sums', 'workgroup-memory fallback');
  $('adapter-limits').textContent = `${a.limits === 'default' ? "WebGPU's defaults (?limits=default)" : 'all the adapter offers'}: storage bindings up to ${formatBytes(a.maxStorageBufferBindingSize)}`;
  $('adapter-runs-on').textContent = a.runsOnCpu
    ? 'the CPU: this WebGPU adapter is a software rasteriser, so expect CPU speeds (a few tokens/s for this model), far below a GPU\'s'
    : `a GPU (kernels tiled for a ${a.tiling.replace('-', ' ')})`;
}

/** Starts the worker; the playground's form works (shape names) even without one. */
function start(playground) {
  if (!('gpu' in navigator)) {
    notice('This browser has no WebGPU (navigator.gpu is missing), so wgqa cannot run here. Try a recent Chrome or Edge, or enable WebGPU in your browser’s settings.');
    $('adapter-name').textContent = 'none';
    $('load-status').textContent = 'No WebGPU, so no model.';
    return;
  }
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  worker.onerror = (e) => notice(`The worker failed to start: ${e.message ?? 'unknown error'}`);
  playground.connect(worker);
  const model = modelView(worker);
  const spectrum = spectrumView(worker);
  let ready = false;
  // The model downloads only once a view that needs it is shown, so the
  // playground alone never pays for 98 MB; the spectrum makes its variants
  // from the model view's model.
  const loadIfShown = () => ready && currentView() !== 'playground' && model.load();
  addEventListener('hashchange', loadIfShown);
  worker.onmessage = ({ data }) => {
    if (spectrum.handle(data) || model.handle(data)) return;
    if (data.type === MSG.READY) {
      showAdapter(data.adapter);
      playground.ready();
      ready = true;
      loadIfShown();
    } else if (data.type === MSG.ERROR && data.during === MSG.INIT) {
      $('adapter-name').textContent = 'none';
      $('load-status').textContent = 'No GPU, so no model.';
      notice(`WebGPU could not start here: ${data.message}`);
    } else {
      playground.handle(data);
    }
  };
  // `?limits=default` asks for WebGPU's default limits only, as the smallest adapter has.
  worker.postMessage({ type: MSG.INIT, limits: new URLSearchParams(location.search).get('limits') ?? undefined });
}

addEventListener('hashchange', showView);
showView();
start(playgroundView());
