/**
 * ReSSL on Deno: relational self-supervised learning with tensor ops on native libraries.
 *
 * Importing this module has no side effects and loads no native library: backends are created
 * explicitly (`createBackend("auto" | "cpu" | "reference")`), and each pipeline stage is a function
 * a script can compose into its own loop.
 *
 * @example
 * ```ts
 * import { createBackend, createContext, initTrainState, presetConfig } from "./mod.ts";
 * const config = presetConfig("fashion-mnist");
 * config.model.width = 8;
 * const ctx = createContext(createBackend("reference"));
 * const state = initTrainState(ctx, config);
 * console.log(state.queue.data.shape); // [4096, 128]
 * ```
 *
 * @module
 */

export type * from "./src/backend/backend.ts";
export { outputSize } from "./src/backend/backend.ts";
export { type BackendName, createBackend } from "./src/backend/select.ts";
export { createReferenceBackend, ReferenceBackend } from "./src/backend/reference/backend.ts";
export * from "./src/tensor/mod.ts";
export * from "./src/ops/mod.ts";
export * from "./src/nn/mod.ts";
export * from "./src/optim/mod.ts";
export * from "./src/ressl/mod.ts";
export * from "./src/run/mod.ts";
export * from "./src/data/mod.ts";
export * from "./src/random/mod.ts";
export * from "./src/data/datasets/subset.ts";
export * from "./src/eval/mod.ts";
export * from "./src/io/mod.ts";
export * from "./src/plot/mod.ts";
