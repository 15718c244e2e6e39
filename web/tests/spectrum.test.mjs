// The GQA spectrum in real Chromium: conversions made in wasm give the
// perplexity the native CLI gives for the same conversion and paragraph,
// bad options are readable Errors, and the page's view measures a variant.
// SwiftShader scores ~1 token/s, so the paragraph is one sentence.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MODELS } from '../serve.mjs';
import { openDemo, TARGET, waitReady } from './harness.mjs';

const MODEL = 'SmolLM2-135M-Instruct.Q4_1.gguf';
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const PARAGRAPH = join(REPO, 'texts/spectrum-paragraph.txt');
// `cargo test` (scripts/test.sh runs it before these) builds the CLI here.
const WGQA = join(process.env.CARGO_TARGET_DIR ?? join(REPO, 'target'), 'debug/wgqa');
const skip = existsSync(MODELS + MODEL) ? false : `models/${MODEL} is missing: run scripts/fetch-model.sh first`;
const figures = {};
let demo;
/** The native CLI's MQA-by-mean perplexity of the paragraph, run beside the browser. */
let native;
let tmp;

/** A measurement for the figures file, its per-layer list left out (the tests check it). */
const figure = ({ kvHeadsPerLayer, ...rest }) => rest;

/** `wgqa convert --kv-heads 1 --method mean`, then `wgqa perplexity` of the paragraph: the figure it prints. */
async function nativeMqaPerplexity() {
  assert.ok(existsSync(WGQA), `${WGQA} is missing: build it with \`cargo build --bin wgqa\``);
  tmp = await mkdtemp(join(tmpdir(), 'wgqa-spectrum-'));
  const out = join(tmp, 'mqa.gguf');
  const run = (args) => promisify(execFile)(WGQA, args, { cwd: REPO, maxBuffer: 1 << 20 });
  await run(['convert', '--model', MODELS + MODEL, '--out', out, '--kv-heads', '1', '--method', 'mean']);
  const { stdout } = await run(['perplexity', '--model', out, '--file', PARAGRAPH]);
  const m = /^perplexity ([\d.]+) over (\d+) scored tokens/m.exec(stdout);
  assert.ok(m, `wgqa perplexity printed: ${stdout}`);
  return { perplexity: Number(m[1]), scoredTokens: Number(m[2]), line: stdout.trim() };
}

before(async () => {
  if (skip) return;
  native = nativeMqaPerplexity();
  // Keep a rejection for the test that awaits it, not an unhandled one.
  native.catch(() => {});
  demo = await openDemo('#spectrum');
  await waitReady(demo.page);
  await demo.page.waitForFunction(() => !document.getElementById('spectrum-run').disabled, null, { timeout: 240_000 });
  // The page's main thread gets the same package and file the worker has.
  await demo.page.evaluate(async (url) => {
    const wgqa = await import('/wgqa/index.js');
    await wgqa.load();
    window.wgqa = wgqa;
    window.ctx = await wgqa.Context.create();
    window.bytes = await wgqa.downloadModel(url);
    window.paragraph = await (await fetch('/texts/spectrum-paragraph.txt')).text();
    /** Loads a variant, scores the paragraph, frees it: { perplexity, scoredTokens, ..., seconds }. */
    window.measure = async (options) => {
      const started = performance.now();
      const model = wgqa.Model.fromBytes(window.ctx, window.bytes, options);
      try {
        const r = await model.perplexity(window.paragraph);
        return { ...r, kvHeadsPerLayer: model.kvHeadsPerLayer, seconds: (performance.now() - started) / 1000 };
      } finally {
        model.free();
      }
    };
  }, `/models/${MODEL}`);
  figures.adapter = await demo.page.locator('#adapter-name').textContent();
}, { timeout: 300_000 });

