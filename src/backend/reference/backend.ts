/**
 * The reference backend: every kernel of the {@link Backend} contract in plain TypeScript, on host
 * typed arrays, with f64 accumulation. It is written for clarity, as the oracle the oneDNN and CUDA
 * backends are tested against, and is the fallback where no native library is installed.
 *
 * Every kernel checks its arguments first: each storage belongs to this backend, is not freed, has
 * the right dtype and enough elements for the given dimensions; outputs are distinct from inputs
 * (except `axpby`, which may run in place). The kernels themselves live in `reference_*.ts`.
 *
 * @module
 */

import type { Backend, BatchNormGeometry, DType, HostArray, Storage } from "../backend.ts";
import { hostArrayDType, ReferenceStorage } from "./storage.ts";
import {
  checkConvGeometry,
  checkDims,
  checkDistinct,
  checkPoolGeometry,
  checkScalars,
  f32Data,
  storageData,
} from "./validate.ts";
import {
  axpbyKernel,
  mulKernel,
  reluBackwardKernel,
  reluKernel,
  sgdKernel,
  sumKernel,
} from "./elementwise.ts";
import {
  addRowVectorKernel,
  gatherRowsKernel,
  gemmKernel,
  l2NormalizeBackwardKernel,
  l2NormalizeKernel,
  logSoftmaxBackwardKernel,
  logSoftmaxKernel,
  softmaxBackwardKernel,
  softmaxKernel,
  sumRowsKernel,
} from "./matrix.ts";
import {
  conv2dBackwardDataKernel,
  conv2dBackwardWeightsKernel,
  conv2dForwardKernel,
} from "./conv.ts";
import {
  batchNormBackwardKernel,
  batchNormForwardInferenceKernel,
  batchNormForwardTrainingKernel,
} from "./norm.ts";
import {
  globalAvgPoolBackwardKernel,
  globalAvgPoolKernel,
  maxPool2dBackwardKernel,
  maxPool2dForwardKernel,
} from "./pool.ts";

/** The options object of kernel `K` of the {@link Backend} contract. */
type Opts<K extends keyof Backend> = Backend[K] extends (opts: infer O) => void ? O : never;

/** Pure-TypeScript implementation of {@link Backend}. Create one with {@link createReferenceBackend}. */
export class ReferenceBackend implements Backend {
  /** Always `reference`. */
  readonly name = "reference";
  /** No native libraries. */
  readonly versions: Readonly<Record<string, string>> = Object.freeze({});
  #live = 0;
  #disposed = false;

  // ---- memory -------------------------------------------------------------------------------

  /** Allocates `length` zeroed elements of `dtype`. */
  alloc(dtype: DType, length: number): Storage {
    this.#assertOpen("alloc");
    checkDims("alloc", { length });
    const storage = new ReferenceStorage(this, dtype, length);
    this.#live++;
    return storage;
  }

  /** Releases a storage; freeing it twice or using it afterwards is an error. */
  free(storage: Storage): void {
    const s = this.#own("free", "storage", storage);
    s.freed = true;
    this.#live--;
  }

  /** Number of storages allocated and not yet freed. */
  liveAllocations(): number {
    return this.#live;
  }

  /** Copies `src` into `dst` from element `dstOffset`; the host array's type must match the dtype. */
  upload(dst: Storage, src: HostArray, dstOffset = 0): void {
    const K = "upload";
    this.#assertOpen(K);
    const dtype = hostArrayDType(src);
    checkDims(K, { dstOffset });
    const data = storageData(this, K, "dst", dst, dtype, dstOffset + src.length);
    data.set(src, dstOffset);
  }

  /** A copy of the whole storage as a new host array. */
  download(src: Storage): HostArray {
    const s = this.#own("download", "src", src);
    return s.data.slice();
  }

