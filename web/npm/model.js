// The package's `Model`: the wasm `ModelCore` plus what a web app expects of
// it in JS: cached downloads, generation as an async iterator, and chat
// with messages.
import { ModelCore } from './wgqa.js';
import { clearModelCache, downloadModel } from './download.js';

/**
 * Yields the pieces of text a generation makes as they come and returns its
 * Stats. `start(onToken)` begins it; leaving the loop early calls `stop()`
 * and waits for the generation to end, so the model is free again.
 */
async function* piecesOf(start, stop) {
  const queue = [];
  let wake;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const run = start((text) => {
    queue.push(text);
    notify();
  });
  let settled = false;
  const end = () => {
    settled = true;
    notify();
  };
  const ended = run.then(end, end);
  try {
    for (;;) {
      while (queue.length) yield queue.shift();
      if (settled) return await run;
      await new Promise((resolve) => (wake = resolve));
    }
  } finally {
    if (!settled) {
      stop();
      await ended;
    }
  }
}

/** Generation options for a chat: the template is applied here, not again. */
function chatOptions(options) {
  if (options === undefined || options === null) return { chat: false };
  if (typeof options !== 'object') return options; // rejected by generate() with its reason
  if (options.chat) throw new Error('options.chat is for generate(); chat() and streamChat() always apply the chat template');
  return { ...options, chat: false };
}

export class Model {
  #core;

  /** Use `Model.fromUrl()` or `Model.fromBytes()`. */
  constructor(core) {
    if (!(core instanceof ModelCore)) throw new Error('use Model.fromUrl() or Model.fromBytes() to load a model');
    this.#core = core;
  }

  /**
   * Downloads a GGUF (or reads it from the browser's cache, where an earlier
   * download left it) and loads it. `onProgress(loaded, total, source)`,
   * `source` 'network' or 'cache'. `options` as for `fromBytes`. A file
   * that does not load (not a GGUF, an architecture wgqa lacks, too big for
   * the adapter) is not kept in the cache; a cached one that does not load
   * (say, cut short before its own tensor data ends) is fetched once more.
   * Bad options (an 'OptionsError') leave the cache as it is.
   */
  static async fromUrl(ctx, url, onProgress, options) {
    let source;
    const bytes = await downloadModel(url, (loaded, total, from) => {
      source = from;
      onProgress?.(loaded, total, from);
    });
    try {
      return new Model(ModelCore.fromBytes(ctx, bytes, options));
    } catch (e) {
      if (e?.name === 'OptionsError') throw e;
      await clearModelCache(url);
      if (source === 'cache') return Model.fromUrl(ctx, url, onProgress, options);
      throw e;
    }
  }

  /**
   * Loads a GGUF from its bytes (left as they are, so one download makes
   * several variants). `options`: the KV-cache tokens, or `{ kvTokens,
   * kvType, kvHeads | kvHeadsPerLayer | kvBudget, method, seed,
   * calibrationTokens, sensitivityTokens }` (see index.d.ts).
   */
  static fromBytes(ctx, bytes, options) {
    return new Model(ModelCore.fromBytes(ctx, bytes, options));
  }

  /** Resolves to `{ perplexity, scoredTokens, kvBytesPerToken, kvType }` of `text`. */
  async perplexity(text) {
    const r = await this.#core.perplexity(text);
    // A plain object, so it survives postMessage and JSON.
    const plain = { perplexity: r.perplexity, scoredTokens: r.scoredTokens, kvBytesPerToken: r.kvBytesPerToken, kvType: r.kvType };
    r.free();
    return plain;
  }

  /** Generates after `prompt`, calling `onToken(text)` per piece; resolves to Stats. */
  generate(prompt, options, onToken) {
    return this.#core.generate(prompt, options, onToken);
  }

  /** `for await (const piece of model.stream(prompt, options))`; returns Stats. */
  stream(prompt, options) {
    return piecesOf((onToken) => this.generate(prompt, options, onToken), () => this.stop());
  }

  /** The prompt the model's chat template makes of `messages` ([{ role, content }]). */
  renderChat(messages) {
    return this.#core.renderChat(messages);
  }

  /** Answers the conversation `messages`, calling `onToken(text)` per piece; resolves to Stats. */
  chat(messages, options, onToken) {
    try {
      return this.generate(this.renderChat(messages), chatOptions(options), onToken);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** `for await (const piece of model.streamChat(messages, options))`; returns Stats. */
  streamChat(messages, options) {
    return piecesOf((onToken) => this.chat(messages, options, onToken), () => this.stop());
  }

  stop() {
    this.#core.stop();
  }

  reset() {
    this.#core.reset();
  }

  /** Frees the model's GPU memory; the Model is unusable afterwards. */
  free() {
    this.#core.free();
  }

  kvBytesPerToken(kvHeads) {
    return this.#core.kvBytesPerToken(kvHeads);
  }

  kvBytesAt(tokens, kvHeads) {
    return this.#core.kvBytesAt(tokens, kvHeads);
  }

  get stats() {
    return this.#core.stats;
  }
  get chatTemplate() {
    return this.#core.chatTemplate;
  }
  get qHeads() {
    return this.#core.qHeads;
  }
  get kvHeads() {
    return this.#core.kvHeads;
  }
  get kvHeadsPerLayer() {
    return Array.from(this.#core.kvHeadsPerLayer);
  }
  get kvType() {
    return this.#core.kvType;
  }
  get headDim() {
    return this.#core.headDim;
  }
  get layers() {
    return this.#core.layers;
  }
  get contextLength() {
    return this.#core.contextLength;
  }
  get kvCapacityTokens() {
    return this.#core.kvCapacityTokens;
  }
  get kvCapacityBytes() {
    return this.#core.kvCapacityBytes;
  }
  get windowedLayers() {
    return this.#core.windowedLayers;
  }
  get slidingWindow() {
    return this.#core.slidingWindow;
  }
}
