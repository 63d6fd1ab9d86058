/**
 * What the cuBLAS stand-in tests share: the symbols they call, a naive f64 gemm, exact test data
 * (small multiples of 1/4), bf16/TF32 rounding models, and opening a handle on a stream.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Emu, LIB_DIR } from "./emu_helpers.ts";

const P = "pointer", I = "i32", B = "buffer", U = "u64", L = "i64";
/** The cuBLAS functions the tests call. */
export const CUBLAS_SYMBOLS = {
  cublasCreate_v2: { parameters: [B], result: I },
  cublasDestroy_v2: { parameters: [P], result: I },
  cublasSetStream_v2: { parameters: [P, P], result: I },
  cublasSetWorkspace_v2: { parameters: [P, U, "usize"], result: I },
  cublasSetMathMode: { parameters: [P, I], result: I },
  cublasGetVersion_v2: { parameters: [P, B], result: I },
  cublasSgemm_v2: { parameters: [P, I, I, I, I, I, B, U, I, U, I, B, U, I], result: I },
  cublasGemmEx: {
    parameters: [P, I, I, I, I, I, B, U, I, I, U, I, I, B, U, I, I, I, I],
    result: I,
  },
  cublasGemmStridedBatchedEx: {
    parameters: [P, I, I, I, I, I, B, U, I, I, L, U, I, I, L, B, U, I, I, L, I, I, I],
    result: I,
  },
} as const satisfies Deno.ForeignLibraryInterface;

export const R32F = 0, R16F = 2, R16BF = 14, COMPUTE_32F = 68, FAST_TF32 = 77, ALGO_DEFAULT = -1;
export const INVALID_VALUE = 7, NOT_SUPPORTED = 15, NOT_INITIALIZED = 1;

/** Column-major op(X)(r, c) for X stored with leading dimension ld. */
function at(x: ArrayLike<number>, ld: number, trans: number, r: number, c: number): number {
  return trans === 0 ? x[r + c * ld] : x[c + r * ld];
}

/** C = alpha op(A) op(B) + beta C in f64 (beta = 0: C not read). */
export function naive(
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: ArrayLike<number>,
  lda: number,
  ta: number,
  b: ArrayLike<number>,
  ldb: number,
  tb: number,
  beta: number,
  c: ArrayLike<number>,
  ldc: number,
): number[] {
  const out = Array.from(c);
  for (let j = 0; j < n; j++) {
    for (let i = 0; i < m; i++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += at(a, lda, ta, i, p) * at(b, ldb, tb, p, j);
      out[i + j * ldc] = alpha * s + (beta === 0 ? 0 : beta * c[i + j * ldc]);
    }
  }
  return out;
}

/** Small multiples of 1/4 in [-2, 2]. */
export function quarters(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => (((i * 7 + seed * 13) % 17) - 8) / 4);
}
/** f32 -> bf16 bits, round to nearest even. */
export function bf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}
/** f32 rounded to TF32 (10 mantissa bits), to nearest with ties away from zero. */
export function tf32(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer);
  u[0] = (u[0] + 0x1000) & 0xffffe000;
  return new Float32Array(u.buffer)[0];
}

/** The stand-in with a handle bound to a new stream of `emu`. */
export function openCublas(emu: Emu) {
  const lib = Deno.dlopen(join(LIB_DIR, "libcublas.so.13"), CUBLAS_SYMBOLS);
  const out = new BigUint64Array(1);
  assert.equal(lib.symbols.cublasCreate_v2(out), 0);
  const h = Deno.UnsafePointer.create(out[0]);
  const stream = emu.stream();
  assert.equal(lib.symbols.cublasSetStream_v2(h, stream), 0);
  return { lib, s: lib.symbols, h, stream };
}