after(async () => {
  if (demo) {
    await mkdir(TARGET, { recursive: true });
    await writeFile(`${TARGET}web-spectrum-figures.json`, JSON.stringify(figures, null, 2) + '\n');
    await demo.close();
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('MQA by mean, converted in the page, scores as `wgqa perplexity` does natively (within 1%)', { skip, timeout: 200_000 }, async () => {
  const page = await demo.page.evaluate(() => window.measure({ kvHeads: 1, method: 'mean' }));
  figures.mqaMean = figure(page);
  assert.deepEqual(page.kvHeadsPerLayer, Array(30).fill(1));
  assert.equal(page.kvBytesPerToken, 7680);
  const cli = await native;
  figures.nativeMqaMean = cli;
  // The same tokens scored: one window, the paragraph's tokens but the first.
  assert.equal(page.scoredTokens, cli.scoredTokens, cli.line);
  assert.ok(Math.abs(page.perplexity / cli.perplexity - 1) < 0.01, `page ${page.perplexity}, native ${cli.line}`);
  // Merging to one KV head without training is expensive: far above the shipped model's ~20.
  assert.ok(page.perplexity > 200, `MQA perplexity ${page.perplexity}`);
});

test('the MHA expansion gives the shipped model\'s perplexity (within 0.1%)', { skip, timeout: 200_000 }, async () => {
  const shipped = await demo.page.evaluate(() => window.measure({}));
  const mha = await demo.page.evaluate(() => window.measure({ kvHeads: 9 }));
  Object.assign(figures, { shipped: figure(shipped), mha: figure(mha) });
  assert.deepEqual(mha.kvHeadsPerLayer, Array(30).fill(9));
  assert.equal(mha.kvBytesPerToken, 3 * shipped.kvBytesPerToken);
  assert.ok(Math.abs(mha.perplexity / shipped.perplexity - 1) < 1e-3, `MHA ${mha.perplexity}, shipped ${shipped.perplexity}`);
  assert.ok(shipped.perplexity > 1 && shipped.perplexity < 100, `shipped ${shipped.perplexity}`);
});

test('bad load options are readable Errors naming the problem, and keep the cached download', { skip, timeout: 60_000 }, async () => {
  const results = await demo.page.evaluate(async () => {
    const attempt = (options) => {
      try {
        window.wgqa.Model.fromBytes(window.ctx, window.bytes, options).free();
        return { threw: false };
      } catch (e) {
        return { isError: e instanceof Error, name: e.name, message: e.message };
      }
    };
    let fromUrl;
    try {
      await window.wgqa.Model.fromUrl(window.ctx, '/models/SmolLM2-135M-Instruct.Q4_1.gguf', undefined, { kvHeads: 2 });
    } catch (e) {
      fromUrl = e.message;
    }
    return {
      divides: attempt({ kvHeads: 2 }),
      method: attempt({ kvHeads: 1, method: 'bogus' }),
      budget: attempt({ kvBudget: 1000 }),
      list: attempt({ kvHeadsPerLayer: [1, 3, 1] }),
      kvType: attempt({ kvType: 'int4' }),
      several: attempt({ kvHeads: 1, kvBudget: 8000 }),
      unknown: attempt({ kvHead: 1 }),
      fromUrl,
      cached: (await window.wgqa.cachedModels()).map((e) => e.url),
    };
  });
  const expect = {
    divides: /^convert: --kv-heads 2 KV heads \(layer 0\) must divide the 9 query heads: use one of \[1, 3, 9\]$/,
    method: /^convert: --method `bogus` is not a method: use mean, first, random or calibrated$/,
    budget: /^convert: --kv-budget 1000 bytes per token is outside what this model can have: from 7680 \(MQA\) to 69120 \(MHA\)$/,
    list: /^convert: --kv-heads-per-layer has 3 entries, the model has 30 layers$/,
    kvType: /^kvType must be "f16", "int8" or "f32", got "int4"$/,
    several: /^give one of kvHeads, kvHeadsPerLayer and kvBudget, not several$/,
    unknown: /^unknown load option kvHead: use kvTokens, kvType, kvHeads/,
  };
  for (const [key, pattern] of Object.entries(expect)) {
    const r = results[key];
    assert.equal(r.isError, true, `${key}: ${JSON.stringify(r)}`);
    assert.equal(r.name, 'OptionsError', `${key}: ${JSON.stringify(r)}`);
    assert.match(r.message, pattern, key);
  }
  assert.match(results.fromUrl, expect.divides);
  assert.ok(results.cached.some((u) => u.endsWith(MODEL)), `cache after a bad option: ${results.cached}`);
});

test('the view converts a variant picked in its form and adds a card and a plot point', { skip, timeout: 200_000 }, async () => {
  const { page } = demo;
  await page.selectOption('#spectrum-form select[name=variant]', 'mqa');
  await page.selectOption('#spectrum-form select[name=method]', 'mean');
  await page.selectOption('#spectrum-form select[name=kvType]', 'int8');
  await page.fill('#spectrum-form input[name=maxTokens]', '2');
  await page.click('#spectrum-run');
  await page.waitForFunction(() => /converting|perplexity|generating/i.test(document.getElementById('spectrum-status').textContent), null, { timeout: 60_000 });
  await page.waitForFunction(() => document.querySelectorAll('#spectrum-cards .variant').length === 1 || /failed/.test(document.getElementById('spectrum-status').textContent), null, { timeout: 180_000 });
  const status = await page.locator('#spectrum-status').textContent();
  assert.match(status, /^MQA, mean, int8: done\.$/, status);
  const shown = await page.evaluate(() => {
    const c = document.querySelector('#spectrum-cards .variant');
    const p = document.querySelector('#spectrum-plot .point');
    const rows = Object.fromEntries([...c.querySelectorAll('dt')].map((dt) => [dt.textContent, dt.nextElementSibling.textContent]));
    return { title: c.querySelector('h3').textContent, perplexity: Number(c.dataset.perplexity), bytes: Number(c.dataset.bytesPerToken), rows, point: { bytes: Number(p.dataset.bytes), perplexity: Number(p.dataset.perplexity) } };
  });
  figures.viewMqaInt8 = shown;
  assert.equal(shown.title, 'MQA, mean, int8');
  // One KV head per layer in int8: 64 bytes each of K and V plus a 4-byte scale per row, 30 layers.
  assert.equal(shown.bytes, 30 * 2 * (64 + 4));
  assert.equal(shown.rows['KV heads per layer'], '30×1');
  assert.deepEqual(shown.point, { bytes: shown.bytes, perplexity: shown.perplexity });
  // int8 storage moves MQA's f16 perplexity by a few percent at most.
  assert.ok(Math.abs(shown.perplexity / figures.mqaMean.perplexity - 1) < 0.05, `int8 ${shown.perplexity}, f16 ${figures.mqaMean.perplexity}`);
  assert.match(shown.rows.Decode, /^\d+\.\d\d tokens\/s$/);
  assert.ok(Number(shown.rows.Decode.split(' ')[0]) > 0, shown.rows.Decode);
  assert.match(shown.rows['KV at 2048 tokens'], /^8\.36 MB$/);
  assert.ok(shown.rows.Continuation.length > 0, 'a continuation is shown');
  await page.screenshot({ path: `${TARGET}web-spectrum.png`, fullPage: true });
  assert.deepEqual(demo.errors, []);
});
