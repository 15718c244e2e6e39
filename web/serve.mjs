// A tiny static file server for the demo page and the browser tests.
// Listens on 127.0.0.1 only; port 0 picks a free one; read-only, GET only.
// Besides `root` it serves three of the repository's folders: the npm package
// that scripts/build-web.sh builds into target/npm/ under /wgqa/ (the page
// imports it as users do), models/ under /models/, so the page can fetch
// the default GGUF without copying 98 MB, and texts/ under /texts/ (the
// GQA-spectrum view's paragraph).
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  // instantiateStreaming refuses wasm served under any other type.
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

export const MODELS = fileURLToPath(new URL('../models/', import.meta.url));
export const NPM_PACKAGE = fileURLToPath(new URL('../target/npm/', import.meta.url));
export const TEXTS = fileURLToPath(new URL('../texts/', import.meta.url));

/** The folder and the path inside it that a URL path names. */
function locate(root, models, path) {
  for (const [prefix, dir] of [['/models/', models], ['/wgqa/', NPM_PACKAGE], ['/texts/', TEXTS]]) {
    if (path.startsWith(prefix)) return [resolve(dir), path.slice(prefix.length - 1)];
  }
  return [resolve(root), path.endsWith('/') ? path + 'index.html' : path];
}

/** Serves `root` on 127.0.0.1:`port`; resolves to { url, close() }. */
export function serve(root, port = 0, models = MODELS) {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'text/plain' }).end('read-only');
      return;
    }
    const [base, rest] = locate(root, models, decodeURIComponent(new URL(req.url, 'http://x').pathname));
    const file = normalize(join(base, rest));
    let size = -1;
    try {
      if (file === base || file.startsWith(base + sep)) size = statSync(file).isFile() ? statSync(file).size : -1;
    } catch {
      size = -1;
    }
    if (size < 0) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': size,
      'cache-control': 'no-store',
    });
    // HEAD (the page asks which models are present) gets no body.
    if (req.method === 'HEAD') res.end();
    else createReadStream(file).pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => {
      const url = `http://127.0.0.1:${server.address().port}/`;
      ok({ url, close: () => new Promise((done) => server.close(done)) });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const { url } = await serve(here, Number(process.env.PORT ?? 0));
  console.log(`wgqa demo: ${url}  (Ctrl-C stops)`);
}
