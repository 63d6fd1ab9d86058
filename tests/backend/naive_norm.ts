/**
 * Naive f64 oracles of the normalising kernels, from their definitions and independently of the
 * reference backend: batch norm (fused residual add and ReLU; the backward as the product with
 * the explicit Jacobian of y = gamma xhat + beta, O(M^2) per channel, rather than the closed
 * form), softmax and log-softmax without max-shifting and their backward through the explicit
 * Jacobian, and L2 normalisation with its Jacobian. Every function returns new Float64Arrays.
 *
 * @module
 */

import type { BatchNormGeometry } from "../../src/backend/backend.ts";

type Vals = ArrayLike<number>;

/** Indices of channel `c`'s values, image by image. */
function channel(g: BatchNormGeometry, c: number): number[] {
  const idx: number[] = [];
  for (let n = 0; n < g.n; n++) {
    for (let p = 0; p < g.hw; p++) idx.push((n * g.c + c) * g.hw + p);
  }
  return idx;
}

/** Fusion options of the batch-norm oracles. */
export interface Fusion {
  residual?: Vals | null;
  relu?: boolean;
}

/**
 * Batch norm forward: with `stats` null the batch mean and biased variance of each channel
 * (returned), else the given ones; y = act(gamma (x - mean) / sqrt(var + eps) + beta + residual).
 */
export function naiveBatchNorm(
  x: Vals,
  gamma: Vals,
  beta: Vals,
  stats: { mean: Vals; variance: Vals } | null,
  g: BatchNormGeometry,
  eps: number,
  f: Fusion = {},
): { y: Float64Array; mean: Float64Array; variance: Float64Array } {
  const y = new Float64Array(g.n * g.c * g.hw);
  const mean = new Float64Array(g.c), variance = new Float64Array(g.c);
  for (let c = 0; c < g.c; c++) {
    const idx = channel(g, c);
    let mu = 0, v = 0;
    if (stats) {
      [mu, v] = [stats.mean[c], stats.variance[c]];
    } else {
      mu = idx.reduce((a, i) => a + x[i], 0) / idx.length;
      v = idx.reduce((a, i) => a + (x[i] - mu) ** 2, 0) / idx.length;
    }
    [mean[c], variance[c]] = [mu, v];
    for (const i of idx) {
      const z = gamma[c] * (x[i] - mu) / Math.sqrt(v + eps) + beta[c] + (f.residual?.[i] ?? 0);
      y[i] = f.relu ? Math.max(z, 0) : z;
    }
  }
  return { y, mean, variance };
}

/**
 * Batch norm backward (training statistics `mean`, `variance` given): the incoming gradient
 * masked by y > 0 when `relu` (that masked gradient is dresidual), then, per channel with
 * sigma = sqrt(var + eps) and xhat = (x - mean) / sigma, dy_j/dx_i = gamma / sigma (delta_ij -
 * 1/M - xhat_i xhat_j / M), dx_i = sum_j g_j dy_j/dx_i, dgamma = sum g xhat, dbeta = sum g.
 */
export function naiveBatchNormBackward(
  x: Vals,
  dy: Vals,
  gamma: Vals,
  mean: Vals,
  variance: Vals,
  g: BatchNormGeometry,
  eps: number,
  relu: { y: Vals } | null,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array; dresidual: Float64Array } {
  const size = g.n * g.c * g.hw;
  const grad = Float64Array.from(
    { length: size },
    (_, i) => (relu && !(relu.y[i] > 0) ? 0 : dy[i]),
  );
  const dx = new Float64Array(size), dgamma = new Float64Array(g.c), dbeta = new Float64Array(g.c);
  for (let c = 0; c < g.c; c++) {
    const idx = channel(g, c), M = idx.length;
    const sigma = Math.sqrt(variance[c] + eps);
    const xhat = idx.map((i) => (x[i] - mean[c]) / sigma);
    idx.forEach((i, a) => {
      let acc = 0;
      idx.forEach((j, b) => {
        const jac = gamma[c] / sigma * ((a === b ? 1 : 0) - 1 / M - xhat[a] * xhat[b] / M);
        acc += grad[j] * jac;
      });
      dx[i] = acc;
      dgamma[c] += grad[i] * xhat[a];
      dbeta[c] += grad[i];
    });
  }
  return { dx, dgamma, dbeta, dresidual: grad };
}

