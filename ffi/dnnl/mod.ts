/**
 * oneDNN 2.6.3 (`libdnnl.so.2`) through Deno FFI: symbol table, pinned struct layouts and enums,
 * library discovery with a version check, and status checking. No tensor logic lives here.
 *
 * @module
 */

export * from "./constants.ts";
export * from "./symbols.ts";
export * from "./load.ts";
export * from "./openmp_env.ts";
