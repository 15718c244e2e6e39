// Runs wgqa off the main thread so the page stays responsive while the GPU
// (or SwiftShader) works. Messages in: {type: 'init'}, {type: 'run', params}
// (playground), and 'load' {url}, 'generate' {prompt, options}, 'stop',
// 'reset' (model); messages out: 'ready' (adapter info), 'progress',
// 'result', the model's 'load-progress', 'loaded', 'token', 'done',
// 'reset-done', and 'error' {during, message}.
import init, { Context } from './pkg/wgqa.js';
import { measure } from './playground.js';
import * as model from './model.js';

let ctx;
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
  if (msg.type === 'init') {
    await init();
    ctx = await Context.create();
    tiled.set('auto', ctx);
    const a = { name: ctx.adapterName, shaderF16: ctx.shaderF16, subgroups: ctx.subgroups, tiling: ctx.tiling, runsOnCpu: ctx.runsOnCpu };
    postMessage({ type: 'ready', adapter: { ...(await offered()), ...a } });
  } else if (msg.type === 'run') {
    if (!ctx) throw new Error('the GPU context is not ready');
    const tiling = msg.params.tiling ?? 'auto';
    if (!tiled.has(tiling)) tiled.set(tiling, await Context.create(undefined, undefined, tiling));
    const result = await measure(tiled.get(tiling), msg.params, (step) => postMessage({ type: 'progress', step }));
    postMessage({ type: 'result', params: msg.params, result });
  } else if (msg.type === 'load') {
    if (!ctx) throw new Error('the GPU context is not ready');
    await model.loadModel(ctx, msg.url, postMessage);
  } else if (msg.type === 'generate') {
    await model.generate(msg.prompt, msg.options, postMessage);
  } else if (msg.type === 'stop') {
    model.stop();
  } else if (msg.type === 'reset') {
    model.reset(postMessage);
  }
}

onmessage = (e) => {
  handle(e.data).catch((err) => postMessage({ type: 'error', during: e.data.type, message: String(err?.message ?? err) }));
};
