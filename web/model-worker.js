// The worker's side of the model view: loads a GGUF through wgqa's Model
// and streams generated text back as messages (protocol.js).
import { Model } from './wgqa/index.js';
import { MSG } from './protocol.js';

let model;

/** Posts download progress at most every 100 ms (fetch yields ~64 KB chunks). */
function throttled(post) {
  let last = 0;
  return (loaded, total) => {
    const now = performance.now();
    if (now - last < 100 && loaded !== total) return;
    last = now;
    post({ type: MSG.LOAD_PROGRESS, loaded, total });
  };
}

/** Loads the model at `url` (dropping any previous one); posts 'loaded' with its shape. */
export async function loadModel(ctx, url, post) {
  model?.free();
  model = undefined;
  model = await Model.fromUrl(ctx, url, throttled(post));
  post({
    type: MSG.LOADED,
    info: {
      qHeads: model.qHeads,
      kvHeads: model.kvHeads,
      headDim: model.headDim,
      layers: model.layers,
      contextLength: model.contextLength,
      kvCapacityTokens: model.kvCapacityTokens,
      kvCapacityBytes: model.kvCapacityBytes,
      // Per-token K+V bytes under MHA, the shipped GQA, and MQA.
      bytesPerToken: { mha: model.kvBytesPerToken(model.qHeads), gqa: model.kvBytesPerToken(model.kvHeads), mqa: model.kvBytesPerToken(1) },
    },
  });
}

/** Generates, posting each piece of text with the decode rate so far. */
export async function generate(prompt, options, post) {
  if (!model) throw new Error('no model is loaded');
  let pieces = 0;
  let first;
  const stats = await model.generate(prompt, options, (text) => {
    const now = performance.now();
    first ??= now;
    pieces += 1;
    // Rate over the pieces after the first (which also waited for the prefill).
    const tokensPerSecond = pieces > 1 ? ((pieces - 1) * 1000) / (now - first) : null;
    post({ type: MSG.TOKEN, text, pieces, tokensPerSecond });
  });
  // A wasm-bindgen object does not survive postMessage; copy its fields.
  const plain = {};
  for (const k of ['promptTokens', 'generatedTokens', 'contextTokens', 'prefillTokensPerSecond', 'decodeTokensPerSecond', 'kvBytesInUse', 'kvCapacityBytes', 'stopReason']) plain[k] = stats[k];
  stats.free();
  post({ type: MSG.DONE, stats: plain });
}

export function stop() {
  model?.stop();
}

export function reset(post) {
  model?.reset();
  post({ type: MSG.RESET_DONE });
}
