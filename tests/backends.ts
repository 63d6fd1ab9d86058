/**
 * The backends tests run on: every backend that loads here. Tests that should hold on every
 * backend loop over {@link availableBackends} (or use {@link forEachBackend}), so a new backend is
 * one entry in `CANDIDATES`: its name, how to import and create it, and the name of the error
 * class that means "not installed here" (any other error while creating it fails the tests
 * instead of skipping them). A backend's module is imported only when it is selected.
 *
 * `RESSL_TEST_BACKENDS=reference,cpu` restricts the run to the named backends (a CI matrix, or a
 * backend that is being rebuilt); a named backend that does not load is reported as skipped.
 *
 * @module
 */

import type { Backend } from "../src/backend/backend.ts";

/** A backend tests can create. */
export interface TestBackend {
  /** `reference`, `cpu`, `cuda`, ... */
  name: string;
  /** A fresh instance (dispose it after use). */
  create: () => Backend;
}

interface Candidate {
  name: string;
  /** Imports the backend's module (only when selected) and returns its factory. */
  load: () => Promise<() => Backend>;
  /** The name of the error class that means "not available here" (a missing native library). */
  unavailable?: string;
}

/** Every backend the project has, in the order tests report them. */
const CANDIDATES: Candidate[] = [
  {
    name: "reference",
    load: async () => (await import("../src/backend/reference/backend.ts")).createReferenceBackend,
  },
  {
    name: "cpu",
    load: async () => {
      const { createCpuBackend, THREADS_ENV } = await import("../src/backend/cpu/backend.ts");
      // One OpenMP thread unless RESSL_THREADS says otherwise: test files run in parallel on
      // few cores, where oneDNN's thread barriers make small kernels 10-100x slower.
      const threads = Deno.env.get(THREADS_ENV) === undefined ? 1 : undefined;
      // Direct convolutions: Winograd's error is bounded per 4x4 output tile, not per element, so
      // it fails the per-element conformance tolerance on adversarial values (an exact zero next
      // to large outputs comes out as ~1e-7 of them); tests/backend/cpu_winograd_test.ts checks
      // the cpu backend's default (Winograd) on its own terms.
      return () => createCpuBackend({ threads, tuning: { winograd: false } });
    },
    unavailable: "DnnlUnavailableError",
  },
  {
    name: "cuda",
    load: async () => {
      const { createCudaBackend } = await import("../src/backend/cuda/backend.ts");
      const env = cudaTestEnv();
      return () => createCudaBackend({ env });
    },
    unavailable: "CudaUnavailableError",
  },
];

/**
 * The environment the cuda backend is tested in: the process's, with `RESSL_CUDA_EMULATION`
 * defaulting to 1, so tests run on the emulated device (built by `scripts/setup.sh`) unless
 * `RESSL_CUDA_EMULATION=0` asks for a real GPU (what `deno task gpu-check` does).
 */
export function cudaTestEnv(): Record<string, string> {
  const env = Deno.env.toObject();
  return { ...env, RESSL_CUDA_EMULATION: env.RESSL_CUDA_EMULATION ?? "1" };
}

/** The environment variable restricting the backends under test (comma-separated names). */
export const TEST_BACKENDS_ENV = "RESSL_TEST_BACKENDS";

async function probe(): Promise<{
  available: TestBackend[];
  missing: { name: string; reason: string }[];
}> {
  const only = Deno.env.get(TEST_BACKENDS_ENV)?.split(",").map((s) => s.trim()).filter(Boolean);
  const available: TestBackend[] = [];
  const missing: { name: string; reason: string }[] = [];
  for (const c of CANDIDATES) {
    if (only && !only.includes(c.name)) {
      missing.push({ name: c.name, reason: `not in ${TEST_BACKENDS_ENV}=${only.join(",")}` });
      continue;
    }
    const factory = await c.load();
    const create = () => factory();
    try {
      create().dispose();
      available.push({ name: c.name, create });
    } catch (e) {
      if (!(c.unavailable && e instanceof Error && e.name === c.unavailable)) throw e;
      missing.push({ name: c.name, reason: e.message });
    }
  }
  return { available, missing };
}

const probed = await probe();

/** The backends available here (reference always, unless excluded by the environment). */
export function availableBackends(): readonly TestBackend[] {
  return probed.available;
}

/**
 * Calls `define(backend)` for every available backend (it registers that backend's tests) and
 * registers one ignored test per unavailable backend, saying why, under `label`.
 */
export function forEachBackend(label: string, define: (backend: TestBackend) => void): void {
  for (const b of probed.available) define(b);
  for (const m of probed.missing) {
    Deno.test({ name: `${label} ${m.name}: skipped (${m.reason})`, ignore: true, fn() {} });
  }
}

/** The signature of the `test` functions {@link backendTest} returns. */
export type BackendTestFn = {
  (name: string, fn: () => void | Promise<void>): void;
  (def: { name: string; ignore?: boolean; fn: () => void | Promise<void> }): void;
};

/** `Deno.test` with ` [backend]` appended to every test name, for tests defined per backend. */
export function backendTest(backend: TestBackend): BackendTestFn {
  return ((
    a: string | { name: string; ignore?: boolean; fn: () => void | Promise<void> },
    fn?: () => void | Promise<void>,
  ) => {
    const def = typeof a === "string" ? { name: a, fn: fn! } : a;
    Deno.test({ ...def, name: `${def.name} [${backend.name}]` });
  }) as BackendTestFn;
}
