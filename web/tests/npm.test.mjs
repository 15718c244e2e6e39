// The npm package as a user gets it: `npm pack` the built package, install
// the tarball into a fresh project, import it from node. Node has no WebGPU,
// so this checks the module, its types and its errors, not the GPU.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TARGET } from './harness.mjs';

const run = promisify(execFile);
const NAMES = ['AttentionConfig', 'Context', 'KvCache', 'Model', 'Sequence', 'Stats', 'cachedModels', 'clearModelCache', 'downloadModel', 'load', 'referenceAttention', 'referenceTolerance'];
// Written in JS by the package (web/npm/), not by wasm-bindgen.
const WRAPPER = ['Model', 'cachedModels', 'clearModelCache', 'downloadModel', 'load'];

test('npm pack, install into a fresh project, import', { timeout: 120_000 }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'wgqa-npm-'));
  try {
    const npm = (args, cwd) => run('npm', [...args, '--no-audit', '--no-fund', '--offline'], { cwd, timeout: 60_000 });
    const { stdout } = await npm(['pack', `${TARGET}npm`, '--pack-destination', dir, '--json'], dir);
    const tarball = join(dir, JSON.parse(stdout)[0].filename);
    const app = join(dir, 'app');
    await run('mkdir', [app]);
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    await npm(['install', tarball], app);

    // The module resolves through `exports` and loads its wasm from bytes.
    const script = `
      import { readFileSync } from 'node:fs';
      import { createRequire } from 'node:module';
      import * as wgqa from 'wgqa';
      const wasm = readFileSync(createRequire(import.meta.url).resolve('wgqa/wgqa_bg.wasm'));
      await wgqa.load(wasm);
      const cfg = new wgqa.AttentionConfig(8, 2, 64);
      let invalid = null;
      try { new wgqa.AttentionConfig(9, 2, 64); } catch (e) { invalid = { isError: e instanceof Error, message: e.message }; }
      let noGpu = null;
      try { await wgqa.Context.create(); } catch (e) { noGpu = e.message; }
      console.log(JSON.stringify({ names: Object.keys(wgqa).sort(), bytes: cfg.kvBytesPerToken, invalid, noGpu }));`;
    const out = JSON.parse((await run('node', ['--input-type=module', '-e', script], { cwd: app, timeout: 30_000 })).stdout);
    assert.deepEqual(out.names, NAMES);
    assert.equal(out.bytes, 2 * 2 * 64 * 4, 'K and V of 2 heads × 64 f32 per token');
    assert.deepEqual(out.invalid, { isError: true, message: 'q_heads (9) must be a multiple of kv_heads (2)' });
    assert.match(out.noGpu, /WebGPU is not available here/);

    // The types resolve: `types` points at a file that declares every export.
    const pkgDir = join(app, 'node_modules', 'wgqa');
    const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8'));
    assert.equal(pkg.exports['.'].types, pkg.types);
    const dts = await readFile(join(pkgDir, pkg.types), 'utf8');
    const bindings = await readFile(join(pkgDir, 'wgqa.d.ts'), 'utf8');
    for (const name of NAMES) {
      assert.ok(dts.includes(name), `index.d.ts lacks ${name}`);
      const declared = WRAPPER.includes(name) ? dts : bindings;
      assert.match(declared, new RegExp(`export (class|function) ${name}\\b`));
    }
    // The Model's stream and chat, typed.
    assert.match(dts, /stream\(prompt: string, options\?: GenerateOptions\): AsyncGenerator<string, Stats, undefined>;/);
    assert.match(dts, /chat\(messages: ChatMessage\[\], options\?: GenerateOptions, onToken\?: \(text: string\) => void\): Promise<Stats>;/);
    assert.match(bindings, /decode\(seq: Sequence, q: Float32Array[^)]*\): Promise<Float32Array>;/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
