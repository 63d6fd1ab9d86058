/**
 * The cpu backend's own kernels (`libressl_cpu.so`, C sources in `kernels/`): symbol table and
 * library loading. No tensor logic lives here.
 *
 * @module
 */

export * from "./symbols.ts";
export * from "./load.ts";
