/**
 * Batch-norm kernels of the reference backend (NCHW viewed as [n, c, hw]), with f64 accumulation,
 * fused as the contract allows: forward `y = act(bn(x) + residual)` (residual optional, act ReLU or
 * identity), backward with the ReLU mask taken from the forward's output `y` and the masked
 * gradient written to `dresidual`. x, y, residual, dy, dx and dresidual may be f32 or bf16 (one
 * dtype per call: read exactly, every result rounded once on store); the per-channel vectors are
 * f32.
 *
 * @module
 */

import type { BatchNormGeometry, Opts, Storage } from "../backend.ts";
import type { OutArray } from "./matrix.ts";
import { f32Of, readFloat, writeFloat } from "./storage.ts";

/** The optional residual input of a forward call, read, or null. */
function residualOf(r: Storage | null | undefined): Float32Array | null {
  return r ? readFloat(r) : null;
}

/** `batchNormForwardTraining`: batch mean and biased variance (two-pass, f64), then y. */
export function batchNormForwardTraining(o: Opts<"batchNormForwardTraining">): void {
  const g = o.geom;
  const x = readFloat(o.x);
  const residual = residualOf(o.residual);
  const gamma = f32Of(o.gamma), beta = f32Of(o.beta);
  const mean = f32Of(o.mean), variance = f32Of(o.variance);
  const count = g.n * g.hw;
  writeFloat(o.y, (y) => {
    for (let ci = 0; ci < g.c; ci++) {
      let total = 0;
      forChannel(g, ci, (i) => (total += x[i]));
      const mu = total / count;
      let sq = 0;
      forChannel(g, ci, (i) => (sq += (x[i] - mu) * (x[i] - mu)));
      const v = sq / count;
      normalizeChannel(x, residual, y, ci, g, mu, v, o, gamma[ci], beta[ci]);
      mean[ci] = mu;
      variance[ci] = v;
    }
  });
}

/** `batchNormForwardInference`: y with the given per-channel mean and variance. */
export function batchNormForwardInference(o: Opts<"batchNormForwardInference">): void {
  const g = o.geom;
  const x = readFloat(o.x);
  const residual = residualOf(o.residual);
  const gamma = f32Of(o.gamma), beta = f32Of(o.beta);
  const mean = f32Of(o.mean), variance = f32Of(o.variance);
  writeFloat(o.y, (y) => {
    for (let ci = 0; ci < g.c; ci++) {
      normalizeChannel(x, residual, y, ci, g, mean[ci], variance[ci], o, gamma[ci], beta[ci]);
    }
  });
}

/** Calls `f(i)` for every element index i of channel `ci`. */
function forChannel(g: BatchNormGeometry, ci: number, f: (i: number) => void): void {
  for (let ni = 0; ni < g.n; ni++) {
    const base = (ni * g.c + ci) * g.hw;
    for (let p = 0; p < g.hw; p++) f(base + p);
  }
}

/** y = act(gamma (x - mu) / sqrt(v + eps) + beta (+ residual)) over channel `ci`. */
function normalizeChannel(
  x: Float32Array,
  residual: Float32Array | null,
  y: OutArray,
  ci: number,
  g: BatchNormGeometry,
  mu: number,
  v: number,
  o: { eps: number; relu?: boolean },
  gamma: number,
  beta: number,
): void {
  const scale = gamma / Math.sqrt(v + o.eps);
  const relu = o.relu === true;
  forChannel(g, ci, (i) => {
    let z = (x[i] - mu) * scale + beta;
    if (residual) z += residual[i];
    y[i] = relu && z < 0 ? 0 : z;
  });
}

/**
 * `batchNormBackward`: with `relu` the incoming gradient is masked by y > 0 (g = dy there, else
 * 0), `dresidual` receives g; then with xhat = (x - mean) / sqrt(variance + eps), M = n * hw:
 * dbeta = sum(g), dgamma = sum(g * xhat), dx = gamma / sqrt(variance + eps) / M *
 * (M g - dbeta - xhat dgamma).
 */
export function batchNormBackward(o: Opts<"batchNormBackward">): void {
  const geom = o.geom;
  const x = readFloat(o.x);
  const dy = readFloat(o.dy);
  const gamma = f32Of(o.gamma), mean = f32Of(o.mean), variance = f32Of(o.variance);
  const dgamma = f32Of(o.dgamma), dbeta = f32Of(o.dbeta);
  let grad = dy;
  if (o.relu === true) {
    const y = readFloat(o.y!);
    grad = new Float32Array(geom.n * geom.c * geom.hw);
    for (let i = 0; i < grad.length; i++) grad[i] = y[i] > 0 ? dy[i] : 0;
  }
  if (o.dresidual) {
    const g = grad;
    writeFloat(o.dresidual, (dr) => {
      for (let i = 0; i < geom.n * geom.c * geom.hw; i++) dr[i] = g[i];
    });
  }
  const count = geom.n * geom.hw;
  writeFloat(o.dx, (dx) => {
    for (let ci = 0; ci < geom.c; ci++) {
      const mu = mean[ci];
      const invStd = 1 / Math.sqrt(variance[ci] + o.eps);
      let sumG = 0;
      let sumGXhat = 0;
      forChannel(geom, ci, (i) => {
        sumG += grad[i];
        sumGXhat += grad[i] * (x[i] - mu) * invStd;
      });
      const scale = gamma[ci] * invStd / count;
      forChannel(geom, ci, (i) => {
        const xhat = (x[i] - mu) * invStd;
        dx[i] = scale * (count * grad[i] - sumG - xhat * sumGXhat);
      });
      dgamma[ci] = sumGXhat;
      dbeta[ci] = sumG;
    }
  });
}