  /** Copies `length` elements from `src[srcOffset..]` to `dst[dstOffset..]` (same dtype). */
  copy(opts: Opts<"copy">): void {
    const K = "copy";
    const { srcOffset, dstOffset, length } = opts;
    this.#assertOpen(K);
    checkDims(K, { srcOffset, dstOffset, length });
    const src = this.#own(K, "src", opts.src);
    const dst = storageData(this, K, "dst", opts.dst, src.dtype, dstOffset + length);
    storageData(this, K, "src", opts.src, src.dtype, srcOffset + length);
    if (src.data === dst) {
      dst.copyWithin(dstOffset, srcOffset, srcOffset + length);
    } else {
      dst.set(src.data.subarray(srcOffset, srcOffset + length), dstOffset);
    }
  }

  /** Sets every element to `value` (an integer in range for u8 and i32 storages). */
  fill(dst: Storage, value: number): void {
    const s = this.#own("fill", "dst", dst);
    if (s.dtype !== "f32") {
      const [lo, hi] = s.dtype === "u8" ? [0, 255] : [-2147483648, 2147483647];
      if (!Number.isInteger(value) || value < lo || value > hi) {
        throw new RangeError(
          `Cannot run fill: value ${value} does not fit storage 'dst' of dtype ${s.dtype} ` +
            `(integers ${lo}..${hi})`,
        );
      }
    }
    s.data.fill(value);
  }

  /** Nothing is queued on the reference backend. */
  synchronize(): void {}

  /** Marks the backend closed: later allocations and kernels throw. Storages stay readable. */
  dispose(): void {
    this.#disposed = true;
  }

  // ---- elementwise --------------------------------------------------------------------------

  /** out = alpha * x + beta * y; a term whose coefficient is 0 is skipped; `out` may be x or y. */
  axpby(opts: Opts<"axpby">): void {
    const K = "axpby";
    const { n, alpha, beta } = opts;
    checkDims(K, { n });
    checkScalars(K, { alpha, beta });
    const x = this.#f32(K, "x", opts.x, n);
    const y = this.#f32(K, "y", opts.y, n);
    const out = this.#f32(K, "out", opts.out, n);
    axpbyKernel(x, y, out, alpha, beta, n);
  }

  /** out = a * b elementwise. */
  mul(opts: Opts<"mul">): void {
    const K = "mul";
    const { n } = opts;
    checkDims(K, { n });
    checkDistinct(K, { out: opts.out }, { a: opts.a, b: opts.b });
    const a = this.#f32(K, "a", opts.a, n);
    const b = this.#f32(K, "b", opts.b, n);
    const out = this.#f32(K, "out", opts.out, n);
    mulKernel(a, b, out, n);
  }

  /** out[i] = alpha * s[0]. */
  broadcastScalar(opts: Opts<"broadcastScalar">): void {
    const K = "broadcastScalar";
    const { n, alpha } = opts;
    checkDims(K, { n });
    checkScalars(K, { alpha });
    checkDistinct(K, { out: opts.out }, { s: opts.s });
    const s = this.#f32(K, "s", opts.s, 1);
    const out = this.#f32(K, "out", opts.out, n);
    out.fill(alpha * s[0], 0, n);
  }

  /** y = max(x, 0) (NaN stays NaN, as PyTorch). */
  relu(opts: Opts<"relu">): void {
    const K = "relu";
    const { n } = opts;
    checkDims(K, { n });
    checkDistinct(K, { y: opts.y }, { x: opts.x });
    const x = this.#f32(K, "x", opts.x, n);
    const y = this.#f32(K, "y", opts.y, n);
    reluKernel(x, y, n);
  }

  /** dx = dy where y > 0, else 0. */
  reluBackward(opts: Opts<"reluBackward">): void {
    const K = "reluBackward";
    const { n } = opts;
    checkDims(K, { n });
    checkDistinct(K, { dx: opts.dx }, { y: opts.y, dy: opts.dy });
    const y = this.#f32(K, "y", opts.y, n);
    const dy = this.#f32(K, "dy", opts.dy, n);
    const dx = this.#f32(K, "dx", opts.dx, n);
    reluBackwardKernel(y, dy, dx, n);
  }

