// The npm package's Model API in real Chromium, on the page's main thread:
// streams, chat with messages, cached downloads, and a context with only
// WebGPU's default limits. One SmolLM2, loaded once in such a context,
// serves every test (SwiftShader decodes about a token a second).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import { MODELS } from '../serve.mjs';
import { openDemo, waitReady } from './harness.mjs';

const MODEL = 'SmolLM2-135M-Instruct.Q4_1.gguf';
const MODEL_URL = `/models/${MODEL}`;
const skip = existsSync(MODELS + MODEL) ? false : `models/${MODEL} is missing: run scripts/fetch-model.sh first`;
// WebGPU's default maxStorageBufferBindingSize: 128 MiB.
const DEFAULT_BINDING = 134217728;
let demo;
let loaded;

before(async () => {
  if (skip) return;
  // The page's own worker runs with default limits too (and loads no model in this view).
  demo = await openDemo('?limits=default#playground');
  await waitReady(demo.page);
  loaded = await demo.page.evaluate(async (url) => {
    const wgqa = await import('/wgqa/index.js');
    await wgqa.load();
    const ctx = await wgqa.Context.create(undefined, undefined, undefined, 'default');
    const sources = new Set();
    const started = performance.now();
    const model = await wgqa.Model.fromUrl(ctx, url, (loaded, total, source) => sources.add(source));
    window.t = { wgqa, ctx, model, url };
    return { seconds: (performance.now() - started) / 1000, sources: [...sources], binding: ctx.maxStorageBufferBindingSize };
  }, MODEL_URL);
}, { timeout: 300_000 });

after(async () => demo?.close());

/** Runs `body` (an async function body; `t` holds wgqa, ctx, model, url) in the page. */
const inPage = (body, arg) => demo.page.evaluate(async ([src, a]) => new Function('t', 'arg', `return (async () => { ${src} })()`)(window.t, a), [body, arg]);

/** `body`'s thrown Error as { isError, message }, or { threw: false }. */
const thrown = (body) => inPage(`try { ${body}; return { threw: false }; } catch (e) { return { isError: e instanceof Error, message: e.message }; }`);

test('with only default limits, SmolLM2 downloads and loads, and the page says which limits it has', { skip }, async () => {
  assert.equal(loaded.binding, DEFAULT_BINDING);
  assert.deepEqual(loaded.sources, ['network']);
  assert.equal(await demo.page.locator('#adapter-limits').textContent(), "WebGPU's defaults (?limits=default): storage bindings up to 134.22 MB");
});

test('a model past the default limits names the limit and both sizes', { skip, timeout: 120_000 }, async () => {
  // 2^19 tokens × 3 KV heads × 64 dims × 2 bytes (f16) of K in one layer.
  const r = await thrown('t.model2 = t.wgqa.Model.fromBytes(t.ctx, await t.wgqa.downloadModel(t.url), 1 << 19)');
  assert.equal(r.isError, true, JSON.stringify(r));
  assert.equal(
    r.message,
    `the adapter cannot hold one layer's K or V pages: needs maxStorageBufferBindingSize >= ${2 ** 19 * 3 * 64 * 2}, the adapter has ${DEFAULT_BINDING}`,
  );
});

test('stream() yields the pieces generate() passes its callback, and returns the Stats', { skip, timeout: 120_000 }, async () => {
  const r = await inPage(`
    const opts = { maxTokens: 3 };
    const called = [];
    const stats = await t.model.generate('The capital of France is', opts, (p) => called.push(p));
    const streamed = [];
    const it = t.model.stream('The capital of France is', opts);
    let next;
    while (!(next = await it.next()).done) streamed.push(next.value);
    const s = next.value;
    return { called, streamed, generated: [stats.generatedTokens, s.generatedTokens], stop: s.stopReason, last: t.model.stats.generatedTokens };`);
  assert.deepEqual(r.streamed, r.called);
  assert.match(r.streamed.join(''), /^ Paris/);
  assert.deepEqual(r.generated, [3, 3]);
  assert.equal(r.stop, 'max-tokens');
  assert.equal(r.last, 3, 'model.stats is the last run');
});

