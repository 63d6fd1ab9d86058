/**
 * `gemm` of the cuda backend: cuBLAS (`cublasGemmEx` through the row-major helper of
 * `ffi/cuda/gemm.ts`) on the backend's stream, f32 in full precision unless TF32 was enabled, bf16
 * inputs and output with f32 accumulation. An empty inner dimension (k = 0) scales `c` by beta
 * with the project's kernels (cuBLAS's helper needs k >= 1), and beta = 0 then writes zeros, so a
 * NaN in `c` never survives.
 *
 * @module
 */

import { rowMajorGemm } from "../../../ffi/cuda/gemm.ts";
import { memsetD8Async } from "../../../ffi/cuda/memory.ts";
import { axpby } from "./elementwise.ts";
import type { CudaRuntime } from "./runtime.ts";
import type { CudaStorage } from "./storage.ts";

/** Options of one product (the contract's `gemm` with this backend's storages). */
export interface GemmCall {
  a: CudaStorage;
  b: CudaStorage;
  c: CudaStorage;
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
}

/** `c = alpha op(a) op(b) + beta c` (row-major). */
export function gemm(rt: CudaRuntime, o: GemmCall): void {
  const size = o.m * o.n;
  if (size === 0) return;
  if (o.k === 0) {
    if (o.beta === 0) {
      memsetD8Async(rt.drv, o.c.ptr, 0, o.c.at(size) - o.c.ptr, rt.stream); // f32/bf16 zero bits
    } else if (o.beta !== 1) {
      axpby(rt, { x: o.c, y: o.c, out: o.c, alpha: o.beta, beta: 0, n: size });
    }
    return;
  }
  rowMajorGemm(rt.cublas, {
    m: o.m,
    n: o.n,
    k: o.k,
    a: o.a.ptr,
    b: o.b.ptr,
    c: o.c.ptr,
    transA: o.transA,
    transB: o.transB,
    alpha: o.alpha,
    beta: o.beta,
    dtype: o.a.dtype as "f32" | "bf16",
  });
}
