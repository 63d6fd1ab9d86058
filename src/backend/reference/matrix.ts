/**
 * Row-major matrix kernels of the reference backend, on host arrays with f64 accumulation (gemm
 * also on bf16 storages: read exactly, rounded once on store). The backend has validated every
 * call against the kernel table; these functions only compute.
 *
 * @module
 */

import type { Opts } from "../backend.ts";
import { dataOf, f32Of, readFloat, writeFloat } from "./storage.ts";

/** An array a kernel writes results to (f32 storage, or the f64 scratch of a bf16 one). */
export type OutArray = Float32Array | Float64Array;

/** `gemm` on the storages of a validated call (f32 or bf16). */
export function gemm(o: Opts<"gemm">): void {
  const a = readFloat(o.a), b = readFloat(o.b);
  writeFloat(o.c, (c) => {
    gemmKernel(a, b, c, o.m, o.n, o.k, o.transA === true, o.transB === true, o.alpha, o.beta);
  });
}

/** The kernels on f32 [rows, cols] matrices, by kernel name. */
export const rowKernels = {
  addRowVector: (o: Opts<"addRowVector">) =>
    addRowVectorKernel(f32Of(o.x), f32Of(o.bias), f32Of(o.y), o.rows, o.cols),
  sumRows: (o: Opts<"sumRows">) => sumRowsKernel(f32Of(o.x), f32Of(o.out), o.rows, o.cols),
  gatherRows: (o: Opts<"gatherRows">) =>
    gatherRowsKernel(f32Of(o.x), dataOf(o.index) as Int32Array, f32Of(o.y), o.rows, o.cols),
  softmax: (o: Opts<"softmax">) => softmaxKernel(f32Of(o.x), f32Of(o.y), o.rows, o.cols),
  softmaxBackward: (o: Opts<"softmaxBackward">) =>
    softmaxBackwardKernel(f32Of(o.y), f32Of(o.dy), f32Of(o.dx), o.rows, o.cols),
  logSoftmax: (o: Opts<"logSoftmax">) => logSoftmaxKernel(f32Of(o.x), f32Of(o.y), o.rows, o.cols),
  logSoftmaxBackward: (o: Opts<"logSoftmaxBackward">) =>
    logSoftmaxBackwardKernel(f32Of(o.y), f32Of(o.dy), f32Of(o.dx), o.rows, o.cols),
  l2Normalize: (o: Opts<"l2Normalize">) =>
    l2NormalizeKernel(f32Of(o.x), f32Of(o.y), o.rows, o.cols, o.eps),
  l2NormalizeBackward: (o: Opts<"l2NormalizeBackward">) =>
    l2NormalizeBackwardKernel(f32Of(o.x), f32Of(o.dy), f32Of(o.dx), o.rows, o.cols, o.eps),
};

/** c = alpha * op(a) @ op(b) + beta * c, op(a) [m, k], op(b) [k, n]; beta = 0 ignores c. */
export function gemmKernel(
  a: Float32Array,
  b: Float32Array,
  c: OutArray,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  alpha: number,
  beta: number,
): void {
  // op(a)[i, p] = a[i * aRow + p * aCol]; op(b)[p, j] = b[p * bRow + j * bCol].
  const aRow = transA ? 1 : k;
  const aCol = transA ? m : 1;
  const bRow = transB ? 1 : n;
  const bCol = transB ? k : 1;
  for (let i = 0; i < m; i++) {
    const aBase = i * aRow;
    const cBase = i * n;
    for (let j = 0; j < n; j++) {
      let acc = 0;
      let ai = aBase;
      let bi = j * bCol;
      for (let p = 0; p < k; p++) {
        acc += a[ai] * b[bi];
        ai += aCol;
        bi += bRow;
      }
      c[cBase + j] = beta === 0 ? alpha * acc : alpha * acc + beta * c[cBase + j];
    }
  }
}

/** y[r, j] = x[r, j] + bias[j]. */
export function addRowVectorKernel(
  x: Float32Array,
  bias: Float32Array,
  y: Float32Array,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < cols; j++) y[base + j] = x[base + j] + bias[j];
  }
}

