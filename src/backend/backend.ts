/**
 * The `Backend` contract: device memory plus every kernel a ReSSL training step needs.
 *
 * Conventions every implementation follows:
 * - Storage is opaque to the layers above. A backend may keep its own memory format (oneDNN blocked
 *   layouts, cuDNN NHWC) behind a storage; the logical layout every kernel speaks is dense row-major
 *   (NCHW for images, [rows, cols] for matrices). Only `upload`/`download` move bytes to and from
 *   the host, in that logical layout.
 * - Kernels may run asynchronously (a CUDA stream); `download` is the synchronisation point.
 * - Every kernel writes all elements of its outputs (it never reads an output it was not told to
 *   accumulate into), so the conformance suite can poison outputs before a call.
 * - Kernels take one options object whose dimension fields are plain numbers; element counts are
 *   elements, not bytes. Outputs are distinct storages from inputs unless a kernel says otherwise.
 *
 * @module
 */

/** Element types a storage can hold. */
export type DType = "f32" | "u8" | "i32";

/** A block of device memory owned by a backend. Treat as opaque outside `src/backend/`. */
export interface Storage {
  /** The backend that owns this storage. */
  readonly backend: Backend;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
}

/** Host arrays matching each dtype. */
export type HostArray = Float32Array | Uint8Array | Int32Array;

/** Geometry of a 2-D convolution (no bias, no dilation, groups = 1). */
export interface Conv2dGeometry {
  /** Batch size. */
  n: number;
  /** Input channels. */
  c: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output channels. */
  k: number;
  /** Kernel height. */
  r: number;
  /** Kernel width. */
  s: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  /** Output height: floor((h + 2 padH - r) / strideH) + 1. */
  outH: number;
  /** Output width: floor((w + 2 padW - s) / strideW) + 1. */
  outW: number;
}

/** Geometry of a 2-D max pooling (square windows allowed to differ in h/w). */
export interface Pool2dGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  kernelH: number;
  kernelW: number;
  strideH: number;
  strideW: number;
  padH: number;
  padW: number;
  outH: number;
  outW: number;
}

/** Shape of a batch-normalised NCHW tensor: `n` images, `c` channels, `hw` pixels per channel. */
export interface BatchNormGeometry {
  n: number;
  c: number;
  hw: number;
}

/** Memory and kernels of one device. */
export interface Backend {
  /** `reference`, `cpu` or `cuda`. */
  readonly name: string;
  /** Human-readable versions of the native libraries in use (for run logs). */
  readonly versions: Readonly<Record<string, string>>;

  // ---- memory -------------------------------------------------------------------------------
  /** Allocates `length` elements of `dtype`. Contents are unspecified. */
  alloc(dtype: DType, length: number): Storage;
  /** Releases a storage; using it afterwards is an error. */
  free(storage: Storage): void;
  /** Number of storages allocated and not yet freed (leak checks). */
  liveAllocations(): number;
  /** Copies host data into `dst` starting at element `dstOffset` (default 0). */
  upload(dst: Storage, src: HostArray, dstOffset?: number): void;
  /** Copies the whole storage to a new host array (synchronises with pending work). */
  download(src: Storage): HostArray;
  /** Copies `length` elements from `src[srcOffset..]` to `dst[dstOffset..]` on the device. */
  copy(
    opts: { src: Storage; dst: Storage; srcOffset: number; dstOffset: number; length: number },
  ): void;
  /** Sets every element of `dst` to `value`. */
  fill(dst: Storage, value: number): void;
  /** Waits until all queued work has finished. */
  synchronize(): void;
  /** Releases every resource the backend holds (cached primitives, handles, pools). */
  dispose(): void;

  // ---- elementwise (f32, `n` elements) -------------------------------------------------------
  /** out = alpha * x + beta * y (also scale with beta = 0 and y = x, EMA, subtraction). */
  axpby(
    opts: { x: Storage; y: Storage; out: Storage; alpha: number; beta: number; n: number },
  ): void;
  /** out = a * b elementwise. */
  mul(opts: { a: Storage; b: Storage; out: Storage; n: number }): void;
  /** out = alpha * s[0] for every element (broadcast a device scalar). */
  broadcastScalar(opts: { s: Storage; out: Storage; alpha: number; n: number }): void;
  /** y = max(x, 0). */
  relu(opts: { x: Storage; y: Storage; n: number }): void;
  /** dx = dy where y > 0 else 0 (`y` is the ReLU output). */
  reluBackward(opts: { y: Storage; dy: Storage; dx: Storage; n: number }): void;
  /** out[0] = alpha * sum(x). */
  sum(opts: { x: Storage; out: Storage; alpha: number; n: number }): void;

