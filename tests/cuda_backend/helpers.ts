/**
 * Shared pieces of the cuda backend tests: whether the emulated device is built (a skip says why
 * in its name), backends on it, and a runner of `cases.ts` in a child process for cases that need
 * their own environment or break the process-wide emulated device (allocation failures).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { emulatorDir } from "../../ffi/cuda/discovery.ts";
import { createCudaBackend, type CudaBackend } from "../../src/backend/cuda/backend.ts";
import type { CudaBackendOptions } from "../../src/backend/cuda/runtime.ts";
import { cudaTestEnv } from "../backends.ts";

/** The repository root. */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The folder of the emulator's stand-in libraries. */
export const EMULATOR_LIB = emulatorDir({ env: cudaTestEnv(), repoRoot: ROOT });

/** Why the emulated-device tests cannot run here (a test-name suffix), or "" when they can. */
export function emulatorSkip(): string {
  try {
    if (Deno.statSync(join(EMULATOR_LIB, "libcuda.so.1")).isFile) return "";
  } catch {
    // not built
  }
  return " (skipped: the emulated device is not built; run bash emulator/build.sh)";
}

/** The process environment with the emulated device selected. */
export function emulatedEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { ...Deno.env.toObject(), RESSL_CUDA_EMULATION: "1", ...extra };
}

/** A cuda backend in the test environment (the emulated device unless RESSL_CUDA_EMULATION=0). */
export function testBackend(opts: CudaBackendOptions = {}): CudaBackend {
  return createCudaBackend({ env: cudaTestEnv(), ...opts });
}

/** What a case in the child process returned or threw. */
export type CaseResult =
  | { ok: true; value: unknown }
  | { ok: false; name: string; message: string };

/** Runs `cases.ts CASE` in a child process with `env` (added to this process's environment). */
export async function runCase(name: string, env: Record<string, string>): Promise<CaseResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", join(ROOT, "tests", "cuda_backend", "cases.ts"), name],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  const line = dec.decode(out.stdout).trim().split("\n").at(-1) ?? "";
  try {
    return JSON.parse(line) as CaseResult;
  } catch {
    throw new Error(
      `case ${name} printed no result (exit ${out.code}, signal ${out.signal}):\n` +
        `${dec.decode(out.stdout)}\n${dec.decode(out.stderr)}`,
    );
  }
}
