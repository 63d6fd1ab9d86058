/**
 * ReSSL on Deno: relational self-supervised learning with tensor ops on native libraries.
 *
 * Importing this module has no side effects and loads no native library; backends are created
 * explicitly.
 *
 * @example
 * ```ts
 * import { createContext, createReferenceBackend } from "./mod.ts";
 * const ctx = createContext(createReferenceBackend());
 * const x = ctx.fromArray([1, 2, 3], [3]);
 * console.log(x.toArray());
 * ```
 *
 * @module
 */

export type * from "./src/backend/backend.ts";
export { outputSize } from "./src/backend/backend.ts";
export * from "./src/tensor/mod.ts";
export * from "./src/data/rng.ts";
