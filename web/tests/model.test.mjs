// The model view in real Chromium: the page loads SmolLM2 from /models/,
// streams text for a typed prompt, and draws the KV-cache plot. SwiftShader
// decodes a few tokens a second, so prompts and lengths are short.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { MODELS } from '../serve.mjs';
import { openDemo, TARGET, waitReady } from './harness.mjs';

const MODEL = 'SmolLM2-135M-Instruct.Q4_1.gguf';
const GEMMA = 'gemma-3-270m-q4_k_m.gguf';
const skip = existsSync(MODELS + MODEL) ? false : `models/${MODEL} is missing: run scripts/fetch-model.sh first`;
const figures = {};
let demo;
/** The load status after the first load, before any test changes it. */
let firstStatus;

before(async () => {
  if (skip) return;
  demo = await openDemo();
  await waitReady(demo.page);
  const started = performance.now();
  firstStatus = await loadSettled(demo.page);
  figures.loadSeconds = (performance.now() - started) / 1000;
  assert.match(firstStatus, /^Loaded:/, `load status: ${firstStatus}`);
}, { timeout: 300_000 });

after(async () => {
  if (demo) {
    await mkdir(TARGET, { recursive: true });
    await writeFile(`${TARGET}web-model-figures.json`, JSON.stringify(figures, null, 2) + '\n');
    await demo.close();
  }
});

/** Waits until the page has a model loaded or says why not; resolves to the load status. */
async function loadSettled(page) {
  await page.waitForFunction(
    () => !document.getElementById('generate').disabled || /could not/.test(document.getElementById('load-status').textContent),
    null,
    { timeout: 240_000 },
  );
  return page.locator('#load-status').textContent();
}

/** Types a prompt, sets greedy options, presses Generate; resolves to the generated text and the pieces seen streaming. */
async function generate(page, prompt, { maxTokens }) {
  await page.fill('#prompt', prompt);
  await page.fill('input[name=maxTokens]', String(maxTokens));
  await page.fill('input[name=temperature]', '0');
  // Plain continuation: the test prompts are not chat turns.
  await page.setChecked('input[name=chat]', false);
  // Count text appended while it runs: streaming, not one final paste.
  await page.evaluate(() => {
    window.pieces = 0;
    window.observer?.disconnect();
    window.observer = new MutationObserver((records) => (window.pieces += records.reduce((n, r) => n + r.addedNodes.length, 0)));
    window.observer.observe(document.getElementById('output'), { childList: true });
  });
  await page.click('#generate');
  await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('output').dataset.state), null, { timeout: 180_000 });
  return page.evaluate(() => {
    const out = document.getElementById('output');
    const shown = out.querySelector('.prompt')?.textContent ?? '';
    return { state: out.dataset.state, text: out.textContent.slice(shown.length), pieces: window.pieces };
  });
}

test('greedy "The capital of France is" answers " Paris"', { skip, timeout: 200_000 }, async () => {
  const started = performance.now();
  const r = await generate(demo.page, 'The capital of France is', { maxTokens: 4 });
  figures.parisSeconds = (performance.now() - started) / 1000;
  assert.equal(r.state, 'done', r.text);
  assert.match(r.text, /^ Paris/);
});

test('a typed prompt streams at least 8 tokens of sensible text', { skip, timeout: 200_000 }, async () => {
  const { page } = demo;
  const started = performance.now();
  // A story opening: greedy decoding continues it well past 8 tokens
  // (a chat answer may end sooner with EOS).
  const r = await generate(page, 'Once upon a time, in a small village,', { maxTokens: 10 });
  figures.storySeconds = (performance.now() - started) / 1000;
  assert.equal(r.state, 'done', r.text);
  // Each text node appended after the prompt is one streamed piece.
  assert.ok(r.pieces - 1 >= 8, `${r.pieces - 1} pieces streamed: ${JSON.stringify(r.text)}`);
  assert.ok((r.text.match(/[A-Za-z]{2,}/g) ?? []).length >= 5, `not words: ${JSON.stringify(r.text)}`);
  figures.decodeTokensPerSecond = Number(await page.locator('#decode-tps').textContent());
  figures.prefillTokensPerSecond = Number(await page.locator('#prefill-tps').textContent());
  assert.ok(figures.decodeTokensPerSecond > 0, 'decode tokens/s shown');
});

test('the KV plot and stats show this model\'s MHA, GQA and MQA sizes', { skip }, async () => {
  const { page } = demo;
  const context = Number(await page.locator('#context-tokens').textContent());
  assert.ok(context > 8, `context tokens: ${context}`);
  const bar = async (key) => ({
    width: Number(await page.locator(`#bar-${key}`).getAttribute('width')),
    // The label a person reads, e.g. "1.06 MB".
    shown: await page.locator(`#bar-${key}-label`).textContent(),
  });
  const [mha, gqa, mqa, use] = [await bar('mha'), await bar('gqa'), await bar('mqa'), await bar('use')];
  // SmolLM2: 9 query heads, 3 KV heads; f16 K and V of 64 dims in 30 layers.
  const mb = (s) => Number(/^([\d.]+) (MB|kB)$/.exec(s)[1]) * (s.endsWith('kB') ? 1e-3 : 1);
  assert.ok(Math.abs(mb(mha.shown) - context * 9 * 64 * 2 * 2 * 30 / 1e6) < 0.01, `MHA ${mha.shown} at ${context} tokens`);
  assert.ok(Math.abs(gqa.width / mha.width - 1 / 3) < 1e-3, `GQA/MHA width ${gqa.width}/${mha.width}`);
  assert.ok(Math.abs(mqa.width / mha.width - 1 / 9) < 1e-3, `MQA/MHA width ${mqa.width}/${mha.width}`);
  assert.ok(Math.abs(mb(gqa.shown) * 3 - mb(mha.shown)) < 0.02, `${gqa.shown} is a third of ${mha.shown}`);
  // Whole 16-token pages: at least the GQA bytes, less than one page more.
  assert.ok(use.width >= gqa.width && mb(use.shown) - mb(gqa.shown) < 16 * 3 * 64 * 4 * 30 / 1e6, `in use ${use.shown}`);
  assert.match(await page.locator('#kv-in-use').textContent(), /^[\d.]+ (MB|kB)$/);
  assert.match(await page.locator('#adapter-name').textContent(), /\S/);
  assert.match(await page.locator('#adapter-limits').textContent(), /^all the adapter offers: storage bindings up to [\d.]+ (MB|GB)$/);
  assert.match(await page.locator('#adapter-f16').textContent(), /^(used|offered|not available)/);
  await mkdir(TARGET, { recursive: true });
  await page.screenshot({ path: `${TARGET}web-model.png`, fullPage: true });
});

