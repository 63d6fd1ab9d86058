/**
 * The SyncBN kernels of the reference backend (batch norm whose statistics span several
 * processes): `batchNormStats`, `batchNormMergeStats`, `batchNormBackwardReduce` and
 * `batchNormBackwardApply`, in f64 with one rounding per stored value, as `norm.ts`.
 *
 * The array functions work on dense NCHW data (viewed as [n, c, hw]) and are shared with the cpu
 * backend, which hands them plain copies of its storages.
 *
 * @module
 */

import type { BatchNormGeometry, Opts } from "../backend.ts";
import type { OutArray } from "./matrix.ts";
import { f32Of, readFloat, writeFloat } from "./storage.ts";

/** Calls `f(i)` for every element index i of channel `ci`. */
function forChannel(g: BatchNormGeometry, ci: number, f: (i: number) => void): void {
  for (let ni = 0; ni < g.n; ni++) {
    const base = (ni * g.c + ci) * g.hw;
    for (let p = 0; p < g.hw; p++) f(base + p);
  }
}

/** stats[0..c) = mean, stats[c..2c) = biased variance per channel (two passes, f64). */
export function channelStats(x: Float32Array, g: BatchNormGeometry, stats: Float32Array): void {
  const count = g.n * g.hw;
  for (let ci = 0; ci < g.c; ci++) {
    let total = 0;
    forChannel(g, ci, (i) => (total += x[i]));
    const mu = total / count;
    let sq = 0;
    forChannel(g, ci, (i) => (sq += (x[i] - mu) * (x[i] - mu)));
    stats[ci] = mu;
    stats[g.c + ci] = sq / count;
  }
}

/** The row indices a merge reads: first, first + stride, ... (`take` of them). */
function partRows(o: { first: number; stride: number; take: number }): number[] {
  return Array.from({ length: o.take }, (_, j) => o.first + j * o.stride);
}

/** Mean and biased variance of the union of equal-sized parts (see the contract), in f64. */
export function mergeStats(
  parts: Float32Array,
  o: { c: number; first: number; stride: number; take: number },
  mean: Float32Array,
  variance: Float32Array,
): void {
  const rows = partRows(o);
  const c = o.c;
  for (let ci = 0; ci < c; ci++) {
    let total = 0;
    for (const r of rows) total += parts[r * 2 * c + ci];
    const mu = total / rows.length;
    let m2 = 0;
    for (const r of rows) {
      const d = parts[r * 2 * c + ci] - mu;
      m2 += parts[r * 2 * c + c + ci] + d * d;
    }
    mean[ci] = mu;
    variance[ci] = m2 / rows.length;
  }
}

/** dy masked by the forward's ReLU (y > 0) when `y` is given, else dy itself. */
export function maskedGrad(dy: Float32Array, y: Float32Array | null): Float32Array {
  if (y === null) return dy;
  const g = new Float32Array(dy.length);
  for (let i = 0; i < g.length; i++) g[i] = y[i] > 0 ? dy[i] : 0;
  return g;
}

/** sums[0..c) = sum(g), sums[c..2c) = sum(g * xhat) per channel, f64. */
export function reduceSums(
  x: Float32Array,
  grad: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  eps: number,
  g: BatchNormGeometry,
  sums: Float32Array,
): void {
  for (let ci = 0; ci < g.c; ci++) {
    const mu = mean[ci];
    const invStd = 1 / Math.sqrt(variance[ci] + eps);
    let s1 = 0;
    let s2 = 0;
    forChannel(g, ci, (i) => {
      s1 += grad[i];
      s2 += grad[i] * (x[i] - mu) * invStd;
    });
    sums[ci] = s1;
    sums[g.c + ci] = s2;
  }
}

/** dx of the batch norm over all parts from the selected rows of `sums` (see the contract). */
export function applyGrad(
  x: Float32Array,
  grad: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  sums: Float32Array,
  o: { first: number; stride: number; take: number; count: number; eps: number },
  g: BatchNormGeometry,
  dx: OutArray,
): void {
  const rows = partRows(o);
  const m = o.count;
  for (let ci = 0; ci < g.c; ci++) {
    let s1 = 0;
    let s2 = 0;
    for (const r of rows) {
      s1 += sums[r * 2 * g.c + ci];
      s2 += sums[r * 2 * g.c + g.c + ci];
    }
    const mu = mean[ci];
    const invStd = 1 / Math.sqrt(variance[ci] + o.eps);
    const scale = gamma[ci] * invStd / m;
    forChannel(g, ci, (i) => {
      const xhat = (x[i] - mu) * invStd;
      dx[i] = scale * (m * grad[i] - s1 - xhat * s2);
    });
  }
}

/** `batchNormStats`. */
export function batchNormStats(o: Opts<"batchNormStats">): void {
  channelStats(readFloat(o.x), o.geom, f32Of(o.stats));
}

/** `batchNormMergeStats`. */
export function batchNormMergeStats(o: Opts<"batchNormMergeStats">): void {
  mergeStats(f32Of(o.parts), o, f32Of(o.mean), f32Of(o.variance));
}

/** `batchNormBackwardReduce`. */
export function batchNormBackwardReduce(o: Opts<"batchNormBackwardReduce">): void {
  const grad = maskedGrad(readFloat(o.dy), o.relu === true ? readFloat(o.y!) : null);
  const x = readFloat(o.x);
  reduceSums(x, grad, f32Of(o.mean), f32Of(o.variance), o.eps, o.geom, f32Of(o.sums));
}

/** `batchNormBackwardApply`. */
export function batchNormBackwardApply(o: Opts<"batchNormBackwardApply">): void {
  const grad = maskedGrad(readFloat(o.dy), o.relu === true ? readFloat(o.y!) : null);
  const x = readFloat(o.x);
  const [gamma, mean, variance] = [f32Of(o.gamma), f32Of(o.mean), f32Of(o.variance)];
  writeFloat(o.dx, (dx) => applyGrad(x, grad, gamma, mean, variance, f32Of(o.sums), o, o.geom, dx));
  if (o.dresidual) {
    writeFloat(o.dresidual, (dr) => {
      for (let i = 0; i < grad.length; i++) dr[i] = grad[i];
    });
  }
}