  /** out[0] = alpha * sum(x), summed in f64. */
  sum(opts: Opts<"sum">): void {
    const K = "sum";
    const { n, alpha } = opts;
    checkDims(K, { n });
    checkScalars(K, { alpha });
    checkDistinct(K, { out: opts.out }, { x: opts.x });
    const x = this.#f32(K, "x", opts.x, n);
    const out = this.#f32(K, "out", opts.out, 1);
    out[0] = sumKernel(x, alpha, n);
  }

  // ---- matrices -----------------------------------------------------------------------------

  /** c = alpha * op(a) @ op(b) + beta * c (row-major); beta = 0 ignores c's contents. */
  gemm(opts: Opts<"gemm">): void {
    const K = "gemm";
    const { m, n, k, alpha, beta } = opts;
    checkDims(K, { m, n, k });
    checkScalars(K, { alpha, beta });
    checkDistinct(K, { c: opts.c }, { a: opts.a, b: opts.b });
    const a = this.#f32(K, "a", opts.a, m * k);
    const b = this.#f32(K, "b", opts.b, k * n);
    const c = this.#f32(K, "c", opts.c, m * n);
    gemmKernel(a, b, c, m, n, k, opts.transA === true, opts.transB === true, alpha, beta);
  }

  /** y[r, j] = x[r, j] + bias[j]. */
  addRowVector(opts: Opts<"addRowVector">): void {
    const K = "addRowVector";
    const { rows, cols } = opts;
    checkDims(K, { rows, cols });
    checkDistinct(K, { y: opts.y }, { x: opts.x, bias: opts.bias });
    const x = this.#f32(K, "x", opts.x, rows * cols);
    const bias = this.#f32(K, "bias", opts.bias, cols);
    const y = this.#f32(K, "y", opts.y, rows * cols);
    addRowVectorKernel(x, bias, y, rows, cols);
  }

  /** out[j] = sum over r of x[r, j]. */
  sumRows(opts: Opts<"sumRows">): void {
    const K = "sumRows";
    const { rows, cols } = opts;
    checkDims(K, { rows, cols });
    checkDistinct(K, { out: opts.out }, { x: opts.x });
    const x = this.#f32(K, "x", opts.x, rows * cols);
    const out = this.#f32(K, "out", opts.out, cols);
    sumRowsKernel(x, out, rows, cols);
  }

  /** y[i, :] = x[index[i], :]; every index must lie in [0, rows). */
  gatherRows(opts: Opts<"gatherRows">): void {
    const K = "gatherRows";
    const { rows, cols } = opts;
    checkDims(K, { rows, cols });
    checkDistinct(K, { y: opts.y }, { x: opts.x, index: opts.index });
    const x = this.#f32(K, "x", opts.x, rows * cols);
    const index = storageData(this, K, "index", opts.index, "i32", rows) as Int32Array;
    const y = this.#f32(K, "y", opts.y, rows * cols);
    gatherRowsKernel(x, index, y, rows, cols);
  }

  /** Row-wise softmax (max-shifted). */
  softmax(opts: Opts<"softmax">): void {
    const [x, y] = this.#rowwise("softmax", { x: opts.x }, { y: opts.y }, opts);
    softmaxKernel(x, y, opts.rows, opts.cols);
  }

