// The worker's side of the GQA spectrum view: makes a variant of the loaded
// model (converted in wasm, no server) and measures it: perplexity on the
// page's paragraph, then a greedy continuation of its prompt.
import { Model, downloadModel } from './wgqa/index.js';
import { MSG } from './protocol.js';
import { loadedSource } from './model-worker.js';

// The loaded model's file, kept while it stays loaded: every variant is
// made from it, so one download serves them all.
let kept;
// The last variant; freed when the next replaces it, so GPU memory holds
// at most one variant beside the model view's model.
let variant;

/** The loaded model's bytes: read once (a URL's from the browser's cache, where its load left it). */
async function sourceBytes(post) {
  const source = loadedSource();
  if (!source) throw new Error('no model is loaded');
  if (kept?.source !== source) {
    kept = undefined;
    post({ type: MSG.VARIANT_STEP, step: 'reading' });
    kept = { source, bytes: source.bytes ?? (await downloadModel(source.url)) };
  }
  return kept.bytes;
}

/** Converts with `options` (Model.fromBytes's), then measures; posts the figures. */
export async function runVariant(ctx, { options, text, prompt, maxTokens }, post) {
  const bytes = await sourceBytes(post);
  variant?.free();
  variant = undefined;
  post({ type: MSG.VARIANT_STEP, step: 'converting' });
  // Let the step message go out before the conversion blocks this thread.
  await new Promise((resolve) => setTimeout(resolve, 0));
  let started = performance.now();
  variant = Model.fromBytes(ctx, bytes, options);
  const convertSeconds = (performance.now() - started) / 1000;
  post({ type: MSG.VARIANT_STEP, step: 'perplexity' });
  started = performance.now();
  const ppl = await variant.perplexity(text);
  const perplexitySeconds = (performance.now() - started) / 1000;
  post({ type: MSG.VARIANT_STEP, step: 'generating' });
  let continuation = '';
  const stats = await variant.generate(prompt, { maxTokens }, (piece) => (continuation += piece));
  post({
    type: MSG.VARIANT_DONE,
    result: {
      options,
      kvHeadsPerLayer: variant.kvHeadsPerLayer,
      kvType: variant.kvType,
      kvBytesPerToken: variant.kvBytesPerToken(),
      perplexity: ppl.perplexity,
      scoredTokens: ppl.scoredTokens,
      continuation,
      contextTokens: stats.contextTokens,
      // Sliding-window layers (Gemma 3) hold only their window.
      kvBytesAtContext: variant.kvBytesAt(stats.contextTokens),
      kvCapacityTokens: variant.kvCapacityTokens,
      kvBytesAtCapacity: variant.kvBytesAt(variant.kvCapacityTokens),
      kvBytesInUse: stats.kvBytesInUse,
      decodeTokensPerSecond: stats.decodeTokensPerSecond,
      convertSeconds,
      perplexitySeconds,
    },
  });
  stats.free();
}
