// The `wgqa` npm package: the wasm-bindgen output plus a `load()` that
// instantiates the module once, however many callers ask for it.
import init from './wgqa.js';

export { AttentionConfig, Context, KvCache, Model, Sequence, Stats, referenceAttention, referenceTolerance } from './wgqa.js';

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