test('leaving a stream early stops the generation, and the model is free again', { skip, timeout: 120_000 }, async () => {
  const r = await inPage(`
    const pieces = [];
    for await (const p of t.model.stream('Once upon a time', { maxTokens: 40 })) {
      pieces.push(p);
      if (pieces.length === 2) break;
    }
    const stopped = t.model.stats;
    const again = await t.model.generate('Hi', { maxTokens: 1 });
    return { pieces: pieces.length, stop: stopped.stopReason, generated: stopped.generatedTokens, again: again.generatedTokens };`);
  assert.equal(r.pieces, 2);
  assert.equal(r.stop, 'stopped');
  assert.ok(r.generated <= 3, `${r.generated} tokens after leaving at the second piece`);
  assert.equal(r.again, 1);
});

test('chat renders the ChatML prompt of the messages and greedy chat answers', { skip, timeout: 150_000 }, async () => {
  const messages = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'What is the capital of France?' },
  ];
  const r = await inPage(`
    const prompt = t.model.renderChat(arg);
    const pieces = [];
    for await (const p of t.model.streamChat(arg, { maxTokens: 7 })) pieces.push(p);
    const called = [];
    await t.model.chat(arg, { maxTokens: 1 }, (p) => called.push(p));
    return { template: t.model.chatTemplate, prompt, pieces, called, noSystem: t.model.renderChat([arg[1]]) };`, messages);
  assert.equal(r.template, 'chatml');
  assert.equal(r.prompt, '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n');
  // Without a system message SmolLM2's template writes its own.
  assert.match(r.noSystem, /^<\|im_start\|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<\|im_end\|>\n<\|im_start\|>user\n/);
  assert.match(r.pieces.join(''), /Paris/);
  assert.deepEqual(r.called, r.pieces.slice(0, r.called.length), 'the callback form streams the same answer');
});

