// Shared by the browser tests: the demo served on 127.0.0.1 and Debian's
// Chromium (WebGPU on SwiftShader) driven by playwright-core.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from '../serve.mjs';

export const WEB = fileURLToPath(new URL('..', import.meta.url));
export const TARGET = fileURLToPath(new URL('../../target/', import.meta.url));

// DESIGN.md §7: the flags under which headless Chromium has WebGPU here.
const FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan,WebGPUService',
  '--use-angle=vulkan',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/**
 * Serves web/, opens the demo page in a fresh browser profile; `hash`
 * picks the view ('#playground'; the model view, the default, loads the model).
 */
export async function openDemo(hash = '') {
  const server = await serve(WEB);
  const profile = await mkdtemp(join(tmpdir(), 'wgqa-chromium-'));
  let browser;
  try {
    // Playwright passes the profile as --user-data-dir; `headless: false`
    // keeps it from adding its own headless flag over ours.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: '/usr/bin/chromium',
      headless: false,
      args: FLAGS,
      timeout: 30_000,
    });
    browser.setDefaultTimeout(30_000);
    const page = browser.pages()[0] ?? (await browser.newPage());
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(server.url + hash);
    return {
      page,
      url: server.url,
      errors,
      async close() {
        await browser.close();
        await server.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await browser?.close();
    await server.close();
    await rm(profile, { recursive: true, force: true });
    throw e;
  }
}

/** Waits for the worker to report its adapter (or a plain failure). */
export async function waitReady(page) {
  await page.waitForFunction(() => !document.getElementById('run').disabled || !document.getElementById('notice').hidden, null, { timeout: 60_000 });
  const notice = await page.locator('#notice').textContent();
  if (await page.locator('#notice').isVisible()) throw new Error(`the page says: ${notice}`);
}
