// Gemma 3 in the demo page, in Chromium on SwiftShader under WebGPU's
// default limits: its 262k-token embedding loads split, greedy decoding
// names Paris, and the KV plot shows MQA with windowed layers capped.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { MODELS } from '../serve.mjs';
import { openDemo, waitReady } from './harness.mjs';

const GEMMA = 'gemma-3-270m-q4_k_m.gguf';
const skip = existsSync(MODELS + GEMMA) ? false : `models/${GEMMA} is missing: run scripts/fetch-gemma.sh first`;
let demo;

before(async () => {
  if (skip) return;
  demo = await openDemo(`?limits=default&model=/models/${GEMMA}`);
  await waitReady(demo.page);
  await demo.page.waitForFunction(
    () => !document.getElementById('generate').disabled || /could not/.test(document.getElementById('load-status').textContent),
    null,
    { timeout: 300_000 },
  );
}, { timeout: 360_000 });

after(async () => demo?.close());

test('Gemma 3 loads under default limits as MQA with sliding-window layers', { skip }, async () => {
  const { page } = demo;
  const status = await page.locator('#load-status').textContent();
  // Gemma-3-270M: 18 layers, 4 query heads on 1 KV head of dim 256.
  assert.match(status, /^Loaded: 18 layers, 4 query heads sharing 1 KV heads of dim 256\./, status);
  assert.match(await page.locator('#adapter-limits').textContent(), /default/i);
  assert.equal(await page.locator('#model-pick').inputValue(), `/models/${GEMMA}`);
});

test('greedy Gemma 3 after a one-shot prompt names Paris; the plot caps windowed layers', { skip, timeout: 300_000 }, async () => {
  const { page } = demo;
  await page.fill('#prompt', 'The capital of Germany is Berlin. The capital of France is');
  await page.fill('input[name=maxTokens]', '3');
  await page.fill('input[name=temperature]', '0');
  await page.setChecked('input[name=chat]', false);
  await page.click('#generate');
  await page.waitForFunction(() => document.getElementById('output').dataset.state === 'done', null, { timeout: 280_000 });
  const text = await page.locator('#output').textContent();
  assert.match(text, /Paris/, text);

  const context = Number(await page.locator('#context-tokens').textContent());
  const bytes = async (key) => Number(await page.locator(`#bar-${key}`).getAttribute('data-bytes'));
  // f16 K and V of 256 dims, 18 layers: 18 * 2 * 256 * 2 bytes per KV head and token.
  const perHead = 18 * 2 * 256 * 2;
  assert.equal(await bytes('gqa'), perHead * context, 'shipped (one KV head) below the window');
  assert.equal(await bytes('mqa'), await bytes('gqa'), 'Gemma 3 ships as MQA');
  assert.equal(await bytes('mha'), 4 * perHead * context);
  // Below the 512-token window nothing is capped yet; the bar is there to compare.
  assert.equal(await bytes('uncapped'), perHead * context);
  assert.match(await page.locator('#kv-plot').textContent(), /15 layers keep only their 512-token window/);
  assert.match(await page.locator('#bar-gqa-label').textContent(), /^[\d.]+ (kB|MB)$/);
  assert.deepEqual(demo.errors, []);
});
