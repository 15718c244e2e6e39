// The kernel playground in real Chromium: what a person sees after picking
// a shape and pressing Run. SwiftShader is slow, so the shapes are small.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { openDemo, TARGET, waitReady } from './harness.mjs';

let demo;
const figures = [];
// The bound per storage type, read from the library (the Rust tests' own).
let tolerance;

before(async () => {
  demo = await openDemo('#playground');
  await waitReady(demo.page);
  tolerance = await demo.page.evaluate(async () => {
    const wgqa = await import('/wgqa/index.js');
    await wgqa.load();
    return { f32: wgqa.referenceTolerance('f32'), f16: wgqa.referenceTolerance('f16') };
  });
}, { timeout: 120_000 });

after(async () => {
  await mkdir(TARGET, { recursive: true });
  if (figures.length) await writeFile(`${TARGET}web-figures.json`, JSON.stringify(figures, null, 2) + '\n');
  await demo?.close();
});

test('adapter name and feature use render', async () => {
  const { page } = demo;
  const name = await page.locator('#adapter-name').textContent();
  assert.ok(name && !['starting…', 'none', '(the browser does not say)'].includes(name), `adapter name: ${name}`);
  for (const id of ['#adapter-f16', '#adapter-subgroups']) {
    assert.match(await page.locator(id).textContent(), /^(used|offered by the browser|not available)/);
  }
  assert.equal(await page.locator('#notice').isVisible(), false);
});

test('the page says where WebGPU runs', async () => {
  // SwiftShader here: a software rasteriser, which the page must say plainly.
  assert.match(await demo.page.locator('#adapter-runs-on').textContent(), /^the CPU: .*software rasteriser/);
});

/** Fills the playground form with `c`, runs it and returns what the page shows. */
async function runCase(c) {
  const { page } = demo;
  for (const [name, value] of Object.entries(c)) {
    const field = page.locator(`[name="${name}"]`);
    if ((await field.evaluate((e) => e.tagName)) === 'SELECT') await field.selectOption(String(value));
    else await field.fill(String(value));
  }
  await page.click('#run');
  await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('result').dataset.state), null, { timeout: 300_000 });
  const status = await page.locator('#status').textContent();
  assert.equal(await page.locator('#result').getAttribute('data-state'), 'done', status);
  assert.equal(await page.locator('#verdict').getAttribute('class'), 'pass', await page.locator('#verdict').textContent());
  return {
    maxError: Number(await page.locator('#max-error').textContent()),
    msPerStep: Number(await page.locator('#ms-step').textContent()),
    kind: await page.locator('#kind').textContent(),
  };
}

// MHA, GQA and MQA at equal query heads, both storage types, and every
// kernel tiling over contexts of several key tiles.
const CASES = [
  { qHeads: 4, kvHeads: 4, headDim: 32, context: 48, steps: 4, dtype: 'f32', tiling: 'auto' },
  { qHeads: 8, kvHeads: 2, headDim: 64, context: 64, steps: 4, dtype: 'f16', tiling: 'auto' },
  { qHeads: 8, kvHeads: 1, headDim: 64, context: 64, steps: 4, dtype: 'f16', tiling: 'auto' },
  { qHeads: 8, kvHeads: 8, headDim: 64, context: 64, steps: 4, dtype: 'f16', tiling: 'auto' },
  { qHeads: 6, kvHeads: 2, headDim: 32, context: 100, steps: 2, dtype: 'f32', tiling: 'integrated-gpu' },
  { qHeads: 6, kvHeads: 2, headDim: 64, context: 100, steps: 2, dtype: 'f16', tiling: 'discrete-gpu' },
];

for (const c of CASES) {
  const label = `${c.qHeads}q/${c.kvHeads}kv d${c.headDim} ctx${c.context} ${c.dtype} ${c.tiling} tiling`;
  test(`playground matches the reference: ${label}`, { timeout: 120_000 }, async (t) => {
    const { maxError, msPerStep, kind } = await runCase(c);
    // Outputs are averages of values in [-1, 1), so |ref| < 1 bounds the
    // page's tolerance atol + rtol·|ref| by atol + rtol.
    const { atol, rtol } = tolerance[c.dtype];
    assert.ok(maxError < atol + rtol, `max error ${maxError} (bound ${atol + rtol})`);
    assert.ok(Number.isFinite(msPerStep) && msPerStep > 0, `ms/step ${msPerStep}`);
    assert.match(kind, c.kvHeads === c.qHeads ? /^MHA/ : c.kvHeads === 1 ? /^MQA/ : /^GQA-/);
    figures.push({ ...c, msPerStep, maxError, adapter: await demo.page.locator('#adapter-name').textContent() });
    t.diagnostic(`${label}: ${msPerStep.toFixed(2)} ms/step, max error ${maxError.toExponential(2)}`);
  });
}

// SmolLM2's attention shape (9 query heads, d64, f16 KV) at context 2048 as
// MHA, GQA-3 and MQA: the decode-time ratios go to target/ for the README.
// Only their being finite and the outputs matching are asserted: timing is
// the machine's, not the code's.
test('decode-time ratios across the GQA spectrum at SmolLM2\'s shape', { timeout: 400_000 }, async (t) => {
  const ms = {};
  for (const kvHeads of [9, 3, 1]) {
    const c = { qHeads: 9, kvHeads, headDim: 64, context: 2048, steps: 5, dtype: 'f16', tiling: 'auto' };
    ms[kvHeads] = (await runCase(c)).msPerStep;
  }
  const ratios = { mhaOverGqa3: ms[9] / ms[3], mhaOverMqa: ms[9] / ms[1] };
  for (const [name, r] of Object.entries(ratios)) assert.ok(Number.isFinite(r) && r > 0, `${name} ${r}`);
  const adapter = await demo.page.locator('#adapter-name').textContent();
  await mkdir(TARGET, { recursive: true });
  await writeFile(`${TARGET}web-ratios.json`, JSON.stringify({ adapter, context: 2048, msPerStep: ms, ...ratios }, null, 2) + '\n');
  t.diagnostic(`ms/step MHA ${ms[9]}, GQA-3 ${ms[3]}, MQA ${ms[1]}: MHA/GQA-3 ${ratios.mhaOverGqa3.toFixed(2)}, MHA/MQA ${ratios.mhaOverMqa.toFixed(2)}`);
});

test('a screenshot of the page is saved under target/', async () => {
  await mkdir(TARGET, { recursive: true });
  const path = `${TARGET}web-playground.png`;
  await demo.page.screenshot({ path, fullPage: true });
  assert.deepEqual(demo.errors, []);
});
