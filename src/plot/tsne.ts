/**
 * Exact t-SNE (van der Maaten & Hinton, 2008) for up to a few thousand points: O(N^2) memory and
 * time per iteration. Input affinities come from a per-point binary search of the Gaussian
 * precision that matches the perplexity; the 2-D map is optimised by gradient descent with early
 * exaggeration, momentum and per-coordinate gains, as scikit-learn's `method="exact"`. Everything
 * runs in f64 in a fixed order, so a seed gives the same map on every run.
 *
 * @module
 */

import { RandomStream, rngKey } from "../random/philox.ts";

/** Options of {@link tsne}. */
export interface TsneOptions {
  /** Effective number of neighbours (default 30; lowered to (N - 1) / 3 for small N). */
  perplexity?: number;
  /** Gradient steps (default 1000). */
  iterations?: number;
  /** Steps with exaggerated affinities at the start (default 250). */
  exaggerationIterations?: number;
  /** Factor on the affinities during the first steps (default 12). */
  earlyExaggeration?: number;
  /** Step size (default scikit-learn's "auto": max(N / exaggeration / 4, 50)). */
  learningRate?: number;
  /** Momentum during the early phase, then after it (default 0.5, 0.8). */
  momentum?: [number, number];
  /** Seed of the initial map (N(0, 1e-4^2) per coordinate). Default 0. */
  seed?: number;
}

/** What {@link tsne} returns. */
export interface TsneResult {
  /** The map, [N, 2] row-major, centred on the origin. */
  coords: Float64Array;
  /** KL divergence between the input affinities and the map's at the end. */
  kl: number;
  /** The perplexity used (after the small-N adjustment). */
  perplexity: number;
}

const MACHINE_EPSILON = 2.220446049250313e-16;

/** Squared Euclidean distances [N, N] (f64) between the rows of `x` ([N, dim]). */
export function squaredDistances(x: ArrayLike<number>, n: number, dim: number): Float64Array {
  const d = new Float64Array(n * n);
  const row = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < dim; k++) row[k] = x[i * dim + k];
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      const o = j * dim;
      for (let k = 0; k < dim; k++) {
        const t = row[k] - x[o + k];
        s += t * t;
      }
      d[i * n + j] = s;
      d[j * n + i] = s;
    }
  }
  return d;
}

/**
 * Conditional affinities p(j|i) [N, N] (rows sum to 1, zero diagonal): for each row a binary
 * search on the Gaussian precision beta so that the row's entropy (nats) is log(perplexity) within
 * `tol`.
 */
export function conditionalAffinities(
  dist: Float64Array,
  n: number,
  perplexity: number,
  tol = 1e-5,
  maxSteps = 100,
): Float64Array {
  const p = new Float64Array(n * n);
  const target = Math.log(perplexity);
  for (let i = 0; i < n; i++) {
    const o = i * n;
    let dmin = Infinity;
    for (let j = 0; j < n; j++) if (j !== i && dist[o + j] < dmin) dmin = dist[o + j];
    let beta = 1, lo = -Infinity, hi = Infinity;
    for (let step = 0; step < maxSteps; step++) {
      // p_j ∝ exp(-beta (d_j - dmin)); H = log Z + beta * E[d - dmin]
      let z = 0, ed = 0;
      for (let j = 0; j < n; j++) {
        if (j === i) continue;
        const dj = dist[o + j] - dmin;
        const e = Math.exp(-beta * dj);
        p[o + j] = e;
        z += e;
        ed += e * dj;
      }
      const h = Math.log(z) + beta * ed / z;
      for (let j = 0; j < n; j++) p[o + j] /= z;
      const diff = h - target;
      if (Math.abs(diff) <= tol) break;
      if (diff > 0) { // too flat: sharpen
        lo = beta;
        beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
      } else {
        hi = beta;
        beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2;
      }
    }
    p[o + i] = 0;
  }
  return p;
}

/**
 * Joint affinities P = (P_cond + P_cond^T) / sum, floored at machine epsilon, zero diagonal; computed
 * in place of `p` and returned.
 */
export function jointAffinities(p: Float64Array, n: number): Float64Array {
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const s = p[i * n + j] + p[j * n + i];
      p[i * n + j] = s;
      p[j * n + i] = s;
      sum += 2 * s;
    }
  }
  sum = Math.max(sum, MACHINE_EPSILON);
  for (let k = 0; k < n * n; k++) p[k] = Math.max(p[k] / sum, MACHINE_EPSILON);
  for (let i = 0; i < n; i++) p[i * n + i] = 0;
  return p;
}

