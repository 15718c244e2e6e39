// The kernel playground in real Chromium: what a person sees after picking
// a shape and pressing Run. SwiftShader is slow, so the shapes are small.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { openDemo, TARGET, waitReady } from './harness.mjs';

let demo;
const figures = [];

before(async () => {
  demo = await openDemo('#playground');
  await waitReady(demo.page);
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

// MHA, GQA and MQA at equal query heads, both storage types.
const CASES = [
  { qHeads: 4, kvHeads: 4, headDim: 32, context: 48, steps: 4, dtype: 'f32' },
  { qHeads: 8, kvHeads: 2, headDim: 64, context: 64, steps: 4, dtype: 'f16' },
  { qHeads: 8, kvHeads: 1, headDim: 64, context: 64, steps: 4, dtype: 'f16' },
  { qHeads: 8, kvHeads: 8, headDim: 64, context: 64, steps: 4, dtype: 'f16' },
];

for (const c of CASES) {
  const label = `${c.qHeads}q/${c.kvHeads}kv d${c.headDim} ctx${c.context} ${c.dtype}`;
  test(`playground matches the reference: ${label}`, { timeout: 120_000 }, async (t) => {
    const { page } = demo;
    for (const [name, value] of Object.entries(c)) {
      const field = page.locator(`[name="${name}"]`);
      if ((await field.evaluate((e) => e.tagName)) === 'SELECT') await field.selectOption(String(value));
      else await field.fill(String(value));
    }
    await page.click('#run');
    await page.waitForFunction(() => ['done', 'error'].includes(document.getElementById('result').dataset.state), null, { timeout: 100_000 });
    const status = await page.locator('#status').textContent();
    assert.equal(await page.locator('#result').getAttribute('data-state'), 'done', status);
    assert.equal(await page.locator('#verdict').getAttribute('class'), 'pass', await page.locator('#verdict').textContent());
    const maxError = Number(await page.locator('#max-error').textContent());
    const msPerStep = Number(await page.locator('#ms-step').textContent());
    // Outputs are averages of values in [-1, 1), so |ref| < 1 bounds the
    // page's tolerance atol + rtol·|ref| (f32 5e-4 + 2e-3, f16 2e-3 + 5e-3).
    assert.ok(maxError < (c.dtype === 'f32' ? 2.5e-3 : 7e-3), `max error ${maxError}`);
    assert.ok(Number.isFinite(msPerStep) && msPerStep > 0, `ms/step ${msPerStep}`);
    assert.match(await page.locator('#kind').textContent(), c.kvHeads === c.qHeads ? /^MHA/ : c.kvHeads === 1 ? /^MQA/ : /^GQA-/);
    figures.push({ ...c, msPerStep, maxError, adapter: await page.locator('#adapter-name').textContent() });
    t.diagnostic(`${label}: ${msPerStep.toFixed(2)} ms/step, max error ${maxError.toExponential(2)}`);
  });
}

test('a screenshot of the page is saved under target/', async () => {
  await mkdir(TARGET, { recursive: true });
  const path = `${TARGET}web-playground.png`;
  await demo.page.screenshot({ path, fullPage: true });
  assert.deepEqual(demo.errors, []);
});