/** Row-wise softmax exp(x_j) / sum_k exp(x_k) (no shift: inputs stay small in the tests). */
export function naiveSoftmax(x: Vals, rows: number, cols: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let z = 0;
    for (let j = 0; j < cols; j++) z += Math.exp(x[r * cols + j]);
    for (let j = 0; j < cols; j++) y[r * cols + j] = Math.exp(x[r * cols + j]) / z;
  }
  return y;
}

/** Row-wise log-softmax x_j - log sum_k exp(x_k). */
export function naiveLogSoftmax(x: Vals, rows: number, cols: number): Float64Array {
  return naiveSoftmax(x, rows, cols).map(Math.log);
}

/** dx_i = sum_j J_ji dy_j for the row-wise Jacobian `jac(row, i, j)` = dy_j / dx_i. */
function rowJacobianProduct(
  dy: Vals,
  rows: number,
  cols: number,
  jac: (r: number, i: number, j: number) => number,
): Float64Array {
  const dx = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < cols; i++) {
      let acc = 0;
      for (let j = 0; j < cols; j++) acc += dy[r * cols + j] * jac(r, i, j);
      dx[r * cols + i] = acc;
    }
  }
  return dx;
}

/** Softmax backward from its output y: d y_j / d x_i = y_j (delta_ij - y_i). */
export function naiveSoftmaxBackward(y: Vals, dy: Vals, rows: number, cols: number): Float64Array {
  const at = (r: number, j: number) => y[r * cols + j];
  return rowJacobianProduct(dy, rows, cols, (r, i, j) => at(r, j) * ((i === j ? 1 : 0) - at(r, i)));
}

/** Log-softmax backward from its output y: d y_j / d x_i = delta_ij - exp(y_i). */
export function naiveLogSoftmaxBackward(
  y: Vals,
  dy: Vals,
  rows: number,
  cols: number,
): Float64Array {
  return rowJacobianProduct(
    dy,
    rows,
    cols,
    (r, i, j) => (i === j ? 1 : 0) - Math.exp(y[r * cols + i]),
  );
}

function rowNorm(x: Vals, r: number, cols: number): number {
  let sq = 0;
  for (let j = 0; j < cols; j++) sq += x[r * cols + j] ** 2;
  return Math.sqrt(sq);
}

/** y = x / max(|x|, eps) per row. */
export function naiveL2Normalize(x: Vals, rows: number, cols: number, eps: number): Float64Array {
  const y = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const d = Math.max(rowNorm(x, r, cols), eps);
    for (let j = 0; j < cols; j++) y[r * cols + j] = x[r * cols + j] / d;
  }
  return y;
}

/**
 * Backward of {@link naiveL2Normalize}: where |x| >= eps, d y_j / d x_i = delta_ij / |x| -
 * x_i x_j / |x|^3; below eps the denominator is the constant eps (d y_j / d x_i = delta_ij / eps).
 */
export function naiveL2NormalizeBackward(
  x: Vals,
  dy: Vals,
  rows: number,
  cols: number,
  eps: number,
): Float64Array {
  const norms = Array.from({ length: rows }, (_, r) => rowNorm(x, r, cols));
  return rowJacobianProduct(dy, rows, cols, (r, i, j) => {
    const norm = norms[r];
    const d = i === j ? 1 : 0;
    if (!(norm >= eps && norm > 0)) return d / eps;
    return d / norm - x[r * cols + i] * x[r * cols + j] / norm ** 3;
  });
}
