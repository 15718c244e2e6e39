// The messages between the demo page (app.js and its views) and its worker
// (worker.js): every message is { type, ...fields }, and both sides name the
// types through this one table.
export const MSG = Object.freeze({
  // Page → worker.
  INIT: 'init', // start WebGPU and wgqa
  RUN: 'run', // { params }: one playground case
  LOAD: 'load', // { url }: load a GGUF model
  GENERATE: 'generate', // { prompt, options }
  STOP: 'stop', // end the generation in progress
  RESET: 'reset', // forget the conversation
  // Worker → page.
  READY: 'ready', // { adapter }: what the adapter offers and wgqa uses
  PROGRESS: 'progress', // { step }: a playground decode step is done
  RESULT: 'result', // { params, result }: a playground case's figures
  LOAD_PROGRESS: 'load-progress', // { loaded, total }: download bytes
  LOADED: 'loaded', // { info }: the model's shape and KV sizes
  TOKEN: 'token', // { text, pieces, tokensPerSecond }
  DONE: 'done', // { stats }: a generation ended
  RESET_DONE: 'reset-done',
  ERROR: 'error', // { during, message }: `during` is the failed request's type
});
