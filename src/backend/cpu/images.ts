/**
 * Argument checks and dispatch of the cpu backend's image kernels (convolution, batch norm,
 * pooling); `cpu.ts` delegates to these after checking that the backend is open.
 *
 * @module
 */

import type { Backend, BatchNormGeometry, DType, Storage } from "../backend.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";
import * as conv from "./conv.ts";
import * as norm from "./norm.ts";
import * as pool from "./pool.ts";
import type { Conv2dGeometry, Pool2dGeometry } from "../backend.ts";
import {
  checkBatchNorm,
  checkConvGeometry,
  checkDims,
  checkDistinct,
  checkPoolGeometry,
  cpuStorage,
} from "./validate.ts";

const F32: DType = "f32";

function own(
  be: Backend,
  k: string,
  name: string,
  s: Storage,
  dtype: DType | null,
  needed: number,
): CpuStorage {
  return cpuStorage(be, k, name, s, dtype, needed);
}

/** Checks the arguments of `conv2dForward`, then runs it. */
export function conv2dForward(
  be: Backend,
  rt: CpuRuntime,
  o: { x: Storage; w: Storage; y: Storage; geom: Conv2dGeometry },
): void {
  const [K, g] = ["conv2dForward", o.geom];
  checkConvGeometry(K, g);
  checkDistinct(K, { y: o.y }, { x: o.x, w: o.w });
  const x = own(be, K, "x", o.x, F32, g.n * g.c * g.h * g.w);
  const w = own(be, K, "w", o.w, F32, g.k * g.c * g.r * g.s);
  conv.conv2dForward(rt, x, w, own(be, K, "y", o.y, F32, g.n * g.k * g.outH * g.outW), g);
}

/** Checks the arguments of `conv2dBackwardData`, then runs it. */
export function conv2dBackwardData(
  be: Backend,
  rt: CpuRuntime,
  o: { dy: Storage; w: Storage; dx: Storage; geom: Conv2dGeometry },
): void {
  const [K, g] = ["conv2dBackwardData", o.geom];
  checkConvGeometry(K, g);
  checkDistinct(K, { dx: o.dx }, { dy: o.dy, w: o.w });
  const dy = own(be, K, "dy", o.dy, F32, g.n * g.k * g.outH * g.outW);
  const w = own(be, K, "w", o.w, F32, g.k * g.c * g.r * g.s);
  conv.conv2dBackwardData(rt, dy, w, own(be, K, "dx", o.dx, F32, g.n * g.c * g.h * g.w), g);
}

/** Checks the arguments of `conv2dBackwardWeights`, then runs it. */
export function conv2dBackwardWeights(
  be: Backend,
  rt: CpuRuntime,
  o: { x: Storage; dy: Storage; dw: Storage; geom: Conv2dGeometry },
): void {
  const [K, g] = ["conv2dBackwardWeights", o.geom];
  checkConvGeometry(K, g);
  checkDistinct(K, { dw: o.dw }, { x: o.x, dy: o.dy });
  const x = own(be, K, "x", o.x, F32, g.n * g.c * g.h * g.w);
  const dy = own(be, K, "dy", o.dy, F32, g.n * g.k * g.outH * g.outW);
  const dw = own(be, K, "dw", o.dw, F32, g.k * g.c * g.r * g.s);
  conv.conv2dBackwardWeights(rt, x, dy, dw, g);
}

/** Checks the arguments of `batchNormForwardTraining`, then runs it. */
export function batchNormForwardTraining(be: Backend, rt: CpuRuntime, o: {
  x: Storage;
  gamma: Storage;
  beta: Storage;
  y: Storage;
  mean: Storage;
  variance: Storage;
  geom: BatchNormGeometry;
  eps: number;
}): void {
  const K = "batchNormForwardTraining";
  const s = bnStorages(be, K, o, ["x", "gamma", "beta"], ["y", "mean", "variance"]);
  norm.batchNormForwardTraining(rt, { ...s, geom: o.geom, eps: o.eps } as never);
}

/** Checks the arguments of `batchNormForwardInference`, then runs it. */
export function batchNormForwardInference(be: Backend, rt: CpuRuntime, o: {
  x: Storage;
  gamma: Storage;
  beta: Storage;
  mean: Storage;
  variance: Storage;
  y: Storage;
  geom: BatchNormGeometry;
  eps: number;
}): void {
  const K = "batchNormForwardInference";
  const s = bnStorages(be, K, o, ["x", "gamma", "beta", "mean", "variance"], ["y"]);
  norm.batchNormForwardInference(rt, { ...s, geom: o.geom, eps: o.eps } as never);
}