/** KL(P || Q) of a map `y` [N, 2] under joint affinities `p` (Q: Student-t kernel of the map). */
export function klDivergence(p: Float64Array, y: Float64Array, n: number): number {
  let z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      z += 2 / (1 + dx * dx + dy * dy);
    }
  }
  let kl = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      const q = Math.max(1 / (1 + dx * dx + dy * dy) / z, MACHINE_EPSILON);
      const pij = p[i * n + j];
      kl += 2 * pij * Math.log(Math.max(pij, MACHINE_EPSILON) / q);
    }
  }
  return kl;
}

/**
 * Gradient of KL(P || Q) with respect to the map `y` [N, 2], with P scaled by `exag` (early
 * exaggeration), written into `grad` [N, 2].
 */
export function klGradient(
  p: Float64Array,
  y: Float64Array,
  n: number,
  exag: number,
  grad: Float64Array,
): void {
  let z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1];
      z += 2 / (1 + dx * dx + dy * dy);
    }
  }
  const invZ = 1 / Math.max(z, MACHINE_EPSILON);
  grad.fill(0);
  for (let i = 0; i < n; i++) {
    const yi0 = y[2 * i], yi1 = y[2 * i + 1];
    let g0 = 0, g1 = 0;
    for (let j = i + 1; j < n; j++) {
      const dx = yi0 - y[2 * j], dy = yi1 - y[2 * j + 1];
      const num = 1 / (1 + dx * dx + dy * dy);
      const c = 4 * (exag * p[i * n + j] - num * invZ) * num;
      g0 += c * dx;
      g1 += c * dy;
      grad[2 * j] -= c * dx;
      grad[2 * j + 1] -= c * dy;
    }
    grad[2 * i] += g0;
    grad[2 * i + 1] += g1;
  }
}

/**
 * Embeds the rows of `x` ([n, dim], row-major) in 2-D with exact t-SNE. Deterministic for a given
 * input, options and seed. Throws when `x` does not hold `n * dim` values, holds a non-finite value,
 * or when n < 2.
 */
export function tsne(
  x: ArrayLike<number>,
  n: number,
  dim: number,
  options: TsneOptions = {},
): TsneResult {
  if (!(Number.isInteger(n) && n >= 2 && Number.isInteger(dim) && dim >= 1)) {
    throw new RangeError(
      `Cannot run t-SNE on ${n} points of dimension ${dim}: need n >= 2, dim >= 1`,
    );
  }
  if (x.length !== n * dim) {
    throw new RangeError(`Cannot run t-SNE: ${x.length} values are not ${n} points x ${dim}`);
  }
  for (let k = 0; k < x.length; k++) {
    if (!Number.isFinite(x[k])) {
      throw new RangeError(`Cannot run t-SNE: point ${Math.floor(k / dim)} holds ${x[k]}`);
    }
  }
  const perplexity = Math.min(options.perplexity ?? 30, Math.max(1, (n - 1) / 3));
  if (!(perplexity >= 1)) throw new RangeError(`Cannot run t-SNE at perplexity ${perplexity}`);
  const iterations = options.iterations ?? 1000;
  const exagIters = Math.min(options.exaggerationIterations ?? 250, iterations);
  const exaggeration = options.earlyExaggeration ?? 12;
  const lr = options.learningRate ?? Math.max(n / exaggeration / 4, 50);
  const [m0, m1] = options.momentum ?? [0.5, 0.8];

  const p = jointAffinities(conditionalAffinities(squaredDistances(x, n, dim), n, perplexity), n);
  const y = new Float64Array(2 * n);
  const rng = new RandomStream(rngKey(options.seed ?? 0));
  for (let k = 0; k < 2 * n; k++) y[k] = 1e-4 * rng.normal();
  const grad = new Float64Array(2 * n);
  const update = new Float64Array(2 * n);
  const gains = new Float64Array(2 * n).fill(1);
  for (let it = 0; it < iterations; it++) {
    const early = it < exagIters;
    klGradient(p, y, n, early ? exaggeration : 1, grad);
    const momentum = early ? m0 : m1;
    for (let k = 0; k < 2 * n; k++) {
      const g = grad[k];
      gains[k] = (update[k] * g < 0) ? gains[k] + 0.2 : Math.max(gains[k] * 0.8, 0.01);
      update[k] = momentum * update[k] - lr * gains[k] * g;
      y[k] += update[k];
    }
  }
  let c0 = 0, c1 = 0;
  for (let i = 0; i < n; i++) [c0, c1] = [c0 + y[2 * i], c1 + y[2 * i + 1]];
  for (let i = 0; i < n; i++) {
    y[2 * i] -= c0 / n;
    y[2 * i + 1] -= c1 / n;
  }
  return { coords: y, kl: klDivergence(p, y, n), perplexity };
}
