// The worker's side of the model view: loads a GGUF through wgqa's Model
// (from a URL, cached by the package, or from dropped bytes) and streams
// generated text back as messages (protocol.js).
import { Model, cachedModels, clearModelCache } from './wgqa/index.js';
import { MSG } from './protocol.js';

let model;
// Where the loaded model came from ({ url } or { bytes }), so the GQA
// spectrum view can make variants of it (spectrum-worker.js).
let source;

/** Posts read progress at most every 100 ms (fetch yields ~64 KB chunks); remembers the source. */
function throttled(post, seen) {
  let last = 0;
  return (loaded, total, source) => {
    seen.source = source;
    const now = performance.now();
    if (now - last < 100 && loaded !== total) return;
    last = now;
    post({ type: MSG.LOAD_PROGRESS, loaded, total, source });
  };
}

/**
 * Loads `{ url }` or `{ bytes, name }`; the loaded model stays until the new
 * one works. Posts 'loaded' with its shape, then what the cache holds.
 */
export async function loadModel(ctx, { url, bytes, name }, post) {
  const seen = { source: 'file' };
  const next = bytes ? Model.fromBytes(ctx, new Uint8Array(bytes)) : await Model.fromUrl(ctx, url, throttled(post, seen));
  model?.free();
  model = next;
  source = bytes ? { bytes: new Uint8Array(bytes) } : { url };
  post({
    type: MSG.LOADED,
    info: {
      name: name ?? decodeURIComponent(url.split('/').pop()),
      source: seen.source,
      chatTemplate: model.chatTemplate ?? null,
      qHeads: model.qHeads,
      kvHeads: model.kvHeads,
      headDim: model.headDim,
      layers: model.layers,
      contextLength: model.contextLength,
      kvCapacityTokens: model.kvCapacityTokens,
      kvCapacityBytes: model.kvCapacityBytes,
      windowedLayers: model.windowedLayers,
      slidingWindow: model.slidingWindow ?? null,
      // K+V bytes a token takes as loaded (f16): the GQA spectrum view's budgets are shares of it.
      kvBytesPerToken: model.kvBytesPerToken(),
    },
  });
  await cacheInfo(post);
}

/** Streams a generation (a chat turn when `options.chat`), posting each piece with the decode rate so far. */
export async function generate(prompt, { chat, ...options }, post) {
  if (!model) throw new Error('no model is loaded');
  const pieces = chat ? model.streamChat([{ role: 'user', content: prompt }], options) : model.stream(prompt, options);
  let count = 0;
  let first;
  for await (const text of pieces) {
    const now = performance.now();
    first ??= now;
    count += 1;
    // Rate over the pieces after the first (which also waited for the prefill).
    const tokensPerSecond = count > 1 ? ((count - 1) * 1000) / (now - first) : null;
    post({ type: MSG.TOKEN, text, pieces: count, tokensPerSecond });
  }
  const stats = model.stats;
  // A wasm-bindgen object does not survive postMessage; copy its fields.
  const plain = {};
  for (const k of ['promptTokens', 'generatedTokens', 'contextTokens', 'prefillTokensPerSecond', 'decodeTokensPerSecond', 'kvBytesInUse', 'kvCapacityBytes', 'stopReason']) plain[k] = stats[k];
  stats.free();
  post({ type: MSG.DONE, stats: plain, kvAt: kvAt(plain.contextTokens) });
}

/**
 * K+V bytes at `tokens` under MHA, the shipped GQA and MQA (sliding-window
 * layers capped at their window), and the shipped layout without that cap.
 */
function kvAt(tokens) {
  return {
    mha: model.kvBytesAt(tokens, model.qHeads),
    gqa: model.kvBytesAt(tokens),
    mqa: model.kvBytesAt(tokens, 1),
    uncapped: model.kvBytesPerToken(model.kvHeads) * tokens,
  };
}

/** The loaded model's source: `{ url }` or `{ bytes }`; undefined before the first load. */
export function loadedSource() {
  return source;
}

export function stop() {
  model?.stop();
}

export function reset(post) {
  model?.reset();
  post({ type: MSG.RESET_DONE });
}

export async function cacheInfo(post) {
  post({ type: MSG.CACHED, entries: await cachedModels() });
}

export async function clearCache(post) {
  await clearModelCache();
  await cacheInfo(post);
}
