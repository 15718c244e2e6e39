import type { InitInput } from './wgqa.js';

export { AttentionConfig, Context, KvCache, Model, Sequence, Stats, referenceAttention, referenceTolerance } from './wgqa.js';
export type { InitInput } from './wgqa.js';

/**
 * Loads the wasm module once; call (and await) it before anything else.
 * With no argument the module is fetched from next to this file.
 */
export function load(source?: InitInput | Promise<InitInput>): Promise<void>;
