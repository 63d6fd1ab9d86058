/**
 * Pooling kernels of the cuda backend (`pool.cu`, NCHW f32): max pooling forward and backward
 * (the first maximum of a window takes the gradient, as PyTorch), global average pooling forward
 * (one warp per plane) and backward.
 *
 * @module
 */

import type { Pool2dGeometry } from "../backend.ts";
import { BLOCK, gridFor } from "./kernel_image.ts";
import type { CudaRuntime } from "./runtime.ts";
import type { CudaStorage } from "./storage.ts";

const geometryArgs = (g: Pool2dGeometry) => [
  g.n,
  g.c,
  g.h,
  g.w,
  g.kernelH,
  g.kernelW,
  g.strideH,
  g.strideW,
  g.padH,
  g.padW,
  g.outH,
  g.outW,
];

/** Max pooling forward. */
export function maxPool2dForward(
  rt: CudaRuntime,
  x: CudaStorage,
  y: CudaStorage,
  g: Pool2dGeometry,
): void {
  const n = g.n * g.c * g.outH * g.outW;
  rt.kernels.launch("max_pool2d_forward_f32", gridFor(n), BLOCK, [
    x.ptr,
    y.ptr,
    ...geometryArgs(g),
  ]);
}

/** Max pooling backward: every element of `dx` written. */
export function maxPool2dBackward(
  rt: CudaRuntime,
  x: CudaStorage,
  dy: CudaStorage,
  dx: CudaStorage,
  g: Pool2dGeometry,
): void {
  const n = g.n * g.c * g.h * g.w;
  rt.kernels.launch("max_pool2d_backward_f32", gridFor(n), BLOCK, [
    x.ptr,
    dy.ptr,
    dx.ptr,
    ...geometryArgs(g),
  ]);
}

/** `y[plane] = mean of x[plane]` for `n c` planes of `hw` pixels (a mean of none is NaN). */
export function globalAvgPool(
  rt: CudaRuntime,
  o: { x: CudaStorage; y: CudaStorage; n: number; c: number; hw: number },
): void {
  const planes = o.n * o.c;
  if (planes === 0) return;
  const warps = BLOCK / 32;
  rt.kernels.launch("global_avg_pool_f32", gridFor(planes, warps), BLOCK, [
    o.x.ptr,
    o.y.ptr,
    planes,
    o.hw,
  ]);
}

/** `dx[plane, p] = dy[plane] / hw`. */
export function globalAvgPoolBackward(
  rt: CudaRuntime,
  o: { dy: CudaStorage; dx: CudaStorage; n: number; c: number; hw: number },
): void {
  const n = o.n * o.c * o.hw;
  if (n === 0) return;
  rt.kernels.launch("global_avg_pool_backward_f32", gridFor(n), BLOCK, [
    o.dy.ptr,
    o.dx.ptr,
    o.n * o.c,
    o.hw,
  ]);
}
