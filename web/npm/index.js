// The `wgqa` npm package: the wasm-bindgen output, the JS `Model` over its
// `ModelCore` (model.js), cached downloads (download.js), and a `load()`
// that instantiates the module once, however many callers ask for it.
import init from './wgqa.js';

export { AttentionConfig, Context, KvCache, Sequence, Stats, referenceAttention, referenceTolerance } from './wgqa.js';
export { Model } from './model.js';
export { cachedModels, clearModelCache, downloadModel } from './download.js';

let ready;

/**
 * Loads the wasm module. With no argument it is fetched from next to this
 * file (browsers, Workers and bundlers); pass a URL, a Response or the bytes
 * to load it from elsewhere.
 */
export function load(source) {
  ready ??= init(source === undefined ? undefined : { module_or_path: source }).then(() => undefined);
  return ready;
}
