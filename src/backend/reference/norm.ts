/**
 * Batch-norm kernels of the reference backend (NCHW viewed as [n, c, hw]), with f64 accumulation.
 *
 * @module
 */

import type { BatchNormGeometry } from "../backend.ts";

/**
 * Training-mode batch norm: per channel the batch mean and biased variance (two-pass, f64) are
 * written to `mean` and `variance`, and y = gamma * (x - mean) / sqrt(variance + eps) + beta.
 */
export function batchNormForwardTrainingKernel(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  y: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  g: BatchNormGeometry,
  eps: number,
): void {
  const { n, c, hw } = g;
  const count = n * hw;
  for (let ci = 0; ci < c; ci++) {
    let total = 0;
    for (let ni = 0; ni < n; ni++) {
      const base = (ni * c + ci) * hw;
      for (let p = 0; p < hw; p++) total += x[base + p];
    }
    const mu = total / count;
    let sq = 0;
    for (let ni = 0; ni < n; ni++) {
      const base = (ni * c + ci) * hw;
      for (let p = 0; p < hw; p++) {
        const d = x[base + p] - mu;
        sq += d * d;
      }
    }
    const v = sq / count;
    normalizeChannel(x, y, ci, g, mu, v, eps, gamma[ci], beta[ci]);
    mean[ci] = mu;
    variance[ci] = v;
  }
}

/** Inference-mode batch norm with given per-channel mean and variance. */
export function batchNormForwardInferenceKernel(
  x: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  y: Float32Array,
  g: BatchNormGeometry,
  eps: number,
): void {
  for (let ci = 0; ci < g.c; ci++) {
    normalizeChannel(x, y, ci, g, mean[ci], variance[ci], eps, gamma[ci], beta[ci]);
  }
}

/** y = gamma * (x - mu) / sqrt(v + eps) + beta over channel `ci`. */
function normalizeChannel(
  x: Float32Array,
  y: Float32Array,
  ci: number,
  g: BatchNormGeometry,
  mu: number,
  v: number,
  eps: number,
  gamma: number,
  beta: number,
): void {
  const { n, c, hw } = g;
  const scale = gamma / Math.sqrt(v + eps);
  for (let ni = 0; ni < n; ni++) {
    const base = (ni * c + ci) * hw;
    for (let p = 0; p < hw; p++) y[base + p] = (x[base + p] - mu) * scale + beta;
  }
}

/**
 * Training-mode batch-norm gradient with xhat = (x - mean) / sqrt(variance + eps), M = n * hw:
 * dbeta = sum(dy), dgamma = sum(dy * xhat),
 * dx = gamma / sqrt(variance + eps) / M * (M * dy - dbeta - xhat * dgamma).
 */
export function batchNormBackwardKernel(
  x: Float32Array,
  dy: Float32Array,
  gamma: Float32Array,
  mean: Float32Array,
  variance: Float32Array,
  dx: Float32Array,
  dgamma: Float32Array,
  dbeta: Float32Array,
  g: BatchNormGeometry,
  eps: number,
): void {
  const { n, c, hw } = g;
  const count = n * hw;
  for (let ci = 0; ci < c; ci++) {
    const mu = mean[ci];
    const invStd = 1 / Math.sqrt(variance[ci] + eps);
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let ni = 0; ni < n; ni++) {
      const base = (ni * c + ci) * hw;
      for (let p = 0; p < hw; p++) {
        sumDy += dy[base + p];
        sumDyXhat += dy[base + p] * (x[base + p] - mu) * invStd;
      }
    }
    const scale = gamma[ci] * invStd / count;
    for (let ni = 0; ni < n; ni++) {
      const base = (ni * c + ci) * hw;
      for (let p = 0; p < hw; p++) {
        const xhat = (x[base + p] - mu) * invStd;
        dx[base + p] = scale * (count * dy[base + p] - sumDy - xhat * sumDyXhat);
      }
    }
    dgamma[ci] = sumDyXhat;
    dbeta[ci] = sumDy;
  }
}
