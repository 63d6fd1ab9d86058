/**
 * Shared pieces of the CUDA binding tests: where the real NVIDIA wheels are, options that make
 * discovery ignore the emulator, temporary folders, and whether this machine has a driver.
 *
 * @module
 */

import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CUDA_LIBRARIES,
  type CudaLibraryId,
  type DiscoveryOptions,
  locateCudaLibrary,
} from "../../ffi/cuda/discovery.ts";

/** The repository root. */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Discovery options of the process environment with emulation switched off (the real libraries). */
export function realOptions(): DiscoveryOptions {
  return { env: { ...Deno.env.toObject(), RESSL_CUDA_EMULATION: "0" } };
}

/** The folder a real library file was found in, or null when discovery finds no file for it. */
export function realLibraryDir(id: CudaLibraryId): string | null {
  try {
    const loc = locateCudaLibrary(id, realOptions());
    return loc !== null && loc.path.includes("/") ? dirname(loc.path) : null;
  } catch {
    return null;
  }
}

/** The reason a test needing the real library `id` cannot run here, or undefined if it can. */
export function missingReason(id: CudaLibraryId): string | undefined {
  return realLibraryDir(id) === null
    ? `skipped: ${CUDA_LIBRARIES[id].file} not installed (run bash scripts/setup_cuda.sh)`
    : undefined;
}

/** True when the system loader can open a CUDA driver (only on a GPU machine). */
export function driverInstalled(): boolean {
  try {
    Deno.dlopen("libcuda.so.1", {}).close();
    return true;
  } catch {
    return false;
  }
}

/** Runs `body` with a fresh temporary folder, removed afterwards. */
export async function withTempDir<T>(body: (dir: string) => T | Promise<T>): Promise<T> {
  const dir = Deno.makeTempDirSync({ prefix: "ressl_cuda_" });
  try {
    return await body(dir);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

/** Creates an empty file (and its folders) standing in for a library in search-order tests. */
export function touch(path: string): string {
  Deno.mkdirSync(dirname(path), { recursive: true });
  Deno.writeFileSync(path, new Uint8Array());
  return path;
}

/** Discovery options that see only `env` (no process environment, repository, Python, system). */
export function isolated(
  env: Record<string, string> = {},
  extra: DiscoveryOptions = {},
): DiscoveryOptions {
  return { env, repoRoot: null, pythonNvidiaDirs: [], systemSearch: false, ...extra };
}
