import type { Context, InitInput, Stats } from './wgqa.js';

export { AttentionConfig, Context, KvCache, Sequence, Stats, referenceAttention, referenceTolerance } from './wgqa.js';
export type { InitInput } from './wgqa.js';

/**
 * Loads the wasm module once; call (and await) it before anything else.
 * With no argument the module is fetched from next to this file.
 */
export function load(source?: InitInput | Promise<InitInput>): Promise<void>;

/** Where the bytes of a model file came from. */
export type DownloadSource = 'network' | 'cache';

/** Called as a model file arrives; `total` is 0 when the server does not say. */
export type ProgressCallback = (loaded: number, total: number, source: DownloadSource) => void;

/** Options of `generate()`, `stream()`, `chat()` and `streamChat()`; all optional (greedy, 128 tokens). */
export interface GenerateOptions {
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  /** `generate()`/`stream()` only: wrap the prompt as one user turn in the chat template. */
  chat?: boolean;
}

/** KV-cache storage: f16 (the default), int8 (a byte per value, a scale per row) or f32. */
export type KvType = 'f16' | 'int8' | 'f32';

/** How a merged KV head is built from the heads it stands for (as `wgqa convert --method`). */
export type ConvertMethod = 'mean' | 'first' | 'random' | 'calibrated';

/**
 * How `fromBytes()`/`fromUrl()` load a model; all optional. At most one of
 * `kvHeads`, `kvHeadsPerLayer` and `kvBudget` converts the model first, in
 * the browser, as `wgqa convert` does; bad values throw an Error named
 * 'OptionsError' whose message names the problem.
 */
export interface LoadOptions {
  /** Tokens the KV cache holds (default 2048, or the model's context if shorter). */
  kvTokens?: number;
  kvType?: KvType;
  /** KV heads in every layer: a divisor of the query heads (the query-head count gives MHA, 1 MQA). */
  kvHeads?: number;
  /** KV heads of each layer, one per layer, each a divisor of the query heads. */
  kvHeadsPerLayer?: number[] | Uint32Array;
  /**
   * Variable GQA: f16 K+V bytes per token for all layers together, from MQA's
   * to MHA's; each layer gets the KV heads that lose the least on the
   * calibration text (each layer's sensitivity measured on the CPU).
   */
  kvBudget?: number;
  /** Default 'mean'. 'calibrated' and `kvBudget` run the model on the CPU over the calibration text. */
  method?: ConvertMethod;
  /** Seed of method 'random' (default 0). */
  seed?: number;
  /** Tokens of the calibration text (Moby-Dick's opening) used (default 512, as the CLI's). */
  calibrationTokens?: number;
  /** Leading calibration tokens scored per layer for `kvBudget` (default 32; the CLI's is 128). */
  sensitivityTokens?: number;
}

/** A text's perplexity, as `wgqa perplexity` reports it. */
export interface PerplexityResult {
  /** exp of the mean negative log-likelihood of each token after the first. */
  perplexity: number;
  /** The text's tokens but the first. */
  scoredTokens: number;
  /** K and V bytes a token takes in this model's cache, all layers. */
  kvBytesPerToken: number;
  kvType: KvType;
}

/** One turn of a conversation. A system message may only come first; the last is the user's. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A llama-family GGUF on the GPU with its tokenizer and chat template. */
export class Model {
  private constructor();
  /**
   * Downloads a GGUF, or reads it from the browser's cache (Cache Storage)
   * where an earlier download left it whole, and loads it. A cut-off cached
   * copy (its length, or its own tensor data, short) is deleted and fetched
   * again; a failed download, or a file that fails to load, stays out of the cache.
   */
  static fromUrl(ctx: Context, url: string, onProgress?: ProgressCallback, options?: LoadOptions | number): Promise<Model>;
  /**
   * Loads a GGUF from its bytes (copied into wasm memory; `bytes` stays as
   * it was, so one download makes several variants). A number is `kvTokens`.
   * A conversion blocks the calling thread (seconds; a calibrated one or a
   * budget far longer): call it in a Worker.
   */
  static fromBytes(ctx: Context, bytes: Uint8Array, options?: LoadOptions | number): Model;

  /** Generates after `prompt`, calling `onToken(text)` with each piece as it decodes. */
  generate(prompt: string, options?: GenerateOptions, onToken?: (text: string) => void): Promise<Stats>;
  /**
   * The same generation as an async iterator of text pieces; its return value
   * is the Stats. Leaving the loop early stops the generation (then `stats`
   * has stopReason "stopped").
   */
  stream(prompt: string, options?: GenerateOptions): AsyncGenerator<string, Stats, undefined>;
  /** The prompt the model's chat template makes of `messages`, ending where the reply begins. */
  renderChat(messages: ChatMessage[]): string;
  /** Answers the conversation, calling `onToken(text)` per piece. */
  chat(messages: ChatMessage[], options?: GenerateOptions, onToken?: (text: string) => void): Promise<Stats>;
  /** `chat()` as an async iterator of text pieces returning the Stats. */
  streamChat(messages: ChatMessage[], options?: GenerateOptions): AsyncGenerator<string, Stats, undefined>;
  /** Ends a running generation before its next token. */
  stop(): void;
  /** Empties the KV cache; throws while a generation runs. */
  reset(): void;
  /** Frees the model's GPU memory. */
  free(): void;
  /**
   * Perplexity of `text` in one window (the KV cache must hold it), as
   * `wgqa perplexity` scores a text shorter than its window. Empties the KV cache first.
   */
  perplexity(text: string): Promise<PerplexityResult>;
  /** K and V bytes a token takes over all layers in this model's KV storage; given `kvHeads`, if each layer had that many. */
  kvBytesPerToken(kvHeads?: number): number;
  /**
   * K and V bytes a sequence of `tokens` takes over all layers, with `kvHeads`
   * KV heads in each (as loaded when omitted); sliding-window layers count
   * only their window.
   */
  kvBytesAt(tokens: number, kvHeads?: number): number;

  /** The last generation's Stats; undefined before the first or after `reset()`. */
  readonly stats: Stats | undefined;
  /** 'chatml', 'llama3' or 'gemma'; undefined when the model has none wgqa can render. */
  readonly chatTemplate: string | undefined;
  readonly qHeads: number;
  /** KV heads of the first layer. */
  readonly kvHeads: number;
  /** KV heads of each layer (they differ under Variable GQA). */
  readonly kvHeadsPerLayer: number[];
  readonly kvType: KvType;
  readonly headDim: number;
  readonly layers: number;
  readonly contextLength: number;
  readonly kvCapacityTokens: number;
  readonly kvCapacityBytes: number;
  /** Layers with a sliding window (Gemma 3: five of every six). */
  readonly windowedLayers: number;
  /** Their window in tokens; undefined when no layer has one. */
  readonly slidingWindow: number | undefined;
}

/**
 * The bytes of the file at `url`, from the browser's cache when it holds all
 * of it, else downloaded (and then cached). Rejects with an Error naming the URL.
 */
export function downloadModel(url: string, onProgress?: ProgressCallback): Promise<Uint8Array>;
/** The model files in the browser's cache. */
export function cachedModels(): Promise<{ url: string; bytes: number }[]>;
/** Deletes the cached copy of `url`, or every cached model; resolves to whether anything went. */
export function clearModelCache(url?: string): Promise<boolean>;
