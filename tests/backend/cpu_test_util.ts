/**
 * Helpers of the cpu backend's internal tests (`cpu_*_test.ts`): registering a test that is
 * ignored, with the reason, where oneDNN 2.6.3 is not installed; deterministic data; activations
 * in oneDNN's blocked layout (the output of a convolution, as in a network); reading a storage's
 * internal layout.
 *
 * @module
 */

import type { DType, Storage } from "../../src/backend/backend.ts";
import { type CpuBackend, createCpuBackend } from "../../src/backend/cpu/backend.ts";
import type { CpuStorage } from "../../src/backend/cpu/storage.ts";
import { DnnlUnavailableError } from "../../ffi/dnnl/mod.ts";
import { CPU_KERNELS_BUILD_COMMAND, defaultCpuKernelsPath } from "../../ffi/cpu/mod.ts";

function probe(): string | null {
  try {
    createCpuBackend({ threads: 1 }).dispose();
    return null;
  } catch (e) {
    if (e instanceof DnnlUnavailableError) return e.message;
    throw e;
  }
}

const missing = probe();

/** Registers `fn` with a fresh cpu backend (disposed afterwards), or as ignored without oneDNN. */
export function cpuTest(name: string, fn: (be: CpuBackend) => void): void {
  if (missing !== null) {
    Deno.test({ name: `${name} (skipped: ${missing})`, ignore: true, fn() {} });
    return;
  }
  Deno.test(name, () => {
    const be = createCpuBackend({ threads: 2 });
    try {
      fn(be);
    } finally {
      be.dispose();
    }
  });
}

/** Whether `build/cpu/libressl_cpu.so` (the cpu backend's own kernels) is built here. */
function ownKernelsBuilt(): boolean {
  const path = defaultCpuKernelsPath();
  try {
    return path !== null && Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Registers a test of the cpu backend's own kernels, or as ignored (saying how to build them) where
 * the library is not built. Where it is built, a library that fails to load fails the test.
 */
export function ownKernelsTest(name: string, fn: () => void): void {
  if (missing !== null || !ownKernelsBuilt()) {
    const why = missing ?? `run '${CPU_KERNELS_BUILD_COMMAND}'`;
    Deno.test({ name: `${name} (skipped: ${why})`, ignore: true, fn() {} });
    return;
  }
  Deno.test(name, fn);
}

/** n pseudo-random values in [-scale, scale) from `seed` (an LCG: the same on every run). */
export function lcg(seed: number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 * 2 - 1) * scale;
  }
  return out;
}

/** An f32 storage holding `values`. */
export function upload(be: CpuBackend, values: Float32Array): Storage {
  const s = be.alloc("f32", values.length);
  be.upload(s, values);
  return s;
}

/**
 * An [n, c, h, w] activation of `dtype` in the layout a 3x3 convolution writes (nChw16c on
 * AVX-512): the convolution of seeded data with seeded weights. Temporaries are freed.
 */
export function blockedActivation(
  be: CpuBackend,
  dtype: "f32" | "bf16",
  dims: [number, number, number, number],
  seed: number,
): Storage {
  const [n, c, h, w] = dims;
  const geom = {
    n,
    c,
    h,
    w,
    k: c,
    r: 3,
    s: 3,
    strideH: 1,
    strideW: 1,
    padH: 1,
    padW: 1,
    outH: h,
    outW: w,
  };
  const x = asDType(be, dtype, lcg(seed, n * c * h * w));
  const wt = asDType(be, dtype, lcg(seed + 1, c * c * 9, 0.3));
  const y = be.alloc(dtype, n * c * h * w);
  be.conv2dForward({ x, w: wt, y, geom });
  be.free(x);
  be.free(wt);
  return y;
}

/** A storage of `dtype` holding `values` (bf16: rounded by the backend's cast). */
export function asDType(be: CpuBackend, dtype: DType, values: Float32Array): Storage {
  const f = upload(be, values);
  if (dtype === "f32") return f;
  const b = be.alloc(dtype, values.length);
  be.cast({ x: f, y: b, n: values.length });
  be.free(f);
  return b;
}

/** The oneDNN layout a storage's bytes are in now: null for plain, else its descriptor's id. */
export function layoutOf(s: Storage): { blocked: boolean; key: string | null } {
  const md = (s as CpuStorage).md;
  return { blocked: md !== null, key: md === null ? null : md.key };
}

/** A float storage's values as f32 (bf16 bits widened exactly). */
export function readF32(be: { download(s: Storage): unknown }, s: Storage): Float32Array {
  const host = be.download(s);
  if (host instanceof Uint16Array) return Float32Array.from(host, (b) => bf16BitsToNumber(b));
  return host as Float32Array;
}

function bf16BitsToNumber(bits: number): number {
  return new Float32Array(new Uint32Array([bits << 16]).buffer)[0];
}

/**
 * Asserts |actual - expected| <= rtol * (|expected| + max |expected|) elementwise (normwise
 * relative error), naming the first bad element.
 */
export function assertNear(
  what: string,
  actual: Float32Array,
  expected: Float32Array,
  rtol: number,
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: ${actual.length} elements, expected ${expected.length}`);
  }
  let norm = 0;
  for (const e of expected) norm = Math.max(norm, Math.abs(e));
  for (let i = 0; i < expected.length; i++) {
    const tol = rtol * (Math.abs(expected[i]) + norm) + 1e-30;
    if (!(Math.abs(actual[i] - expected[i]) <= tol)) {
      throw new Error(
        `${what}[${i}] = ${actual[i]}, expected ${expected[i]} (tolerance ${tol}, ` +
          `${expected.length} elements)`,
      );
    }
  }
}
