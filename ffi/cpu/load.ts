/**
 * Finding and loading `libressl_cpu.so`, the cpu backend's own kernels: `<repo>/build/cpu/` (what
 * `scripts/setup_cpu.sh` builds). The library is optional: where it is missing (not built, or this
 * module imported by URL), cannot load, was built for another ABI or for instructions this CPU
 * lacks, {@link loadCpuKernels} says why and the cpu backend runs those kernels on oneDNN.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { CPU_KERNEL_SYMBOLS, CPU_KERNELS_ABI, type CpuKernelSymbols } from "./symbols.ts";

/** The command that builds the library. */
export const CPU_KERNELS_BUILD_COMMAND = "bash scripts/setup_cpu.sh";

/** The library file, relative to the repository root. */
export const CPU_KERNELS_FILE = "build/cpu/libressl_cpu.so";

/** A loaded kernel library. */
export interface CpuKernels {
  readonly symbols: CpuKernelSymbols;
  /** The file that was loaded. */
  readonly path: string;
  /** Unloads the library (the OpenMP runtime it started stays loaded, see `pinOpenMp`). */
  close(): void;
}

/** What {@link loadCpuKernels} found: the library, or why there is none. */
export type CpuKernelsResult =
  | { ok: true; kernels: CpuKernels }
  | { ok: false; reason: string };

/** The default library path: `<repo>/build/cpu/libressl_cpu.so`, or null when imported by URL. */
export function defaultCpuKernelsPath(): string | null {
  const url = new URL(`../../${CPU_KERNELS_FILE}`, import.meta.url);
  return url.protocol === "file:" ? fileURLToPath(url) : null;
}

/**
 * The OpenMP runtime, opened once and never closed. The library's kernels start libgomp's worker
 * threads, which outlive the call and sit in libgomp's code; libgomp is not linked `-z nodelete`,
 * so closing the last library that holds it (this one, where oneDNN was never loaded) unmapped that
 * code under them and the process crashed (SIGSEGV). Holding it for the process's lifetime is what
 * `RTLD_NODELETE` would do.
 */
let openMpPin:
  | Deno.DynamicLibrary<{ omp_get_max_threads: { parameters: []; result: "i32" } }>
  | undefined;

function pinOpenMp(): void {
  openMpPin ??= Deno.dlopen("libgomp.so.1", {
    omp_get_max_threads: { parameters: [], result: "i32" },
  });
}

/** Loads the library at `path` (default: {@link defaultCpuKernelsPath}) and checks it. */
export function loadCpuKernels(path: string | null = defaultCpuKernelsPath()): CpuKernelsResult {
  if (path === null) {
    return { ok: false, reason: "not available when this module is imported by URL" };
  }
  try {
    if (!Deno.statSync(path).isFile) return { ok: false, reason: `${path} is not a file` };
  } catch {
    return { ok: false, reason: `${path} not built (run '${CPU_KERNELS_BUILD_COMMAND}')` };
  }
  let lib: Deno.DynamicLibrary<typeof CPU_KERNEL_SYMBOLS>;
  try {
    pinOpenMp();
    lib = Deno.dlopen(path, CPU_KERNEL_SYMBOLS);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      reason: `cannot load ${path}: ${msg} (rebuild: '${CPU_KERNELS_BUILD_COMMAND}')`,
    };
  }
  const abi = lib.symbols.ressl_cpu_kernels_abi();
  if (abi !== CPU_KERNELS_ABI) {
    lib.close();
    return {
      ok: false,
      reason: `${path} has interface version ${abi}, these bindings need ${CPU_KERNELS_ABI} ` +
        `(rebuild: '${CPU_KERNELS_BUILD_COMMAND}')`,
    };
  }
  if (lib.symbols.ressl_cpu_kernels_supported() !== 1) {
    lib.close();
    return {
      ok: false,
      reason: `this CPU lacks the x86-64-v3 instructions (AVX2, FMA) that ${path} was built for`,
    };
  }
  return { ok: true, kernels: { symbols: lib.symbols, path, close: () => lib.close() } };
}
