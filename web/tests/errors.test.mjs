// Bad input from JS throws (or rejects with) a readable Error, never a wasm
// trap, and leaves the cache usable. Runs in the demo page's main thread.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { openDemo } from './harness.mjs';

let demo;

before(async () => {
  demo = await openDemo('#playground');
  // Load the bindings and a small cache on the page's main thread.
  await demo.page.evaluate(async () => {
    const wgqa = await import('/wgqa/index.js');
    await wgqa.load();
    const ctx = await wgqa.Context.create();
    const cfg = new wgqa.AttentionConfig(4, 2, 8);
    const cache = new wgqa.KvCache(ctx, cfg, 1, 4, 16);
    window.t = { wgqa, ctx, cfg, cache, seq: cache.addSequence() };
  });
}, { timeout: 120_000 });

after(async () => demo?.close());

/** Runs `body` in the page; returns the thrown error's class and message. */
async function thrown(body) {
  return demo.page.evaluate(async (src) => {
    try {
      await new Function('t', `return (async () => { ${src} })()`)(window.t);
      return { threw: false };
    } catch (e) {
      return { threw: true, isError: e instanceof Error, name: e.constructor?.name, message: e.message };
    }
  }, body);
}

function assertReadable(r, pattern) {
  assert.ok(r.threw, 'expected an error');
  assert.ok(r.isError, `not an Error: ${JSON.stringify(r)}`);
  assert.notEqual(r.name, 'RuntimeError', `a wasm trap: ${r.message}`);
  assert.match(r.message, pattern);
}

test('q_heads not divisible by kv_heads', async () => {
  assertReadable(await thrown('new t.wgqa.AttentionConfig(9, 2, 64)'), /q_heads \(9\) must be a multiple of kv_heads \(2\)/);
});

test('invalid head dim, dtype and scale', async () => {
  assertReadable(await thrown('new t.wgqa.AttentionConfig(4, 2, 30)'), /head_dim must be a multiple of 4.*got 30/);
  assertReadable(await thrown('t.cfg.setDtype("f8")'), /dtype must be "f32", "f16" or "int8", got "f8"/);
  assertReadable(await thrown('t.cfg.setScale(-1)'), /scale must be finite, positive and at most 10000, got -1/);
  assert.equal(await demo.page.evaluate(() => window.t.cfg.dtype), 'f32', 'a failed change leaves the config as it was');
});

test('wrong array lengths for decode and prefill', async () => {
  const f = (n) => `new Float32Array(${n})`;
  // One token here is q 4×8 = 32 floats and k, v 2×8 = 16 floats each.
  assertReadable(await thrown(`await t.cache.decode(t.seq, ${f(31)}, ${f(16)}, ${f(16)})`), /q has 31 floats; expected 32/);
  assertReadable(await thrown(`await t.cache.decode(t.seq, ${f(32)}, ${f(15)}, ${f(16)})`), /k has 15 floats; expected 1 × 16/);
  assertReadable(await thrown(`await t.cache.decode(t.seq, ${f(64)}, ${f(32)}, ${f(32)})`), /k has 32 floats; expected 1 × 16/);
  assertReadable(await thrown(`await t.cache.prefill(t.seq, ${f(64)}, ${f(32)}, ${f(30)})`), /v has 30 floats; expected 32/);
  assertReadable(await thrown(`await t.cache.prefill(t.seq, ${f(0)}, ${f(0)}, ${f(0)})`), /k has 0 floats/);
  assertReadable(await thrown(`t.wgqa.referenceAttention(t.cfg, ${f(32)}, new Uint32Array(2), ${f(16)}, ${f(16)})`), /q has 32 floats; expected 64/);
});

