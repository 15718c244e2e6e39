// The GQA spectrum view on the main thread: a person picks a variant of the
// loaded model (MHA, GQA as shipped, MQA, Variable GQA under a budget), a
// method and a KV storage; the worker (spectrum-worker.js) converts and
// measures it, and each run adds a card and a point on the plot.
import { formatBytes } from './kv-plot.js';
import { drawSpectrumPlot } from './spectrum-plot.js';
import { MSG } from './protocol.js';

/** The paragraph perplexity is measured on (the opening of Pride and Prejudice, served from texts/). */
export const PARAGRAPH_URL = '/texts/spectrum-paragraph.txt';

const $ = (id) => document.getElementById(id);

const STEPS = {
  reading: 'Reading the model file…',
  converting: 'Converting in wasm… (the calibrated method and budgets run the model on the CPU first: up to a minute or two)',
  perplexity: 'Measuring perplexity on the paragraph…',
  generating: 'Generating the greedy continuation…',
};

/** "15×3 15×1": runs of equal KV-head counts over the layers, in layer order. */
function headRuns(heads) {
  const runs = [];
  for (const h of heads) {
    const last = runs[runs.length - 1];
    if (last?.h === h) last.n += 1;
    else runs.push({ h, n: 1 });
  }
  return runs.map((r) => `${r.n}×${r.h}`).join(' ');
}

/** What the form asks for: a label and Model.fromBytes's options. */
function requested(form, info) {
  const f = new FormData(form);
  const kvType = String(f.get('kvType'));
  const method = String(f.get('method'));
  const variant = String(f.get('variant'));
  if (variant === 'gqa') return { label: `shipped (${info.kvHeads} KV heads), ${kvType}`, options: { kvType } };
  if (variant === 'mha') return { label: `MHA (${info.qHeads}), ${kvType}`, options: { kvType, kvHeads: info.qHeads } };
  if (variant === 'mqa') return { label: `MQA, ${method}, ${kvType}`, options: { kvType, kvHeads: 1, method } };
  // The budget is in f16 bytes per token, as `wgqa convert --kv-budget`; the model view loads f16.
  const share = Number(f.get('budget'));
  const kvBudget = Math.round(share * info.kvBytesPerToken);
  return { label: `Variable GQA ${Math.round(share * 100)}%, ${method}, ${kvType}`, options: { kvType, kvBudget, method } };
}

function card(label, r) {
  const article = document.createElement('article');
  article.className = 'variant';
  article.dataset.perplexity = String(r.perplexity);
  article.dataset.bytesPerToken = String(r.kvBytesPerToken);
  const rows = [
    ['KV heads per layer', headRuns(r.kvHeadsPerLayer)],
    ['KV bytes per token', `${r.kvBytesPerToken} (${r.kvType})`],
    [`KV at ${r.contextTokens} tokens`, `${formatBytes(r.kvBytesAtContext)} (cache pages in use: ${formatBytes(r.kvBytesInUse)})`],
    [`KV at ${r.kvCapacityTokens} tokens`, formatBytes(r.kvBytesAtCapacity)],
    ['Decode', `${r.decodeTokensPerSecond.toFixed(2)} tokens/s`],
    ['Perplexity', `${r.perplexity.toFixed(2)} over ${r.scoredTokens} tokens`],
    ['Continuation', r.continuation],
    ['Took', `${r.convertSeconds.toFixed(1)} s to convert and load, ${r.perplexitySeconds.toFixed(1)} s for the perplexity`],
  ];
  const dl = document.createElement('dl');
  for (const [name, value] of rows) dl.append(Object.assign(document.createElement('dt'), { textContent: name }), Object.assign(document.createElement('dd'), { textContent: value }));
  article.append(Object.assign(document.createElement('h3'), { textContent: label }), dl);
  return article;
}

export function spectrumView(worker) {
  const form = $('spectrum-form');
  let info;
  let running;
  let paragraph;
  const points = [];
  const status = (text) => ($('spectrum-status').textContent = text);
  const setBusy = () => ($('spectrum-run').disabled = Boolean(running) || !info || paragraph === undefined);

  fetch(PARAGRAPH_URL)
    .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`HTTP ${r.status}`))))
    .then((text) => {
      paragraph = text;
      $('spectrum-paragraph').textContent = text;
      setBusy();
    })
    .catch((e) => status(`The paragraph ${PARAGRAPH_URL} could not be read: ${e.message}`));

  const variantPick = form.elements.variant;
  const showBudget = () => ($('spectrum-budget-label').hidden = variantPick.value !== 'variable');
  variantPick.addEventListener('change', showBudget);
  showBudget();

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    running = requested(form, info);
    setBusy();
    status(`${running.label}: starting…`);
    const f = new FormData(form);
    worker.postMessage({ type: MSG.VARIANT, options: running.options, text: paragraph, prompt: String(f.get('prompt')), maxTokens: Number(f.get('maxTokens')) });
  });

  return {
    /** Handles a worker message meant for this view; false if it was not (or the model view also needs it). */
    handle(data) {
      if (data.type === MSG.LOADED) {
        // The model view shows the load; here it only sizes the variants.
        info = data.info;
        status(`${info.name.replace(/\.gguf$/i, '')}: ${info.layers} layers, ${info.qHeads} query heads, ${info.kvHeads} KV heads as shipped. Pick a variant.`);
        setBusy();
        return false;
      }
      if (data.type === MSG.VARIANT_STEP) {
        status(`${running?.label}: ${STEPS[data.step]}`);
      } else if (data.type === MSG.VARIANT_DONE) {
        const r = data.result;
        $('spectrum-cards').append(card(running.label, r));
        points.push({ label: running.label, bytesPerToken: r.kvBytesPerToken, perplexity: r.perplexity });
        drawSpectrumPlot($('spectrum-plot'), points);
        status(`${running.label}: done.`);
        running = undefined;
        setBusy();
      } else if (data.type === MSG.ERROR && data.during === MSG.VARIANT) {
        status(`${running?.label ?? 'The variant'} failed: ${data.message}`);
        running = undefined;
        setBusy();
      } else {
        return false;
      }
      return true;
    },
  };
}
