// Model downloads kept in Cache Storage: a GGUF fetched once loads from the
// browser's cache afterwards. Only a complete download is stored, with its
// length beside it, and a cached entry is used only if it is still that
// long: a cut-off entry is deleted and the file fetched again.

const CACHE = 'wgqa-models';
/** The header of a cached entry that holds the complete download's length. */
const LENGTH = 'x-wgqa-length';

/** Cache Storage, or undefined where there is none (insecure contexts). */
async function openCache() {
  if (!globalThis.caches) return undefined;
  try {
    return await caches.open(CACHE);
  } catch {
    return undefined;
  }
}

/** The cache key of `url`: absolute, so './m.gguf' and '/m.gguf' meet. */
const keyOf = (url) => new URL(url, globalThis.location?.href).href;

/**
 * Reads `response`'s body into one array, calling `onProgress(loaded, total,
 * source)` after each chunk. `total` (0 if unknown) sizes the array; a body
 * longer than it is an error.
 */
async function readBody(response, total, source, onProgress, fail) {
  const reader = response.body.getReader();
  let bytes = new Uint8Array(total);
  let loaded = 0;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (e) {
      throw fail(e?.message ?? String(e));
    }
    if (chunk.done) break;
    const end = loaded + chunk.value.length;
    if (end > bytes.length) {
      if (total) throw fail(`the body is longer than its ${total} bytes`);
      const grown = new Uint8Array(Math.max(end, bytes.length * 2));
      grown.set(bytes.subarray(0, loaded));
      bytes = grown;
    }
    bytes.set(chunk.value, loaded);
    loaded = end;
    try {
      onProgress?.(loaded, total, source);
    } catch {
      // A throwing progress callback does not abort the download.
    }
  }
  return loaded === bytes.length ? bytes : bytes.slice(0, loaded);
}

/**
 * The bytes of the file at `url`: from the browser's cache when it holds
 * all of it, else downloaded and then cached. `onProgress(loaded, total,
 * source)` follows it, `source` being 'cache' or 'network' (`total` is 0
 * when the server does not say). A failed download rejects with an Error
 * naming the URL and caches nothing.
 */
export async function downloadModel(url, onProgress) {
  const fail = (what) => new Error(`could not fetch ${url}: ${what}`);
  const key = keyOf(url);
  const cache = await openCache();
  const cached = await cache?.match(key);
  if (cached) {
    const length = Number(cached.headers.get(LENGTH)) || 0;
    // Reading it as `length` bytes fails if the entry is longer, and the
    // length check catches it shorter.
    const bytes = await readBody(cached, length, 'cache', onProgress, fail).catch(() => undefined);
    if (bytes && length > 0 && bytes.length === length) return bytes;
    // Cut off (or unreadable): never load it; fetch the file afresh.
    await cache.delete(key);
  }
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw fail(e?.message ?? String(e));
  }
  if (!response.ok) throw fail(`HTTP ${response.status} ${response.statusText}`);
  if (!response.body) throw fail('the response has no body');
  const total = Number(response.headers.get('content-length')) || 0;
  const bytes = await readBody(response, total, 'network', onProgress, fail);
  if (total && bytes.length !== total) throw fail(`the download ended after ${bytes.length} of ${total} bytes`);
  const entry = new Response(bytes, { headers: { 'content-type': 'application/octet-stream', [LENGTH]: String(bytes.length) } });
  // A full disk costs only the cache, not the load.
  await cache?.put(key, entry).catch(() => undefined);
  return bytes;
}

/** The cached model files: `{ url, bytes }` each. */
export async function cachedModels() {
  const cache = await openCache();
  if (!cache) return [];
  const entries = [];
  for (const request of await cache.keys()) {
    const response = await cache.match(request);
    entries.push({ url: request.url, bytes: Number(response?.headers.get(LENGTH)) || 0 });
  }
  return entries;
}

/**
 * Deletes the cached copy of `url`, or every cached model without one;
 * resolves to whether anything was deleted.
 */
export async function clearModelCache(url) {
  if (!globalThis.caches) return false;
  if (url === undefined) return caches.delete(CACHE);
  return (await openCache())?.delete(keyOf(url)) ?? false;
}