/** out[j] = sum over r of x[r, j]. */
export function sumRowsKernel(
  x: Float32Array,
  out: Float32Array,
  rows: number,
  cols: number,
): void {
  const acc = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let j = 0; j < cols; j++) acc[j] += x[base + j];
  }
  out.set(acc);
}

/** y[i, :] = x[index[i], :]; throws on an index outside [0, rows). */
export function gatherRowsKernel(
  x: Float32Array,
  index: Int32Array,
  y: Float32Array,
  rows: number,
  cols: number,
): void {
  for (let i = 0; i < rows; i++) {
    const src = index[i];
    if (src < 0 || src >= rows) {
      throw new RangeError(
        `Cannot run gatherRows: index[${i}] is ${src}, expected a row in [0, ${rows})`,
      );
    }
  }
  for (let i = 0; i < rows; i++) {
    const src = index[i] * cols;
    y.set(x.subarray(src, src + cols), i * cols);
  }
}

/** Row-wise softmax, shifted by the row maximum. */
export function softmaxKernel(x: Float32Array, y: Float32Array, rows: number, cols: number): void {
  const e = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (x[base + j] > max) max = x[base + j];
    let total = 0;
    for (let j = 0; j < cols; j++) {
      e[j] = Math.exp(x[base + j] - max);
      total += e[j];
    }
    for (let j = 0; j < cols; j++) y[base + j] = e[j] / total;
  }
}

/** dx = y * (dy - sum(dy * y)) per row. */
export function softmaxBackwardKernel(
  y: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let dot = 0;
    for (let j = 0; j < cols; j++) dot += dy[base + j] * y[base + j];
    for (let j = 0; j < cols; j++) dx[base + j] = y[base + j] * (dy[base + j] - dot);
  }
}

/** Row-wise log-softmax: x - max - log(sum(exp(x - max))). */
export function logSoftmaxKernel(
  x: Float32Array,
  y: Float32Array,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let max = -Infinity;
    for (let j = 0; j < cols; j++) if (x[base + j] > max) max = x[base + j];
    let total = 0;
    for (let j = 0; j < cols; j++) total += Math.exp(x[base + j] - max);
    const shift = max + Math.log(total);
    for (let j = 0; j < cols; j++) y[base + j] = x[base + j] - shift;
  }
}

/** dx = dy - exp(y) * sum(dy) per row. */
export function logSoftmaxBackwardKernel(
  y: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let total = 0;
    for (let j = 0; j < cols; j++) total += dy[base + j];
    for (let j = 0; j < cols; j++) dx[base + j] = dy[base + j] - Math.exp(y[base + j]) * total;
  }
}

/** Euclidean norm of row `r`, accumulated in f64. */
function rowNorm(x: Float32Array, base: number, cols: number): number {
  let sq = 0;
  for (let j = 0; j < cols; j++) sq += x[base + j] * x[base + j];
  return Math.sqrt(sq);
}

/** y = x / max(||x||, eps) per row. */
export function l2NormalizeKernel(
  x: Float32Array,
  y: Float32Array,
  rows: number,
  cols: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const denom = Math.max(rowNorm(x, base, cols), eps);
    for (let j = 0; j < cols; j++) y[base + j] = x[base + j] / denom;
  }
}

/**
 * Gradient of {@link l2NormalizeKernel}, as torch.nn.functional.normalize: where norm >= eps,
 * dx = dy / norm - x * sum(dy * x) / norm^3; where norm < eps the denominator is the constant eps,
 * so dx = dy / eps.
 */
export function l2NormalizeBackwardKernel(
  x: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  rows: number,
  cols: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const norm = rowNorm(x, base, cols);
    if (norm >= eps && norm > 0) {
      let dot = 0;
      for (let j = 0; j < cols; j++) dot += dy[base + j] * x[base + j];
      const coef = dot / (norm * norm * norm);
      for (let j = 0; j < cols; j++) dx[base + j] = dy[base + j] / norm - x[base + j] * coef;
    } else {
      for (let j = 0; j < cols; j++) dx[base + j] = dy[base + j] / eps;
    }
  }
}