test('a prompt longer than the KV cache is a readable error on the page', { skip, timeout: 60_000 }, async () => {
  const r = await generate(demo.page, 'word '.repeat(2100), { maxTokens: 1 });
  assert.equal(r.state, 'error');
  assert.match(r.text, /Error: the prompt is \d+ tokens; the KV cache holds 2048/);
});

test('a 404 URL and a non-GGUF file reject with readable Errors', { skip, timeout: 60_000 }, async () => {
  const results = await demo.page.evaluate(async () => {
    const wgqa = await import('/wgqa/index.js');
    await wgqa.load();
    const ctx = await wgqa.Context.create();
    const attempt = async (f) => {
      try {
        await f();
        return { threw: false };
      } catch (e) {
        return { isError: e instanceof Error, message: e.message };
      }
    };
    return {
      missing: await attempt(() => wgqa.Model.fromUrl(ctx, '/models/no-such-model.gguf')),
      html: await attempt(() => wgqa.Model.fromUrl(ctx, '/index.html')),
      bytes: await attempt(() => wgqa.Model.fromBytes(ctx, new Uint8Array(64))),
    };
  });
  assert.deepEqual(results.missing, { isError: true, message: 'could not fetch /models/no-such-model.gguf: HTTP 404 Not Found' });
  for (const r of [results.html, results.bytes]) {
    assert.equal(r.isError, true, JSON.stringify(r));
    assert.match(r.message, /GGUF|magic/i);
  }
  assert.deepEqual(demo.errors, []);
});

/** Waits for the load status to change from `before`; resolves to the new one. */
async function nextStatus(page, before) {
  await page.waitForFunction((b) => document.getElementById('load-status').textContent !== b && !/^Loading/.test(document.getElementById('load-status').textContent), before, { timeout: 60_000 });
  return page.locator('#load-status').textContent();
}

test('the picker lists SmolLM2, Gemma 3, a URL and a file; a bad URL is a readable error', { skip, timeout: 60_000 }, async () => {
  const { page } = demo;
  const options = await page.$$eval('#model-pick option', (os) => os.map((o) => ({ value: o.value, text: o.textContent, disabled: o.disabled })));
  assert.deepEqual(options.map((o) => o.value), [`/models/${MODEL}`, `/models/${GEMMA}`, 'url', 'file']);
  assert.equal(options[0].disabled, false);
  // Gemma 3 can be picked exactly when its file is on the server.
  assert.equal(options[1].disabled, !existsSync(MODELS + GEMMA), JSON.stringify(options[1]));
  await page.selectOption('#model-pick', 'url');
  await page.fill('#model-url', '/models/no-such-model.gguf');
  const before = await page.locator('#load-status').textContent();
  await page.click('#model-load');
  const status = await nextStatus(page, before);
  assert.equal(status, 'The model could not be loaded: could not fetch /models/no-such-model.gguf: HTTP 404 Not Found (SmolLM2-135M-Instruct.Q4_1 is still loaded)');
  assert.equal(await page.locator('#generate').isDisabled(), false, 'the loaded model still answers');
});

test('a dropped file that is not a GGUF is a readable error on the page', { skip, timeout: 60_000 }, async () => {
  const { page } = demo;
  const before = await page.locator('#load-status').textContent();
  await page.evaluate(() => {
    const data = new DataTransfer();
    data.items.add(new File(['not a model at all'], 'notes.gguf'));
    document.getElementById('model').dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
  });
  const status = await nextStatus(page, before);
  assert.match(status, /^The model could not be loaded: .*(GGUF|magic)/i);
});

test('a reload reads the model from the browser\'s cache; "Clear downloaded models" empties it', { skip, timeout: 300_000 }, async () => {
  const { page } = demo;
  assert.match(firstStatus, /Downloaded, and kept in the browser's cache\.$/);
  const started = performance.now();
  await page.reload();
  await waitReady(page);
  const status = await loadSettled(page);
  figures.cachedLoadSeconds = (performance.now() - started) / 1000;
  assert.match(status, /^Loaded: .* Read from the browser's cache\.$/, status);
  await page.waitForFunction(() => /^Cached: 1 model/.test(document.getElementById('cache-status').textContent));
  await page.click('#clear-cache');
  await page.waitForFunction(() => document.getElementById('cache-status').textContent === 'Cache empty');
  assert.deepEqual(demo.errors, []);
});
