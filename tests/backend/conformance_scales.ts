/**
 * Term magnitudes for the conformance tolerance of kernels whose outputs can cancel to nearly
 * zero (softmax and L2-normalisation gradients, batch-norm statistics and gradients): each output
 * is judged against the
 * size of the terms it is computed from.
 *
 * @module
 */

/** Term magnitudes of dx = y * (dy - sum(dy * y)): |y| * (|dy| + sum |dy * y|). */
export function softmaxBackwardScale(
  y: Float32Array,
  dy: Float32Array,
  rows: number,
  cols: number,
) {
  const out = new Float32Array(y.length);
  for (let r = 0; r < rows; r++) {
    let t = 0;
    for (let j = r * cols; j < (r + 1) * cols; j++) t += Math.abs(dy[j] * y[j]);
    for (let j = r * cols; j < (r + 1) * cols; j++) out[j] = Math.abs(y[j]) * (Math.abs(dy[j]) + t);
  }
  return out;
}

/** Term magnitudes of dx = dy - exp(y) * sum(dy): |dy| + exp(y) * sum |dy|. */
export function logSoftmaxBackwardScale(
  y: Float32Array,
  dy: Float32Array,
  rows: number,
  cols: number,
) {
  const out = new Float32Array(y.length);
  for (let r = 0; r < rows; r++) {
    let t = 0;
    for (let j = r * cols; j < (r + 1) * cols; j++) t += Math.abs(dy[j]);
    for (let j = r * cols; j < (r + 1) * cols; j++) out[j] = Math.abs(dy[j]) + Math.exp(y[j]) * t;
  }
  return out;
}

/**
 * Term magnitudes of l2Normalize's backward, dx = (dy - y (y . dy)) / max(|x|, eps) per row with
 * |y_j| <= 1: at most (cols + 1) max|dy| / max(|x|, eps) (a row of tiny norm has huge terms that
 * cancel to ~0).
 */
export function l2NormalizeBackwardScale(
  x: Float32Array,
  dy: Float32Array,
  rows: number,
  cols: number,
  eps: number,
): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    let sq = 0, mx = 0;
    for (let j = r * cols; j < (r + 1) * cols; j++) {
      sq += x[j] * x[j];
      mx = Math.max(mx, Math.abs(dy[j]));
    }
    out.fill((cols + 1) * mx / Math.max(Math.sqrt(sq), eps), r * cols, (r + 1) * cols);
  }
  return out;
}

/**
 * Term magnitudes of batch norm's outputs per channel: means and variances against max|x| (and its
 * square), y against |gamma| max|x| / sigma + |beta|, gradients against the sizes of the sums
 * they are made of (sigma from the given statistics, or the batch's own for the forward).
 */
export function bnScales(
  g: { n: number; c: number; hw: number },
  eps: number,
  x: Float32Array,
  dy: Float32Array,
  gamma: Float32Array,
  beta: Float32Array,
  stats: { mean: Float32Array; variance: Float32Array } | null,
): Record<string, Float32Array> {
  const M = g.n * g.hw;
  const sc = (len: number) => new Float32Array(len);
  const [y, mean, variance, dx, dgamma, dbeta] = [
    sc(x.length),
    sc(g.c),
    sc(g.c),
    sc(x.length),
    sc(g.c),
    sc(g.c),
  ];
  for (let ch = 0; ch < g.c; ch++) {
    const idx: number[] = [];
    for (let i = 0; i < g.n; i++) {
      for (let p = 0; p < g.hw; p++) idx.push((i * g.c + ch) * g.hw + p);
    }
    let s1 = 0, s2 = 0, mxX = 0, mxDy = 0;
    for (const j of idx) {
      s1 += x[j];
      mxX = Math.max(mxX, Math.abs(x[j]));
      mxDy = Math.max(mxDy, Math.abs(dy[j]));
    }
    const mu = stats ? stats.mean[ch] : s1 / M;
    for (const j of idx) s2 += (x[j] - mu) ** 2;
    const sigma = Math.sqrt((stats ? stats.variance[ch] : s2 / M) + eps);
    let mxHat = 0;
    for (const j of idx) mxHat = Math.max(mxHat, Math.abs(x[j] - mu) / sigma);
    mean[ch] = mxX;
    variance[ch] = mxX * mxX;
    dbeta[ch] = M * mxDy;
    dgamma[ch] = M * mxDy * mxHat;
    for (const j of idx) {
      y[j] = Math.abs(gamma[ch]) * 2 * mxX / sigma + Math.abs(beta[ch]);
      dx[j] = Math.abs(gamma[ch]) / sigma * mxDy * (2 + mxHat * mxHat);
    }
  }
  return { y, mean, variance, dx, dgamma, dbeta };
}