/** Checks the arguments of `batchNormBackward`, then runs it. */
export function batchNormBackward(be: Backend, rt: CpuRuntime, o: {
  x: Storage;
  dy: Storage;
  gamma: Storage;
  mean: Storage;
  variance: Storage;
  dx: Storage;
  dgamma: Storage;
  dbeta: Storage;
  geom: BatchNormGeometry;
  eps: number;
}): void {
  const K = "batchNormBackward";
  const s = bnStorages(be, K, o, ["x", "dy", "gamma", "mean", "variance"], [
    "dx",
    "dgamma",
    "dbeta",
  ]);
  norm.batchNormBackward(rt, { ...s, geom: o.geom, eps: o.eps } as never);
}

/** Checks the arguments of `maxPool2dForward`, then runs it. */
export function maxPool2dForward(
  be: Backend,
  rt: CpuRuntime,
  o: { x: Storage; y: Storage; geom: Pool2dGeometry },
): void {
  const [K, g] = ["maxPool2dForward", o.geom];
  checkPoolGeometry(K, g);
  checkDistinct(K, { y: o.y }, { x: o.x });
  const x = own(be, K, "x", o.x, F32, g.n * g.c * g.h * g.w);
  pool.maxPool2dForward(rt, x, own(be, K, "y", o.y, F32, g.n * g.c * g.outH * g.outW), g);
}

/** Checks the arguments of `maxPool2dBackward`, then runs it. */
export function maxPool2dBackward(
  be: Backend,
  rt: CpuRuntime,
  o: { x: Storage; dy: Storage; dx: Storage; geom: Pool2dGeometry },
): void {
  const [K, g] = ["maxPool2dBackward", o.geom];
  checkPoolGeometry(K, g);
  checkDistinct(K, { dx: o.dx }, { x: o.x, dy: o.dy });
  const x = own(be, K, "x", o.x, F32, g.n * g.c * g.h * g.w);
  const dy = own(be, K, "dy", o.dy, F32, g.n * g.c * g.outH * g.outW);
  const dx = own(be, K, "dx", o.dx, F32, g.n * g.c * g.h * g.w);
  pool.maxPool2dBackward(rt, x, dy, dx, g);
}

/** Checks the arguments of `globalAvgPool`, then runs it. */
export function globalAvgPool(
  be: Backend,
  rt: CpuRuntime,
  o: { x: Storage; y: Storage; n: number; c: number; hw: number },
): void {
  const K = "globalAvgPool";
  checkDims(K, { n: o.n, c: o.c, hw: o.hw }, 1);
  checkDistinct(K, { y: o.y }, { x: o.x });
  const x = own(be, K, "x", o.x, F32, o.n * o.c * o.hw);
  pool.globalAvgPool(rt, { ...o, x, y: own(be, K, "y", o.y, F32, o.n * o.c) });
}

/** Checks the arguments of `globalAvgPoolBackward`, then runs it. */
export function globalAvgPoolBackward(
  be: Backend,
  rt: CpuRuntime,
  o: { dy: Storage; dx: Storage; n: number; c: number; hw: number },
) {
  const K = "globalAvgPoolBackward";
  checkDims(K, { n: o.n, c: o.c, hw: o.hw }, 1);
  checkDistinct(K, { dx: o.dx }, { dy: o.dy });
  const dy = own(be, K, "dy", o.dy, F32, o.n * o.c);
  pool.globalAvgPoolBackward(rt, {
    ...o,
    dy,
    dx: own(be, K, "dx", o.dx, F32, o.n * o.c * o.hw),
  });
}

function bnStorages(
  be: Backend,
  kernel: string,
  o: Record<string, unknown> & { geom: BatchNormGeometry; eps: number },
  inputs: string[],
  outputs: string[],
): Record<string, CpuStorage> {
  const g = o.geom;
  checkBatchNorm(kernel, g, o.eps);
  const pick = (names: string[]) => Object.fromEntries(names.map((n) => [n, o[n] as Storage]));
  checkDistinct(kernel, pick(outputs), pick(inputs));
  const size = (name: string) =>
    (name === "x" || name === "y" || name === "dx" || name === "dy") ? g.n * g.c * g.hw : g.c;
  return Object.fromEntries(
    [...inputs, ...outputs].map((n) => [n, own(be, kernel, n, o[n] as Storage, F32, size(n))]),
  );
}