  // ---- matrices (row-major) ------------------------------------------------------------------
  /**
   * c = alpha * op(a) @ op(b) + beta * c, where op(a) is [m, k] and op(b) is [k, n].
   * `a` is stored [m, k] or, with `transA`, [k, m]; `b` is [k, n] or, with `transB`, [n, k].
   * With beta = 0 the previous contents of `c` are ignored (NaN included).
   */
  gemm(opts: {
    a: Storage;
    b: Storage;
    c: Storage;
    m: number;
    n: number;
    k: number;
    transA: boolean;
    transB: boolean;
    alpha: number;
    beta: number;
  }): void;
  /** y[r, j] = x[r, j] + bias[j] for a [rows, cols] matrix. */
  addRowVector(opts: { x: Storage; bias: Storage; y: Storage; rows: number; cols: number }): void;
  /** out[j] = sum_r x[r, j] (column sums of a [rows, cols] matrix; bias gradients). */
  sumRows(opts: { x: Storage; out: Storage; rows: number; cols: number }): void;
  /** y[i, :] = x[index[i], :] for a [rows, cols] matrix (batch shuffles); `index` is i32. */
  gatherRows(opts: { x: Storage; index: Storage; y: Storage; rows: number; cols: number }): void;
  /** Row-wise softmax of a [rows, cols] matrix. */
  softmax(opts: { x: Storage; y: Storage; rows: number; cols: number }): void;
  /** dx = y * (dy - sum(dy * y)) per row, `y` the softmax output. */
  softmaxBackward(opts: { y: Storage; dy: Storage; dx: Storage; rows: number; cols: number }): void;
  /** Row-wise log-softmax (max-shifted log-sum-exp). */
  logSoftmax(opts: { x: Storage; y: Storage; rows: number; cols: number }): void;
  /** dx = dy - exp(y) * sum(dy) per row, `y` the log-softmax output. */
  logSoftmaxBackward(
    opts: { y: Storage; dy: Storage; dx: Storage; rows: number; cols: number },
  ): void;
  /** y = x / max(||x||_2, eps) per row (torch.nn.functional.normalize). */
  l2Normalize(opts: { x: Storage; y: Storage; rows: number; cols: number; eps: number }): void;
  /** Gradient of `l2Normalize` with respect to `x`. */
  l2NormalizeBackward(
    opts: { x: Storage; dy: Storage; dx: Storage; rows: number; cols: number; eps: number },
  ): void;

  // ---- images (NCHW) -------------------------------------------------------------------------
  /** y[n, k, oh, ow] = sum over c, r, s of x * w; `w` is [k, c, r, s]. */
  conv2dForward(opts: { x: Storage; w: Storage; y: Storage; geom: Conv2dGeometry }): void;
  /** dx = gradient of the convolution with respect to its input. */
  conv2dBackwardData(opts: { dy: Storage; w: Storage; dx: Storage; geom: Conv2dGeometry }): void;
  /** dw = gradient of the convolution with respect to its weights. */
  conv2dBackwardWeights(
    opts: { x: Storage; dy: Storage; dw: Storage; geom: Conv2dGeometry },
  ): void;
  /**
   * Training-mode batch norm: per-channel batch mean and biased variance written to `mean` and
   * `variance` (length c), y = gamma * (x - mean) / sqrt(variance + eps) + beta.
   */
  batchNormForwardTraining(opts: {
    x: Storage;
    gamma: Storage;
    beta: Storage;
    y: Storage;
    mean: Storage;
    variance: Storage;
    geom: BatchNormGeometry;
    eps: number;
  }): void;
  /** Inference-mode batch norm with the given (running) mean and variance. */
  batchNormForwardInference(opts: {
    x: Storage;
    gamma: Storage;
    beta: Storage;
    mean: Storage;
    variance: Storage;
    y: Storage;
    geom: BatchNormGeometry;
    eps: number;
  }): void;
  /** Backward of training-mode batch norm (batch statistics from the forward). */
  batchNormBackward(opts: {
    x: Storage;
    dy: Storage;
    gamma: Storage;
    mean: Storage;
    variance: Storage;
    dx: Storage;
    dgamma: Storage;
    dbeta: Storage;
    geom: BatchNormGeometry;
    eps: number;
  }): void;
  /** Max pooling; padded positions never win (as PyTorch, -inf padding). */
  maxPool2dForward(opts: { x: Storage; y: Storage; geom: Pool2dGeometry }): void;
  /** Routes `dy` to the first maximum of each window (PyTorch's tie rule); dx is overwritten. */
  maxPool2dBackward(opts: { x: Storage; dy: Storage; dx: Storage; geom: Pool2dGeometry }): void;
  /** y[n, c] = mean over the hw pixels of x[n, c]. */
  globalAvgPool(opts: { x: Storage; y: Storage; n: number; c: number; hw: number }): void;
  /** dx[n, c, p] = dy[n, c] / hw. */
  globalAvgPoolBackward(opts: { dy: Storage; dx: Storage; n: number; c: number; hw: number }): void;

  // ---- optimiser -----------------------------------------------------------------------------
  /**
   * In-place SGD step on `param` and `momentumBuf` (PyTorch semantics, dampening 0):
   * g = grad + weightDecay * param; buf = momentum * buf + g;
   * param -= lr * (nesterov ? g + momentum * buf : buf).
   */
  sgdUpdate(opts: {
    param: Storage;
    grad: Storage;
    momentumBuf: Storage;
    n: number;
    lr: number;
    momentum: number;
    weightDecay: number;
    nesterov: boolean;
  }): void;
}

/** Output size of a convolution or pooling along one axis. */
export function outputSize(input: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((input + 2 * pad - kernel) / stride) + 1;
}
