// The model view on the main thread: the model picker, and what the worker
// reports about loading and generating; the worker (model-worker.js) does
// the work.
import { drawKvPlot, formatBytes } from './kv-plot.js';
import { MSG } from './protocol.js';

/** Where web/serve.mjs serves the repository's models/ folder. */
export const DEFAULT_MODEL_URL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';

const $ = (id) => document.getElementById(id);

/** Marks the listed model files this server lacks, so they cannot be picked. */
async function markMissing() {
  for (const option of $('model-pick').options) {
    if (!option.value.startsWith('/')) continue;
    const present = await fetch(option.value, { method: 'HEAD' }).then((r) => r.ok, () => false);
    option.disabled = !present;
    if (!present) option.textContent += ' (not on this server)';
  }
}

export function modelView(worker) {
  const form = $('prompt-form');
  let info;
  let loading = false;
  let generating = false;
  const setBusy = () => {
    $('generate').disabled = generating || loading || !info;
    $('reset').disabled = generating || loading || !info;
    $('stop').disabled = !generating;
    $('model-load').disabled = generating || loading;
  };

  /** `kvAt`: the worker's bytes at `contextTokens` (model-worker.js `kvAt`); none means an empty cache. */
  function plot(contextTokens, inUse, kvAt = { mha: 0, gqa: 0, mqa: 0, uncapped: 0 }) {
    const kind = (kv) => (kv === info.qHeads ? 'MHA' : kv === 1 ? 'MQA' : 'GQA');
    const rows = [
      { key: 'mha', label: `MHA (${info.qHeads} KV heads)`, bytes: kvAt.mha },
      { key: 'gqa', label: `${kind(info.kvHeads)} (${info.kvHeads}, shipped)`, bytes: kvAt.gqa },
      { key: 'mqa', label: 'MQA (1 KV head)', bytes: kvAt.mqa },
      { key: 'use', label: 'in use now', bytes: inUse },
    ];
    let windows = '';
    if (info.windowedLayers > 0) {
      // What the shipped layout would hold if no layer stopped at its window.
      rows.splice(2, 0, { key: 'uncapped', label: 'shipped, no window cap', bytes: kvAt.uncapped });
      windows = ` · ${info.windowedLayers} layers keep only their ${info.slidingWindow}-token window`;
    }
    drawKvPlot($('kv-plot'), rows, `at ${contextTokens} tokens · ${info.layers} layers × head dim ${info.headDim} · K and V${windows}`);
  }

  function onDone(s, kvAt) {
    $('decode-tps').textContent = s.decodeTokensPerSecond.toFixed(2);
    $('prefill-tps').textContent = s.prefillTokensPerSecond.toFixed(1);
    $('context-tokens').textContent = String(s.contextTokens);
    $('kv-in-use').textContent = formatBytes(s.kvBytesInUse);
    plot(s.contextTokens, s.kvBytesInUse, kvAt);
    $('output').dataset.state = 'done';
    $('output').dataset.stop = s.stopReason;
    generating = false;
    setBusy();
  }

  /** Asks the worker to load `source` ({ url } or { bytes, name }); bytes are transferred. */
  function startLoad(source, what) {
    loading = true;
    setBusy();
    $('load-progress').value = 0;
    $('load-status').textContent = `Loading ${what}…`;
    worker.postMessage({ type: MSG.LOAD, ...source }, source.bytes ? [source.bytes] : []);
  }

  async function loadFile(file) {
    if (!file) return;
    startLoad({ bytes: await file.arrayBuffer(), name: file.name }, file.name);
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const f = new FormData(form);
    const options = { chat: f.get('chat') === 'on' };
    for (const k of ['maxTokens', 'temperature', 'topK', 'topP', 'seed']) options[k] = Number(f.get(k));
    const prompt = String(f.get('prompt'));
    const out = $('output');
    out.replaceChildren();
    // A plain prompt is continued, so show it; a chat answer stands alone.
    if (!options.chat) out.append(Object.assign(document.createElement('span'), { className: 'prompt', textContent: prompt }));
    out.dataset.state = 'running';
    $('decode-tps').textContent = '…';
    generating = true;
    setBusy();
    worker.postMessage({ type: MSG.GENERATE, prompt, options });
  });
  $('stop').addEventListener('click', () => worker.postMessage({ type: MSG.STOP }));
  $('reset').addEventListener('click', () => {
    generating = true;
    setBusy();
    $('stop').disabled = true;
    worker.postMessage({ type: MSG.RESET });
  });

  // The picker: a listed model, a URL, or a file (chosen or dropped).
  const pick = $('model-pick');
  pick.addEventListener('change', () => {
    $('model-url-label').hidden = pick.value !== 'url';
    $('model-file-label').hidden = pick.value !== 'file';
  });
  $('model-picker').addEventListener('submit', (e) => {
    e.preventDefault();
    if (pick.value === 'file') return loadFile($('model-file').files[0]);
    const url = pick.value === 'url' ? $('model-url').value.trim() : pick.value;
    if (!url) {
      $('load-status').textContent = 'Type the URL of a GGUF file first.';
      return;
    }
    startLoad({ url }, url);
  });
  $('model-file').addEventListener('change', () => loadFile($('model-file').files[0]));
  const view = $('model');
  view.addEventListener('dragover', (e) => {
    e.preventDefault();
    view.dataset.drop = 'over';
  });
  view.addEventListener('dragleave', () => delete view.dataset.drop);
  view.addEventListener('drop', (e) => {
    e.preventDefault();
    delete view.dataset.drop;
    if (!loading && !generating) loadFile(e.dataTransfer.files[0]);
  });
  $('clear-cache').addEventListener('click', () => worker.postMessage({ type: MSG.CLEAR_CACHE }));
  markMissing();

  return {
    /**
     * Starts loading the first model once the GPU is ready (only once):
     * `?model=URL` in the page's address, else the default.
     */
    load() {
      if (loading || info) return;
      const url = new URLSearchParams(location.search).get('model') ?? DEFAULT_MODEL_URL;
      const listed = [...pick.options].find((o) => o.value === url);
      if (listed) pick.value = url;
      startLoad({ url }, listed?.textContent ?? url);
      worker.postMessage({ type: MSG.CACHE_INFO });
    },
    /** Handles a worker message meant for this view; false if it was not. */
    handle(data) {
      if (data.type === MSG.LOAD_PROGRESS) {
        const { loaded, total, source } = data;
        const from = source === 'cache' ? "from the browser's cache" : 'over the network';
        $('load-progress').value = total ? loaded / total : 0;
        $('load-status').textContent = total && loaded >= total
          ? `Read ${formatBytes(total)} ${from}; uploading weights to the GPU…`
          : source === 'cache'
            ? `Reading from the browser's cache: ${formatBytes(loaded)}`
            : `Downloading: ${formatBytes(loaded)}${total ? ` of ${formatBytes(total)}` : ''}`;
      } else if (data.type === MSG.LOADED) {
        info = data.info;
        loading = false;
        const from = { cache: "Read from the browser's cache.", network: "Downloaded, and kept in the browser's cache.", file: 'Read from a local file.' }[info.source];
        const kind = info.kvHeads === info.qHeads ? 'MHA' : info.kvHeads === 1 ? 'MQA' : 'GQA';
        $('load-progress').value = 1;
        $('load-status').textContent = `Loaded: ${info.layers} layers, ${info.qHeads} query heads sharing ${info.kvHeads} KV heads of dim ${info.headDim}. ${from}`;
        $('model-name').textContent = info.name.replace(/\.gguf$/i, '');
        $('model-shape').textContent = `Its ${info.layers} layers run as WGSL kernels on your GPU; its ${info.qHeads} query heads share ${info.kvHeads} KV heads (${kind}). Chat template: ${info.chatTemplate ?? 'none wgqa can render'}.`;
        $('kv-capacity-tokens').textContent = String(info.kvCapacityTokens);
        $('kv-capacity').textContent = formatBytes(info.kvCapacityBytes);
        setBusy();
      } else if (data.type === MSG.CACHED) {
        const bytes = data.entries.reduce((n, e) => n + e.bytes, 0);
        $('cache-status').textContent = data.entries.length
          ? `Cached: ${data.entries.length} model${data.entries.length > 1 ? 's' : ''}, ${formatBytes(bytes)}`
          : 'Cache empty';
      } else if (data.type === MSG.TOKEN) {
        $('output').append(data.text);
        if (data.tokensPerSecond !== null) $('decode-tps').textContent = data.tokensPerSecond.toFixed(2);
      } else if (data.type === MSG.DONE) {
        onDone(data.stats, data.kvAt);
      } else if (data.type === MSG.RESET_DONE) {
        $('output').replaceChildren();
        $('output').dataset.state = 'idle';
        $('context-tokens').textContent = '0';
        $('kv-in-use').textContent = formatBytes(0);
        plot(0, 0);
        generating = false;
        setBusy();
      } else if (data.type === MSG.ERROR && data.during === MSG.LOAD) {
        loading = false;
        $('load-progress').value = 0;
        const still = info ? ` (${$('model-name').textContent} is still loaded)` : '';
        $('load-status').textContent = `The model could not be loaded: ${data.message}${still}`;
        setBusy();
      } else if (data.type === MSG.ERROR && [MSG.GENERATE, MSG.RESET].includes(data.during)) {
        $('output').dataset.state = 'error';
        $('output').append(`\nError: ${data.message}`);
        generating = false;
        setBusy();
      } else if (data.type === MSG.ERROR && [MSG.CLEAR_CACHE, MSG.CACHE_INFO].includes(data.during)) {
        $('cache-status').textContent = `The cache could not be read or cleared: ${data.message}`;
      } else {
        return false;
      }
      return true;
    },
  };
}
