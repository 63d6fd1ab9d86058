/**
 * Pooling kernels of the reference backend (NCHW): max pooling with PyTorch's rules (padding never
 * wins, the first maximum in row-major window order takes the gradient, NaN propagates) and global
 * average pooling, with f64 accumulation.
 *
 * @module
 */

import type { Opts, Pool2dGeometry } from "../backend.ts";
import { f32Of } from "./storage.ts";

/** The pooling kernels on the f32 storages of a validated call, by kernel name. */
export const poolKernels = {
  maxPool2dForward: (o: Opts<"maxPool2dForward">) =>
    maxPool2dForwardKernel(f32Of(o.x), f32Of(o.y), o.geom),
  maxPool2dBackward: (o: Opts<"maxPool2dBackward">) =>
    maxPool2dBackwardKernel(f32Of(o.x), f32Of(o.dy), f32Of(o.dx), o.geom),
  globalAvgPool: (o: Opts<"globalAvgPool">) =>
    globalAvgPoolKernel(f32Of(o.x), f32Of(o.y), o.n * o.c, o.hw),
  globalAvgPoolBackward: (o: Opts<"globalAvgPoolBackward">) =>
    globalAvgPoolBackwardKernel(f32Of(o.dy), f32Of(o.dx), o.n * o.c, o.hw),
};

/**
 * Index (within the input plane starting at `base`) of the first maximum of window (oh, ow), or -1
 * when the window holds no real input. A NaN replaces the current maximum, as PyTorch's CPU kernel.
 */
function windowArgMax(x: Float32Array, base: number, oh: number, ow: number, g: Pool2dGeometry) {
  const h0 = oh * g.strideH - g.padH;
  const w0 = ow * g.strideW - g.padW;
  const kh0 = Math.max(0, -h0);
  const kh1 = Math.min(g.kernelH, g.h - h0);
  const kw0 = Math.max(0, -w0);
  const kw1 = Math.min(g.kernelW, g.w - w0);
  let best = -Infinity;
  let arg = -1;
  for (let kh = kh0; kh < kh1; kh++) {
    const row = (h0 + kh) * g.w + w0;
    for (let kw = kw0; kw < kw1; kw++) {
      const v = x[base + row + kw];
      if (arg < 0 || v > best || v !== v) {
        best = v;
        arg = row + kw;
      }
    }
  }
  return arg;
}

/** y = max over each window (padded positions excluded). */
export function maxPool2dForwardKernel(x: Float32Array, y: Float32Array, g: Pool2dGeometry): void {
  const inPlane = g.h * g.w;
  const outPlane = g.outH * g.outW;
  for (let plane = 0; plane < g.n * g.c; plane++) {
    const xBase = plane * inPlane;
    const yBase = plane * outPlane;
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        const arg = windowArgMax(x, xBase, oh, ow, g);
        y[yBase + oh * g.outW + ow] = arg < 0 ? -Infinity : x[xBase + arg];
      }
    }
  }
}

/** dx = dy routed to the first maximum of each window (summed where windows overlap). */
export function maxPool2dBackwardKernel(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  g: Pool2dGeometry,
): void {
  const inPlane = g.h * g.w;
  const outPlane = g.outH * g.outW;
  const acc = new Float64Array(inPlane);
  for (let plane = 0; plane < g.n * g.c; plane++) {
    const xBase = plane * inPlane;
    const dyBase = plane * outPlane;
    acc.fill(0);
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        const arg = windowArgMax(x, xBase, oh, ow, g);
        if (arg >= 0) acc[arg] += dy[dyBase + oh * g.outW + ow];
      }
    }
    dx.set(acc, xBase);
  }
}

/** y[n, c] = mean of the hw pixels of x[n, c]. */
export function globalAvgPoolKernel(x: Float32Array, y: Float32Array, planes: number, hw: number) {
  for (let p = 0; p < planes; p++) {
    let total = 0;
    const base = p * hw;
    for (let i = 0; i < hw; i++) total += x[base + i];
    y[p] = total / hw;
  }
}

/** dx[n, c, i] = dy[n, c] / hw. */
export function globalAvgPoolBackwardKernel(
  dy: Float32Array,
  dx: Float32Array,
  planes: number,
  hw: number,
): void {
  for (let p = 0; p < planes; p++) dx.fill(dy[p] / hw, p * hw, (p + 1) * hw);
}
