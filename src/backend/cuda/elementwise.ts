/**
 * Elementwise kernels of the cuda backend (`elementwise.cu`): cast, axpby, mul, scalar broadcast,
 * ReLU and its backward, and the two-pass sum. Grid-stride launches of {@link BLOCK} threads;
 * nothing is launched for zero elements (except `sum`, whose result is then 0).
 *
 * @module
 */

import { copyDtoDAsync } from "../../../ffi/cuda/memory.ts";
import { BLOCK, gridFor } from "./kernel_image.ts";
import type { CudaRuntime } from "./runtime.ts";
import type { CudaStorage } from "./storage.ts";

/** `y = x` converted between f32 and bf16 (same dtype: a device copy). */
export function cast(rt: CudaRuntime, x: CudaStorage, y: CudaStorage, n: number): void {
  if (n === 0) return;
  if (x.dtype === y.dtype) {
    copyDtoDAsync(rt.drv, y.ptr, x.ptr, n * (x.dtype === "f32" ? 4 : 2), rt.stream);
    return;
  }
  const name = x.dtype === "f32" ? "cast_f32_to_bf16" : "cast_bf16_to_f32";
  rt.kernels.launch(name, gridFor(n), BLOCK, [x.ptr, y.ptr, n]);
}

/** `out = alpha x + beta y` (f32 or bf16; `out` may be `x` or `y`). */
export function axpby(
  rt: CudaRuntime,
  o: { x: CudaStorage; y: CudaStorage; out: CudaStorage; alpha: number; beta: number; n: number },
): void {
  if (o.n === 0) return;
  const name = o.x.dtype === "bf16" ? "axpby_bf16" : "axpby_f32";
  rt.kernels.launch(name, gridFor(o.n), BLOCK, [o.x.ptr, o.y.ptr, o.out.ptr, o.alpha, o.beta, o.n]);
}

/** `out = a * b`. */
export function mul(rt: CudaRuntime, a: CudaStorage, b: CudaStorage, out: CudaStorage, n: number) {
  if (n === 0) return;
  rt.kernels.launch("mul_f32", gridFor(n), BLOCK, [a.ptr, b.ptr, out.ptr, n]);
}

/** `out[i] = alpha s[0]`. */
export function broadcastScalar(
  rt: CudaRuntime,
  s: CudaStorage,
  out: CudaStorage,
  alpha: number,
  n: number,
): void {
  if (n === 0) return;
  rt.kernels.launch("broadcast_scalar_f32", gridFor(n), BLOCK, [s.ptr, out.ptr, alpha, n]);
}

/** `y = max(x, 0)`. */
export function relu(rt: CudaRuntime, x: CudaStorage, y: CudaStorage, n: number): void {
  if (n === 0) return;
  const name = x.dtype === "bf16" ? "relu_bf16" : "relu_f32";
  rt.kernels.launch(name, gridFor(n), BLOCK, [x.ptr, y.ptr, n]);
}

/** `dx = y > 0 ? dy : 0`. */
export function reluBackward(
  rt: CudaRuntime,
  y: CudaStorage,
  dy: CudaStorage,
  dx: CudaStorage,
  n: number,
): void {
  if (n === 0) return;
  const name = y.dtype === "bf16" ? "relu_backward_bf16" : "relu_backward_f32";
  rt.kernels.launch(name, gridFor(n), BLOCK, [y.ptr, dy.ptr, dx.ptr, n]);
}

/** Blocks of the first pass of `sum` over `n` elements (README: min(ceil(n / 2048), 1024), >= 1). */
export function sumBlocks(n: number): number {
  return Math.max(1, Math.min(1024, Math.ceil(n / 2048)));
}

/**
 * `out[0] = alpha sum(x)`: per-block f64 partials into scratch, then one block adds them in order
 * (f64 throughout: the terms of a loss cancel).
 */
export function sum(
  rt: CudaRuntime,
  x: CudaStorage,
  out: CudaStorage,
  alpha: number,
  n: number,
): void {
  const g = sumBlocks(n);
  const partials = rt.scratch(g * 8);
  try {
    rt.kernels.launch("sum_partials_f32", g, BLOCK, [x.ptr, partials, n]);
    rt.kernels.launch("sum_finish_f32", 1, BLOCK, [partials, g, out.ptr, alpha]);
  } finally {
    rt.release(partials);
  }
}
