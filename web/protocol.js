// The messages between the demo page (app.js and its views) and its worker
// (worker.js): every message is { type, ...fields }, and both sides name the
// types through this one table.
export const MSG = Object.freeze({
  // Page → worker.
  INIT: 'init', // { limits }: start WebGPU and wgqa ('default': WebGPU's default limits only)
  RUN: 'run', // { params }: one playground case
  LOAD: 'load', // { url } or { bytes, name }: load a GGUF model (replacing the loaded one once it works)
  GENERATE: 'generate', // { prompt, options }
  STOP: 'stop', // end the generation in progress
  RESET: 'reset', // forget the conversation
  CLEAR_CACHE: 'clear-cache', // delete the downloaded models kept in the browser's cache
  CACHE_INFO: 'cache-info', // ask what the cache holds
  VARIANT: 'variant', // { options, text, prompt, maxTokens }: a GQA-spectrum variant of the loaded model, measured
  // Worker → page.
  READY: 'ready', // { adapter }: what the adapter offers and wgqa uses
  PROGRESS: 'progress', // { step }: a playground decode step is done
  RESULT: 'result', // { params, result }: a playground case's figures
  LOAD_PROGRESS: 'load-progress', // { loaded, total, source }: bytes read, source 'network' or 'cache'
  LOADED: 'loaded', // { info }: the model's name, shape, KV sizes and where its bytes came from
  TOKEN: 'token', // { text, pieces, tokensPerSecond }
  DONE: 'done', // { stats }: a generation ended
  RESET_DONE: 'reset-done',
  CACHED: 'cached', // { entries: [{ url, bytes }] }: what the cache holds now
  VARIANT_STEP: 'variant-step', // { step }: 'reading', 'converting', 'perplexity' or 'generating'
  VARIANT_DONE: 'variant-done', // { result }: the variant's KV heads, bytes, perplexity, decode rate and text
  ERROR: 'error', // { during, message }: `during` is the failed request's type
});