test('malformed chat messages are readable Errors', { skip }, async () => {
  const cases = [
    ['"hello"', /messages must be an array of \{ role, content \} objects/],
    ['[]', /messages is empty/],
    ['[{ role: "robot", content: "x" }]', /messages\[0\]\.role must be "system", "user" or "assistant", got "robot"/],
    ['[{ role: "user", content: 3 }]', /messages\[0\]\.content must be a string/],
    ['[null]', /messages\[0\] must be a \{ role, content \} object/],
    ['[{ role: "user", content: "a" }, { role: "system", content: "b" }, { role: "user", content: "c" }]', /messages\[1\]: a system message may only come first/],
    ['[{ role: "user", content: "a" }, { role: "assistant", content: "b" }]', /the last message must be the user's/],
  ];
  for (const [messages, pattern] of cases) {
    for (const call of [`t.model.renderChat(${messages})`, `await t.model.chat(${messages})`]) {
      const r = await thrown(call);
      assert.equal(r.isError, true, `${call}: ${JSON.stringify(r)}`);
      assert.match(r.message, pattern, call);
    }
  }
  const r = await thrown('await t.model.chat([{ role: "user", content: "a" }], { chat: true })');
  assert.match(r.message, /options\.chat is for generate\(\)/);
});

test('a second download of the model comes from the cache, whole', { skip, timeout: 60_000 }, async () => {
  const r = await inPage(`
    const sources = new Set();
    const bytes = await t.wgqa.downloadModel(t.url, (l, n, s) => sources.add(s));
    return { sources: [...sources], length: bytes.length, cached: await t.wgqa.cachedModels() };`);
  const size = statSync(MODELS + MODEL).size;
  assert.deepEqual(r.sources, ['cache']);
  assert.equal(r.length, size);
  assert.deepEqual(r.cached.map((e) => [new URL(e.url).pathname, e.bytes]), [[MODEL_URL, size]]);
});

test('a cut-off cache entry is deleted and fetched again, never returned', { skip, timeout: 60_000 }, async () => {
  const r = await inPage(`
    // What a cut-off entry looks like: the package's cache and length header
    // (download.js) over fewer bytes than the header says.
    const cache = await caches.open('wgqa-models');
    const key = new URL(t.url, location.href).href;
    const whole = Number((await cache.match(key)).headers.get('x-wgqa-length'));
    await cache.put(key, new Response(new Uint8Array(1 << 20), { headers: { 'x-wgqa-length': String(whole) } }));
    const sources = [];
    const bytes = await t.wgqa.downloadModel(t.url, (l, n, s) => sources.at(-1) !== s && sources.push(s));
    const entry = await cache.match(key);
    return { whole, sources, length: bytes.length, magic: String.fromCharCode(...bytes.subarray(0, 4)), stored: (await entry.arrayBuffer()).byteLength };`);
  assert.deepEqual(r.sources, ['cache', 'network'], 'read the cut-off entry, then refetched');
  assert.equal(r.length, r.whole);
  assert.equal(r.magic, 'GGUF');
  assert.equal(r.stored, r.whole, 'the cache holds the whole file again');
});

test('a cached file cut short of its own tensor data is refetched, not loaded', { skip, timeout: 120_000 }, async () => {
  const r = await inPage(`
    // An entry whose stored length agrees with its bytes, but the GGUF in
    // them ends before its tensors do: only parsing it can tell.
    const cache = await caches.open('wgqa-models');
    const key = new URL(t.url, location.href).href;
    const head = (await t.wgqa.downloadModel(t.url)).slice(0, 1 << 20);
    await cache.put(key, new Response(head, { headers: { 'x-wgqa-length': String(head.length) } }));
    const sources = [];
    const model = await t.wgqa.Model.fromUrl(t.ctx, t.url, (l, n, s) => sources.at(-1) !== s && sources.push(s));
    const layers = model.layers;
    model.free();
    const stored = (await (await cache.match(key)).arrayBuffer()).byteLength;
    return { sources, layers, stored };`);
  assert.deepEqual(r.sources, ['cache', 'network']);
  assert.equal(r.layers, 30);
  assert.equal(r.stored, statSync(MODELS + MODEL).size, 'the whole file is cached again');
});

test('a download that fails midway, or a file that does not load, caches nothing', { skip, timeout: 60_000 }, async () => {
  // Promises a megabyte, sends a tenth of it, then drops the connection.
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-length': 1 << 20, 'access-control-allow-origin': '*' });
    res.write(Buffer.alloc(1 << 17));
    setTimeout(() => res.destroy(), 50);
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  try {
    const url = `http://127.0.0.1:${server.address().port}/cut.gguf`;
    const r = await inPage(`
      const error = async (f) => { try { await f(); } catch (e) { return { isError: e instanceof Error, message: e.message }; } };
      return {
        cut: await error(() => t.wgqa.downloadModel(arg)),
        html: await error(() => t.wgqa.Model.fromUrl(t.ctx, '/index.html')),
        cached: (await t.wgqa.cachedModels()).map((e) => new URL(e.url).pathname),
      };`, url);
    assert.equal(r.cut?.isError, true, JSON.stringify(r));
    assert.ok(r.cut.message.startsWith(`could not fetch ${url}: `), r.cut.message);
    assert.match(r.html?.message, /GGUF|magic/i);
    assert.deepEqual(r.cached, [MODEL_URL], 'only the model that loaded is cached');
  } finally {
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
  }
});

test('clearModelCache() empties the cache', { skip }, async () => {
  const r = await inPage('return { cleared: await t.wgqa.clearModelCache(), left: await t.wgqa.cachedModels(), again: await t.wgqa.clearModelCache(t.url) };');
  assert.deepEqual(r, { cleared: true, left: [], again: false });
  assert.deepEqual(demo.errors, []);
});
