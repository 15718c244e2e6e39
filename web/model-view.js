// The model view on the main thread: renders what the worker reports about
// loading and generating; the worker (model-worker.js) does the work.
import { drawKvPlot, formatBytes } from './kv-plot.js';
import { MSG } from './protocol.js';

/** Where web/serve.mjs serves the repository's models/ folder. */
export const DEFAULT_MODEL_URL = '/models/SmolLM2-135M-Instruct.Q4_1.gguf';

const $ = (id) => document.getElementById(id);

export function modelView(worker) {
  const form = $('prompt-form');
  let info;
  let loading = false;
  const setBusy = (busy) => {
    $('generate').disabled = busy || !info;
    $('reset').disabled = busy || !info;
    $('stop').disabled = !busy;
  };

  function plot(contextTokens, inUse) {
    const b = info.bytesPerToken;
    const kind = (kv) => (kv === info.qHeads ? 'MHA' : kv === 1 ? 'MQA' : 'GQA');
    drawKvPlot(
      $('kv-plot'),
      [
        { key: 'mha', label: `MHA (${info.qHeads} KV heads)`, bytes: b.mha * contextTokens },
        { key: 'gqa', label: `${kind(info.kvHeads)} (${info.kvHeads}, shipped)`, bytes: b.gqa * contextTokens },
        { key: 'mqa', label: 'MQA (1 KV head)', bytes: b.mqa * contextTokens },
        { key: 'use', label: 'in use now', bytes: inUse },
      ],
      `at ${contextTokens} tokens · ${info.layers} layers × head dim ${info.headDim} · K and V`,
    );
  }

  function onDone(s) {
    $('decode-tps').textContent = s.decodeTokensPerSecond.toFixed(2);
    $('prefill-tps').textContent = s.prefillTokensPerSecond.toFixed(1);
    $('context-tokens').textContent = String(s.contextTokens);
    $('kv-in-use').textContent = formatBytes(s.kvBytesInUse);
    plot(s.contextTokens, s.kvBytesInUse);
    $('output').dataset.state = 'done';
    $('output').dataset.stop = s.stopReason;
    setBusy(false);
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
    setBusy(true);
    worker.postMessage({ type: MSG.GENERATE, prompt, options });
  });
  $('stop').addEventListener('click', () => worker.postMessage({ type: MSG.STOP }));
  $('reset').addEventListener('click', () => {
    setBusy(true);
    $('stop').disabled = true;
    worker.postMessage({ type: MSG.RESET });
  });

  return {
    /** Starts loading the default model once the GPU is ready (only once). */
    load() {
      if (loading || info) return;
      loading = true;
      $('load-status').textContent = 'Downloading the model…';
      worker.postMessage({ type: MSG.LOAD, url: DEFAULT_MODEL_URL });
    },
    /** Handles a worker message meant for this view; false if it was not. */
    handle(data) {
      if (data.type === MSG.LOAD_PROGRESS) {
        const { loaded, total } = data;
        $('load-progress').value = total ? loaded / total : 0;
        $('load-status').textContent = total && loaded >= total
          ? `Downloaded ${formatBytes(total)}; uploading weights to the GPU…`
          : `Downloading: ${formatBytes(loaded)}${total ? ` of ${formatBytes(total)}` : ''}`;
      } else if (data.type === MSG.LOADED) {
        info = data.info;
        loading = false;
        $('load-progress').value = 1;
        $('load-status').textContent = `Loaded: ${info.layers} layers, ${info.qHeads} query heads sharing ${info.kvHeads} KV heads of dim ${info.headDim}.`;
        $('kv-capacity-tokens').textContent = String(info.kvCapacityTokens);
        $('kv-capacity').textContent = formatBytes(info.kvCapacityBytes);
        setBusy(false);
      } else if (data.type === MSG.TOKEN) {
        $('output').append(data.text);
        if (data.tokensPerSecond !== null) $('decode-tps').textContent = data.tokensPerSecond.toFixed(2);
      } else if (data.type === MSG.DONE) {
        onDone(data.stats);
      } else if (data.type === MSG.RESET_DONE) {
        $('output').replaceChildren();
        $('output').dataset.state = 'idle';
        $('context-tokens').textContent = '0';
        $('kv-in-use').textContent = formatBytes(0);
        plot(0, 0);
        setBusy(false);
      } else if (data.type === MSG.ERROR && data.during === MSG.LOAD) {
        loading = false;
        $('load-status').textContent = `The model could not be loaded: ${data.message}`;
      } else if (data.type === MSG.ERROR && [MSG.GENERATE, MSG.RESET].includes(data.during)) {
        $('output').dataset.state = 'error';
        $('output').append(`\nError: ${data.message}`);
        setBusy(false);
      } else {
        return false;
      }
      return true;
    },
  };
}