test('a full cache and a freed sequence are errors, and the cache still works after them', async () => {
  const f = (n) => `new Float32Array(${n})`;
  assertReadable(await thrown(`await t.cache.prefill(t.seq, ${f(32 * 17)}, ${f(16 * 17)}, ${f(16 * 17)})`), /KV cache is full/);
  assertReadable(await thrown('const s = t.cache.addSequence(); t.cache.freeSequence(s); t.cache.len(s)'), /unknown or freed sequence/);
  assertReadable(await thrown('new t.wgqa.KvCache(t.ctx, t.cfg, 1, 0, 16)'), /page_size must be between 1 and 65536, got 0/);
  const after = await demo.page.evaluate(async () => {
    const { cache, seq } = window.t;
    const before = cache.len(seq);
    const out = await cache.decode(seq, new Float32Array(32).fill(0.5), new Float32Array(16).fill(0.25), new Float32Array(16).fill(1));
    return { before, len: cache.len(seq), out: Array.from(out) };
  });
  assert.equal(after.before, 0, 'failed calls appended nothing');
  assert.equal(after.len, 1);
  // One key: attention returns its value exactly.
  assert.deepEqual(after.out, new Array(32).fill(1));
});

test('without WebGPU the page says so plainly', async () => {
  const page = await demo.page.context().newPage();
  try {
    // A browser without WebGPU has no navigator.gpu.
    await page.addInitScript(() => delete Navigator.prototype.gpu);
    await page.goto(demo.url + '#playground');
    await page.locator('#notice').waitFor({ state: 'visible', timeout: 10_000 });
    assert.match(await page.locator('#notice').textContent(), /This browser has no WebGPU/);
    assert.equal(await page.locator('#run').isDisabled(), true);
  } finally {
    await page.close();
  }
});

test('a corrupted model file rejects with a readable Error, and the page still works', { timeout: 240_000 }, async (t) => {
  const model = await demo.page.evaluate(async () => (await fetch('/models/SmolLM2-135M-Instruct.Q4_1.gguf', { method: 'HEAD' })).ok);
  if (!model) return t.skip('models/SmolLM2-135M-Instruct.Q4_1.gguf is missing: run scripts/fetch-model.sh first');
  // Each case patches the default model in the page, as an attacker would,
  // and hands it to Model.fromBytes.
  const cases = [
    ['llama.block_count', 2 ** 31, /llama\.block_count/],
    ['llama.block_count', 0x01010101, /llama\.block_count/],
    ['llama.block_count', 29, /llama\.block_count.*30 blocks/],
    ['llama.attention.head_count', 268435460, /llama\.attention\.head_count/],
    ['llama.attention.head_count_kv', 9, /blk\.0\.attn_k\.weight/],
    ['truncate', 5_000_000, /truncated/],
    ['garbage', 4096, /GGUF/],
  ];
  const results = await demo.page.evaluate(async (cases) => {
    const original = new Uint8Array(await (await fetch('/models/SmolLM2-135M-Instruct.Q4_1.gguf')).arrayBuffer());
    const out = [];
    for (const [key, value] of cases) {
      let bytes;
      if (key === 'truncate') {
        bytes = original.slice(0, value);
      } else if (key === 'garbage') {
        bytes = new Uint8Array(value).map((_, i) => (i * 2654435761) >>> 24);
        bytes.set([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0]);
      } else {
        // The key is stored as a u64 length and its bytes, then a u32 type and the value.
        bytes = original.slice();
        const needle = new TextEncoder().encode(key);
        let at = -1;
        for (let i = 8; i < 1 << 20 && at < 0; i++) {
          if (bytes[i - 8] === needle.length && bytes[i - 7] === 0 && needle.every((b, j) => bytes[i + j] === b)) at = i;
        }
        new DataView(bytes.buffer).setUint32(at + needle.length + 4, value, true);
      }
      try {
        await window.t.wgqa.Model.fromBytes(window.t.ctx, bytes);
        out.push({ threw: false });
      } catch (e) {
        out.push({ threw: true, isError: e instanceof Error, name: e.constructor?.name, message: e.message });
      }
    }
    return out;
  }, cases.map(([k, v]) => [k, v]));
  results.forEach((r, i) => assertReadable(r, cases[i][2]));
  // The context is intact: the small cache still decodes.
  const len = await demo.page.evaluate(async () => {
    const { cache, seq } = window.t;
    await cache.decode(seq, new Float32Array(32), new Float32Array(16), new Float32Array(16));
    return cache.len(seq);
  });
  assert.ok(len >= 1);
  assert.deepEqual(demo.errors, [], 'no uncaught page errors');
});
