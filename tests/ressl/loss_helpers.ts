/**
 * Host-side (f64) reference of the relation loss and random unit vectors, for the loss tests.
 *
 * @module
 */

import { normalArray, rngKey } from "../../src/random/philox.ts";

/** `rows` random unit vectors of dimension `d` (f32-rounded), drawn from `seed`. */
export function unitRows(seed: number, rows: number, d: number): Float32Array {
  const x = normalArray(rngKey(seed), rows * d);
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[r * d + j] ** 2;
    const inv = 1 / Math.sqrt(s);
    for (let j = 0; j < d; j++) x[r * d + j] = Math.fround(x[r * d + j] * inv);
  }
  return x;
}

/** Row-wise a b^T in f64 for row-major a [m, d], b [n, d]. */
export function similarities(a: ArrayLike<number>, b: ArrayLike<number>, d: number): number[][] {
  const m = a.length / d, n = b.length / d;
  return Array.from({ length: m }, (_, i) =>
    Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let t = 0; t < d; t++) s += a[i * d + t] * b[j * d + t];
      return s;
    }));
}

/** log_softmax of one row over the columns where `keep` is true (f64, max-shifted). */
export function logSoftmaxRow(x: number[], keep: (j: number) => boolean = () => true): number[] {
  let max = -Infinity;
  x.forEach((v, j) => keep(j) && (max = Math.max(max, v)));
  let s = 0;
  x.forEach((v, j) => keep(j) && (s += Math.exp(v - max)));
  const lse = max + Math.log(s);
  return x.map((v, j) => keep(j) ? v - lse : -Infinity);
}

/** `-mean_b sum_j softmax(t)[b, j] log_softmax(s)[b, j]` in f64, over the kept columns. */
export function lossFromLogits(
  s: number[][],
  t: number[][],
  keep: (i: number, j: number) => boolean = () => true,
): number {
  let total = 0;
  s.forEach((row, i) => {
    const ls = logSoftmaxRow(row, (j) => keep(i, j));
    const lt = logSoftmaxRow(t[i], (j) => keep(i, j));
    row.forEach((_v, j) => {
      if (keep(i, j)) total -= Math.exp(lt[j]) * ls[j];
    });
  });
  return total / s.length;
}

/** Entropy of softmax(t) averaged over rows (f64): the lower bound of the loss. */
export function teacherEntropy(t: number[][]): number {
  return lossFromLogits(t, t);
}

/** The relation loss in f64 (queue-only basis). */
export function hostRelationLoss(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  queue: ArrayLike<number>,
  d: number,
  tauS: number,
  tauT: number,
): number {
  const s = similarities(q, queue, d).map((r) => r.map((v) => v / tauS));
  const t = similarities(k, queue, d).map((r) => r.map((v) => v / tauT));
  return lossFromLogits(s, t);
}