  /** dx = y * (dy - sum(dy * y)) per row. */
  softmaxBackward(opts: Opts<"softmaxBackward">): void {
    const [y, dy, dx] = this.#rowwise(
      "softmaxBackward",
      { y: opts.y, dy: opts.dy },
      { dx: opts.dx },
      opts,
    );
    softmaxBackwardKernel(y, dy, dx, opts.rows, opts.cols);
  }

  /** Row-wise log-softmax (max-shifted log-sum-exp). */
  logSoftmax(opts: Opts<"logSoftmax">): void {
    const [x, y] = this.#rowwise("logSoftmax", { x: opts.x }, { y: opts.y }, opts);
    logSoftmaxKernel(x, y, opts.rows, opts.cols);
  }

  /** dx = dy - exp(y) * sum(dy) per row. */
  logSoftmaxBackward(opts: Opts<"logSoftmaxBackward">): void {
    const [y, dy, dx] = this.#rowwise(
      "logSoftmaxBackward",
      { y: opts.y, dy: opts.dy },
      { dx: opts.dx },
      opts,
    );
    logSoftmaxBackwardKernel(y, dy, dx, opts.rows, opts.cols);
  }

  /** y = x / max(||x||_2, eps) per row. */
  l2Normalize(opts: Opts<"l2Normalize">): void {
    checkEps("l2Normalize", opts.eps);
    const [x, y] = this.#rowwise("l2Normalize", { x: opts.x }, { y: opts.y }, opts);
    l2NormalizeKernel(x, y, opts.rows, opts.cols, opts.eps);
  }

  /** Gradient of `l2Normalize` (torch F.normalize's, dy / eps where the norm is below eps). */
  l2NormalizeBackward(opts: Opts<"l2NormalizeBackward">): void {
    checkEps("l2NormalizeBackward", opts.eps);
    const [x, dy, dx] = this.#rowwise(
      "l2NormalizeBackward",
      { x: opts.x, dy: opts.dy },
      { dx: opts.dx },
      opts,
    );
    l2NormalizeBackwardKernel(x, dy, dx, opts.rows, opts.cols, opts.eps);
  }

  // ---- images -------------------------------------------------------------------------------

  /** Direct convolution, y [n, k, outH, outW] from x [n, c, h, w] and w [k, c, r, s]. */
  conv2dForward(opts: Opts<"conv2dForward">): void {
    const K = "conv2dForward";
    const g = opts.geom;
    checkConvGeometry(K, g);
    checkDistinct(K, { y: opts.y }, { x: opts.x, w: opts.w });
    const x = this.#f32(K, "x", opts.x, g.n * g.c * g.h * g.w);
    const w = this.#f32(K, "w", opts.w, g.k * g.c * g.r * g.s);
    const y = this.#f32(K, "y", opts.y, g.n * g.k * g.outH * g.outW);
    conv2dForwardKernel(x, w, y, g);
  }

  /** dx [n, c, h, w] from dy [n, k, outH, outW] and w. */
  conv2dBackwardData(opts: Opts<"conv2dBackwardData">): void {
    const K = "conv2dBackwardData";
    const g = opts.geom;
    checkConvGeometry(K, g);
    checkDistinct(K, { dx: opts.dx }, { dy: opts.dy, w: opts.w });
    const dy = this.#f32(K, "dy", opts.dy, g.n * g.k * g.outH * g.outW);
    const w = this.#f32(K, "w", opts.w, g.k * g.c * g.r * g.s);
    const dx = this.#f32(K, "dx", opts.dx, g.n * g.c * g.h * g.w);
    conv2dBackwardDataKernel(dy, w, dx, g);
  }

  /** dw [k, c, r, s] from x and dy. */
  conv2dBackwardWeights(opts: Opts<"conv2dBackwardWeights">): void {
    const K = "conv2dBackwardWeights";
    const g = opts.geom;
    checkConvGeometry(K, g);
    checkDistinct(K, { dw: opts.dw }, { x: opts.x, dy: opts.dy });
    const x = this.#f32(K, "x", opts.x, g.n * g.c * g.h * g.w);
    const dy = this.#f32(K, "dy", opts.dy, g.n * g.k * g.outH * g.outW);
    const dw = this.#f32(K, "dw", opts.dw, g.k * g.c * g.r * g.s);
    conv2dBackwardWeightsKernel(x, dy, dw, g);
  }

  /** Training-mode batch norm; writes batch mean and biased variance. */
  batchNormForwardTraining(opts: Opts<"batchNormForwardTraining">): void {
    const K = "batchNormForwardTraining";
    const g = opts.geom;
    checkBatchNorm(K, g, opts.eps);
    checkDistinct(K, { y: opts.y, mean: opts.mean, variance: opts.variance }, {
      x: opts.x,
      gamma: opts.gamma,
      beta: opts.beta,
    });
    const size = g.n * g.c * g.hw;
    batchNormForwardTrainingKernel(
      this.#f32(K, "x", opts.x, size),
      this.#f32(K, "gamma", opts.gamma, g.c),
      this.#f32(K, "beta", opts.beta, g.c),
      this.#f32(K, "y", opts.y, size),
      this.#f32(K, "mean", opts.mean, g.c),
      this.#f32(K, "variance", opts.variance, g.c),
      g,
      opts.eps,
    );
  }

  /** Inference-mode batch norm with the given mean and variance. */
  batchNormForwardInference(opts: Opts<"batchNormForwardInference">): void {
    const K = "batchNormForwardInference";
    const g = opts.geom;
    checkBatchNorm(K, g, opts.eps);
    checkDistinct(K, { y: opts.y }, {
      x: opts.x,
      gamma: opts.gamma,
      beta: opts.beta,
      mean: opts.mean,
      variance: opts.variance,
    });
    const size = g.n * g.c * g.hw;
    batchNormForwardInferenceKernel(
      this.#f32(K, "x", opts.x, size),
      this.#f32(K, "gamma", opts.gamma, g.c),
      this.#f32(K, "beta", opts.beta, g.c),
      this.#f32(K, "mean", opts.mean, g.c),
      this.#f32(K, "variance", opts.variance, g.c),
      this.#f32(K, "y", opts.y, size),
      g,
      opts.eps,
    );
  }

  /** Training-mode batch-norm gradient: dx, dgamma, dbeta. */
  batchNormBackward(opts: Opts<"batchNormBackward">): void {
    const K = "batchNormBackward";
    const g = opts.geom;
    checkBatchNorm(K, g, opts.eps);
    checkDistinct(K, { dx: opts.dx, dgamma: opts.dgamma, dbeta: opts.dbeta }, {
      x: opts.x,
      dy: opts.dy,
      gamma: opts.gamma,
      mean: opts.mean,
      variance: opts.variance,
    });
    const size = g.n * g.c * g.hw;
    batchNormBackwardKernel(
      this.#f32(K, "x", opts.x, size),
      this.#f32(K, "dy", opts.dy, size),
      this.#f32(K, "gamma", opts.gamma, g.c),
      this.#f32(K, "mean", opts.mean, g.c),
      this.#f32(K, "variance", opts.variance, g.c),
      this.#f32(K, "dx", opts.dx, size),
      this.#f32(K, "dgamma", opts.dgamma, g.c),
      this.#f32(K, "dbeta", opts.dbeta, g.c),
      g,
      opts.eps,
    );
  }

  /** Max pooling; padding never wins. */
  maxPool2dForward(opts: Opts<"maxPool2dForward">): void {
    const K = "maxPool2dForward";
    const g = opts.geom;
    checkPoolGeometry(K, g);
    checkDistinct(K, { y: opts.y }, { x: opts.x });
    const x = this.#f32(K, "x", opts.x, g.n * g.c * g.h * g.w);
    const y = this.#f32(K, "y", opts.y, g.n * g.c * g.outH * g.outW);
    maxPool2dForwardKernel(x, y, g);
  }

  /** Routes dy to the first maximum of each window; dx is overwritten. */
  maxPool2dBackward(opts: Opts<"maxPool2dBackward">): void {
    const K = "maxPool2dBackward";
    const g = opts.geom;
    checkPoolGeometry(K, g);
    checkDistinct(K, { dx: opts.dx }, { x: opts.x, dy: opts.dy });
    const x = this.#f32(K, "x", opts.x, g.n * g.c * g.h * g.w);
    const dy = this.#f32(K, "dy", opts.dy, g.n * g.c * g.outH * g.outW);
    const dx = this.#f32(K, "dx", opts.dx, g.n * g.c * g.h * g.w);
    maxPool2dBackwardKernel(x, dy, dx, g);
  }

  /** y[n, c] = mean of x[n, c, :]. */
  globalAvgPool(opts: Opts<"globalAvgPool">): void {
    const K = "globalAvgPool";
    const { n, c, hw } = opts;
    checkDims(K, { n, c, hw }, 1);
    checkDistinct(K, { y: opts.y }, { x: opts.x });
    const x = this.#f32(K, "x", opts.x, n * c * hw);
    const y = this.#f32(K, "y", opts.y, n * c);
    globalAvgPoolKernel(x, y, n * c, hw);
  }

  /** dx[n, c, :] = dy[n, c] / hw. */
  globalAvgPoolBackward(opts: Opts<"globalAvgPoolBackward">): void {
    const K = "globalAvgPoolBackward";
    const { n, c, hw } = opts;
    checkDims(K, { n, c, hw }, 1);
    checkDistinct(K, { dx: opts.dx }, { dy: opts.dy });
    const dy = this.#f32(K, "dy", opts.dy, n * c);
    const dx = this.#f32(K, "dx", opts.dx, n * c * hw);
    globalAvgPoolBackwardKernel(dy, dx, n * c, hw);
  }

  // ---- optimiser ----------------------------------------------------------------------------

  /** PyTorch SGD step (dampening 0, optional nesterov), in place on `param` and `momentumBuf`. */
  sgdUpdate(opts: Opts<"sgdUpdate">): void {
    const K = "sgdUpdate";
    const { n, lr, momentum, weightDecay, nesterov } = opts;
    checkDims(K, { n });
    checkScalars(K, { lr, momentum, weightDecay });
    checkDistinct(K, { param: opts.param, momentumBuf: opts.momentumBuf }, { grad: opts.grad });
    const param = this.#f32(K, "param", opts.param, n);
    const grad = this.#f32(K, "grad", opts.grad, n);
    const buf = this.#f32(K, "momentumBuf", opts.momentumBuf, n);
    sgdKernel(param, grad, buf, n, { lr, momentum, weightDecay, nesterov: nesterov === true });
  }

  // ---- helpers ------------------------------------------------------------------------------

  #assertOpen(kernel: string): void {
    if (this.#disposed) {
      throw new Error(`Cannot run ${kernel}: this reference backend was disposed`);
    }
  }

  /** A live storage of this backend (any dtype). */
  #own(kernel: string, name: string, storage: Storage): ReferenceStorage {
    storageData(this, kernel, name, storage, storage?.dtype, 0);
    return storage as ReferenceStorage;
  }

  #f32(kernel: string, name: string, storage: Storage, needed: number): Float32Array {
    this.#assertOpen(kernel);
    return f32Data(this, kernel, name, storage, needed);
  }

  /** Checks a row-wise [rows, cols] kernel and returns its inputs' then outputs' arrays. */
  #rowwise(
    kernel: string,
    inputs: Record<string, Storage>,
    outputs: Record<string, Storage>,
    dims: { rows: number; cols: number },
  ): Float32Array[] {
    const { rows, cols } = dims;
    checkDims(kernel, { rows, cols });
    checkDistinct(kernel, outputs, inputs);
    return [...Object.entries(inputs), ...Object.entries(outputs)].map(([name, s]) =>
      this.#f32(kernel, name, s, rows * cols)
    );
  }
}

function checkEps(kernel: string, eps: number): void {
  checkScalars(kernel, { eps });
  if (eps < 0) throw new RangeError(`Cannot run ${kernel}: 'eps' is ${eps}, expected eps >= 0`);
}

function checkBatchNorm(kernel: string, g: BatchNormGeometry, eps: number): void {
  checkDims(kernel, { n: g.n, c: g.c, hw: g.hw }, 1);
  checkEps(kernel, eps);
}

/** A new reference backend (pure TypeScript, no native libraries). */
export function createReferenceBackend(): ReferenceBackend {
  return new ReferenceBackend();
}
