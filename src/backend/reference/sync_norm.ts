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

// The loops below visit channel ci of image ni as the contiguous run [(ni c + ci) hw, + hw): plain
// loops without callbacks (these kernels run once per batch norm of every data-parallel step).

/** stats[0..c) = mean, stats[c..2c) = biased variance per channel (two passes, f64). */
export function channelStats(x: Float32Array, g: BatchNormGeometry, stats: Float32Array): void {
  const { n, c, hw } = g;
  const count = n * hw;
  for (let ci = 0; ci < c; ci++) {
    let total = 0;
    for (let ni = 0; ni < n; ni++) {
      const base = (ni * c + ci) * hw;
      for (let p = base; p < base + hw; p++) total += x[p];
    }
    const mu = total / count;
    let sq = 0;
    for (let ni = 0; ni < n; ni++) {
      const base = (ni * c + ci) * hw;
      for (let p = base; p < base + hw; p++) {
        const d = x[p] - mu;
        sq += d * d;
      }
    }
    stats[ci] = mu;
    stats[c + ci] = sq / count;
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
  const { n, c, hw } = g;
  for (let ci = 0; ci < c; ci++) {
    const mu = mean[ci];
    const invStd = 1 / Math.sqrt(variance[ci] + eps);
    let s1 = 0;
    let s2 = 0;
    for (let ni = 0; ni < n; ni++) {
      const base = (ni * c + ci) * hw;
      for (let p = base; p < base + hw; p++) {
        s1 += grad[p];
        s2 += grad[p] * (x[p] - mu);
      }
    }
    sums[ci] = s1;
    sums[c + ci] = s2 * invStd;
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
  const { n, c, hw } = g;
  const rows = partRows(o);
  const m = o.count;
  for (let ci = 0; ci < c; ci++) {
    let s1 = 0;
    let s2 = 0;
    for (const r of rows) {
      s1 += sums[r * 2 * c + ci];
      s2 += sums[r * 2 * c + c + ci];
    }
    const mu = mean[ci];
    const invStd = 1 / Math.sqrt(variance[ci] + o.eps);
    // dx = scale (m g - s1 - xhat s2) = a g + b (x - mu) + d
    const scale = gamma[ci] * invStd / m;
    const a = scale * m, b = -scale * s2 * invStd, d = -scale * s1;
    for (let ni = 0; ni < n; ni++) {
      const base = (ni * c + ci) * hw;
      for (let p = base; p < base + hw; p++) dx[p] = a * grad[p] + b * (x[p] - mu) + d;
    }
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
