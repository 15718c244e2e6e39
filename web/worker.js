// The demo page's worker: runs wgqa off the main thread so the page stays
// responsive while the GPU (or SwiftShader) works. It starts the GPU and
// routes each request (protocol.js) to the playground (playground-worker.js),
// the model (model-worker.js) or the GQA spectrum (spectrum-worker.js); a
// failed request answers MSG.ERROR
// { during: its type, message }.
import { Context, load } from './wgqa/index.js';
import { MSG } from './protocol.js';
import { measure } from './playground-worker.js';
import * as model from './model-worker.js';
import { runVariant } from './spectrum-worker.js';

let ctx;
// The limits the page asked for ('default' or undefined: the adapter's).
let limits;
// The playground's contexts by kernel tiling; 'auto' is `ctx`.
const tiled = new Map();

/**
 * What the browser's adapter offers, asked of WebGPU directly: wgpu fills
 * only the adapter's description, and its WebGPU backend never requests
 * subgroups, so "offered" and "used" can differ.
 */
async function offered() {
  const adapter = await navigator.gpu.requestAdapter();
  const info = adapter?.info ?? {};
  return {
    vendor: [info.vendor, info.architecture, info.device].filter(Boolean).join(' '),
    offersF16: Boolean(adapter?.features.has('shader-f16')),
    offersSubgroups: Boolean(adapter?.features.has('subgroups')),
  };
}

async function handle(msg) {
  if (msg.type === MSG.INIT) {
    await load();
    limits = msg.limits;
    ctx = await Context.create(undefined, undefined, undefined, limits);
    tiled.set('auto', ctx);
    const a = { name: ctx.adapterName, shaderF16: ctx.shaderF16, subgroups: ctx.subgroups, tiling: ctx.tiling, runsOnCpu: ctx.runsOnCpu, limits: limits ?? 'adapter', maxStorageBufferBindingSize: ctx.maxStorageBufferBindingSize };
    postMessage({ type: MSG.READY, adapter: { ...(await offered()), ...a } });
  } else if (msg.type === MSG.RUN) {
    if (!ctx) throw new Error('the GPU context is not ready');
    const tiling = msg.params.tiling ?? 'auto';
    if (!tiled.has(tiling)) tiled.set(tiling, await Context.create(undefined, undefined, tiling, limits));
    const result = await measure(tiled.get(tiling), msg.params, (step) => postMessage({ type: MSG.PROGRESS, step }));
    postMessage({ type: MSG.RESULT, params: msg.params, result });
  } else if (msg.type === MSG.LOAD) {
    if (!ctx) throw new Error('the GPU context is not ready');
    await model.loadModel(ctx, msg, postMessage);
  } else if (msg.type === MSG.GENERATE) {
    await model.generate(msg.prompt, msg.options, postMessage);
  } else if (msg.type === MSG.STOP) {
    model.stop();
  } else if (msg.type === MSG.RESET) {
    model.reset(postMessage);
  } else if (msg.type === MSG.CLEAR_CACHE) {
    await model.clearCache(postMessage);
  } else if (msg.type === MSG.CACHE_INFO) {
    await model.cacheInfo(postMessage);
  } else if (msg.type === MSG.VARIANT) {
    if (!ctx) throw new Error('the GPU context is not ready');
    await runVariant(ctx, msg, postMessage);
  }
}

onmessage = (e) => {
  handle(e.data).catch((err) => postMessage({ type: MSG.ERROR, during: e.data.type, message: String(err?.message ?? err) }));
};
