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

import type { ViewStep } from "../image/view.ts";

/**
 * Element types a storage can hold. `bf16` is bfloat16 (the upper half of an f32; host arrays hold
 * its raw bits as a `Uint16Array`): kernels that accept it compute in f32 (or wider) and round to
 * nearest even on write. Which kernel accepts which dtypes is in the kernel table (`kernels.ts`).
 */
export type DType = "f32" | "bf16" | "u8" | "i32";

/** A block of device memory owned by a backend. Treat as opaque outside `src/backend/`. */
export interface Storage {
  /** The backend that owns this storage. */
  readonly backend: Backend;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  /** Whether `free` has released it (using it afterwards is an error). */
  readonly freed: boolean;
}

/** Host arrays matching each dtype (`Uint16Array` holds bf16 bits). */
export type HostArray = Float32Array | Uint16Array | Uint8Array | Int32Array;

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
  /** Vertical stride. */
  strideH: number;
  /** Horizontal stride. */
  strideW: number;
  /** Zero padding above and below. */
  padH: number;
  /** Zero padding left and right. */
  padW: number;
  /** Output height: floor((h + 2 padH - r) / strideH) + 1. */
  outH: number;
  /** Output width: floor((w + 2 padW - s) / strideW) + 1. */
  outW: number;
}

/** Geometry of a 2-D max pooling (square windows allowed to differ in h/w). */
export interface Pool2dGeometry {
  /** Batch size. */
  n: number;
  /** Channels. */
  c: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Window height. */
  kernelH: number;
  /** Window width. */
  kernelW: number;
  /** Vertical stride. */
  strideH: number;
  /** Horizontal stride. */
  strideW: number;
  /** Padding above and below (padded positions are excluded from the max). */
  padH: number;
  /** Padding left and right. */
  padW: number;
  /** Output height: floor((h + 2 padH - kernelH) / strideH) + 1. */
  outH: number;
  /** Output width: floor((w + 2 padW - kernelW) / strideW) + 1. */
  outW: number;
}

/** Shape of a batch-normalised NCHW tensor: `n` images, `c` channels, `hw` pixels per channel. */
export interface BatchNormGeometry {
  /** Images. */
  n: number;
  /** Channels (one mean/variance each). */
  c: number;
  /** Pixels per channel per image (h x w). */
  hw: number;
}

/** Device memory of a backend: allocation, host transfers, copies, synchronisation. */
export interface BackendMemory {
  /** `reference`, `cpu` or `cuda`. */
  readonly name: string;
  /** Human-readable versions of the native libraries in use (for run logs). */
  readonly versions: Readonly<Record<string, string>>;

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
  /** Sets every element of `dst` to `value` (an integer in range for u8/i32). */
  fill(dst: Storage, value: number): void;
  /** Waits until all queued work has finished. */
  synchronize(): void;
  /** Releases every resource the backend holds (cached primitives, handles, pools). */
  dispose(): void;
}

/**
 * Every kernel of the contract. Each takes one options object; the kernel table (`kernels.ts`) says
 * for each one which storages it reads and writes, how many elements each needs (from the
 * dimensions), which dtypes it accepts and which outputs may alias inputs. `validateKernel` checks a
 * call against that table, and every backend calls it first.
 */
export interface BackendKernels {
  // ---- memory-like kernels --------------------------------------------------------------------
  /** Copies `length` elements from `src[srcOffset..]` to `dst[dstOffset..]` (same dtype). */
  copy(
    opts: { src: Storage; dst: Storage; srcOffset: number; dstOffset: number; length: number },
  ): void;
  /**
   * y = x converted between f32 and bf16 (round to nearest even; NaN stays NaN, overflow becomes
   * infinity). The same dtype on both sides is a plain copy.
   */
  cast(opts: { x: Storage; y: Storage; n: number }): void;

  // ---- elementwise (`n` elements) -------------------------------------------------------------
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
   * Training-mode batch norm, optionally fused with a residual add and a ReLU (cuDNN's
   * BN_ADD_ACTIVATION): per-channel batch mean and biased variance written to `mean` and `variance`
   * (length c); z = gamma * (x - mean) / sqrt(variance + eps) + beta; y = z (+ residual) then
   * max(., 0) when `relu`. `residual` has x's shape and dtype.
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
    residual?: Storage | null;
    relu?: boolean;
  }): void;
  /** Inference-mode batch norm with the given (running) mean and variance, same fusion options. */
  batchNormForwardInference(opts: {
    x: Storage;
    gamma: Storage;
    beta: Storage;
    mean: Storage;
    variance: Storage;
    y: Storage;
    geom: BatchNormGeometry;
    eps: number;
    residual?: Storage | null;
    relu?: boolean;
  }): void;
  /**
   * Backward of training-mode batch norm (batch statistics from the forward), fused like the
   * forward: with `relu`, `y` is the forward's output and the incoming gradient is masked by y > 0;
   * with `dresidual`, the gradient reaching the residual input (the masked dy) is written there.
   * Then dx, dgamma and dbeta are batch norm's gradients of the masked dy.
   */
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
    relu?: boolean;
    y?: Storage | null;
    dresidual?: Storage | null;
  }): void;
  /**
   * SyncBN, forward part 1: this process's per-channel batch mean and biased variance of x,
   * without normalising. `stats` (2c) receives the means in [0, c) and the variances in [c, 2c),
   * one block that a collective can gather across processes.
   */
  batchNormStats(opts: { x: Storage; stats: Storage; geom: BatchNormGeometry }): void;
  /**
   * SyncBN, forward part 2: the mean and biased variance of the union of equal-sized parts from
   * their per-part statistics. `parts` holds `rows` blocks of 2c (each one `batchNormStats`
   * output, e.g. gathered from every process); the parts merged are rows `first`, `first +
   * stride`, ..., `take` of them. Combined in f64 (mean of the means; mean of variance + squared
   * deviation of the part's mean), rounded once. Normalising with the result is
   * `batchNormForwardInference`.
   */
  batchNormMergeStats(opts: {
    parts: Storage;
    mean: Storage;
    variance: Storage;
    c: number;
    rows: number;
    first: number;
    stride: number;
    take: number;
  }): void;
  /**
   * SyncBN, backward part 1: with g = dy masked by y > 0 when `relu` (y: the forward's output),
   * and xhat = (x - mean) / sqrt(variance + eps) with the given (global) statistics, this
   * process's per-channel sums: `sums` (2c) receives sum(g) in [0, c) and sum(g * xhat) in
   * [c, 2c) (this process's share of dbeta and dgamma).
   */
  batchNormBackwardReduce(opts: {
    x: Storage;
    dy: Storage;
    mean: Storage;
    variance: Storage;
    sums: Storage;
    geom: BatchNormGeometry;
    eps: number;
    relu?: boolean;
    y?: Storage | null;
  }): void;
  /**
   * SyncBN, backward part 2: dx of the batch norm over every part. `sums` holds `rows` blocks of
   * 2c (`batchNormBackwardReduce` outputs, e.g. gathered); S1 and S2 are the f64 sums over rows
   * `first`, `first + stride`, ... (`take` of them) of their two halves; with g and xhat as in the
   * reduce and M = `count` (the elements per channel over all parts):
   * dx = gamma / sqrt(variance + eps) / M * (M g - S1 - xhat S2); `dresidual` (optional)
   * receives g.
   */
  batchNormBackwardApply(opts: {
    x: Storage;
    dy: Storage;
    gamma: Storage;
    mean: Storage;
    variance: Storage;
    sums: Storage;
    dx: Storage;
    geom: BatchNormGeometry;
    rows: number;
    first: number;
    stride: number;
    take: number;
    count: number;
    eps: number;
    relu?: boolean;
    y?: Storage | null;
    dresidual?: Storage | null;
  }): void;
  /** Max pooling; padded positions never win (as PyTorch, -inf padding). */
  maxPool2dForward(opts: { x: Storage; y: Storage; geom: Pool2dGeometry }): void;
  /** Routes `dy` to the first maximum of each window (PyTorch's tie rule); dx is overwritten. */
  maxPool2dBackward(opts: { x: Storage; dy: Storage; dx: Storage; geom: Pool2dGeometry }): void;
  /** y[n, c] = mean over the hw pixels of x[n, c]. */
  globalAvgPool(opts: { x: Storage; y: Storage; n: number; c: number; hw: number }): void;
  /** dx[n, c, p] = dy[n, c] / hw. */
  globalAvgPoolBackward(opts: { dy: Storage; dx: Storage; n: number; c: number; hw: number }): void;

  // ---- optimiser and teacher (multi-tensor: one call for all parameters) ---------------------
  /**
   * One SGD step over every parameter tensor, in place on `params[i]` and `momentumBufs[i]`
   * (PyTorch semantics, dampening 0), per tensor i with d = grads[i] + weightDecay[i] * params[i];
   * buf = momentum * buf + d; param -= lr * (nesterov ? d + momentum * buf : buf).
   *
   * With `lars` (solo-learn's / apex's LARS), the weight decay is part of the adaptation: a tensor
   * with `lars.adapt[i]` and both norms |p| = |params[i]|, |g| = |grads[i]| (before the step)
   * non-zero gets d = r_i * (grads[i] + weightDecay[i] * params[i]), with the trust ratio
   * r_i = eta * |p| / (|g| + weightDecay[i] * |p| + eps) (with `clip`, r_i = min(r_i / lr, 1));
   * every other tensor gets d = grads[i] (no weight decay, no adaptation).
   */
  sgdUpdateMulti(opts: {
    params: Storage[];
    grads: Storage[];
    momentumBufs: Storage[];
    lr: number;
    momentum: number;
    weightDecay: number[];
    nesterov: boolean;
    lars?: LarsSettings | null;
  }): void;
  /**
   * The teacher's EMA over every tensor: out[i] = momentum * teacher[i] + (1 - momentum) *
   * student[i]. `out[i]` may be `teacher[i]` (in place).
   */
  emaUpdateMulti(opts: {
    teacher: Storage[];
    student: Storage[];
    out: Storage[];
    momentum: number;
  }): void;

  // ---- augmentation ---------------------------------------------------------------------------
  /**
   * Makes one normalised view of each image of a u8 batch from explicit per-sample parameters:
   * `images` holds n u8 images in NHWC order (h x w x c each, the layout datasets decode to),
   * `params` holds n rows of {@link AUGMENT_PARAM_COUNT} f32 values (see `augment_layout.ts`: crop
   * box, flip, ColorJitter factors and order, grayscale, blur sigma), drawn on the host from the
   * Philox key. The crop is resized to `size x size` (antialiased bilinear, torchvision), then the
   * `steps` run in their order, then Normalize with `mean`/`std`; `out` is NCHW f32 (or bf16).
   */
  augmentViews(opts: {
    images: Storage;
    params: Storage;
    out: Storage;
    geom: AugmentGeometry;
    steps: readonly AugmentStep[];
    blurKernel: number;
    mean: readonly number[];
    std: readonly number[];
  }): void;
}

/** LARS settings of {@link BackendKernels.sgdUpdateMulti}. */
export interface LarsSettings {
  /** Trust coefficient eta (solo-learn: 0.02; apex: 0.001). */
  eta: number;
  /** Added to the trust ratio's denominator. */
  eps: number;
  /** Clip the adapted rate to min(r / lr, 1) (solo-learn's `clip_lars_lr`). */
  clip: boolean;
  /** Per tensor: whether LARS adapts it (BN and biases are usually left out). */
  adapt: boolean[];
}

/** Shape of an augmentation call: n images of h x w x c in, n views of c x size x size out. */
export interface AugmentGeometry {
  /** Images in the batch (one parameter row each). */
  n: number;
  /** Height of the source images. */
  h: number;
  /** Width of the source images. */
  w: number;
  /** Channels (1 or 3). */
  c: number;
  /** Side of the square output views. */
  size: number;
}

/** The ops a view applies after its crop, in pipeline order. */
export type AugmentStep = ViewStep;

/** Every kernel of the contract plus device memory: what a backend implements. */
export interface Backend extends BackendMemory, BackendKernels {}

/** Names of the kernels of the contract. */
export type KernelName = keyof BackendKernels;

/** The options object of kernel `K`. */
export type Opts<K extends KernelName> = BackendKernels[K] extends (opts: infer O) => void ? O
  : never;

/** Output size of a convolution or pooling along one axis. */
export function outputSize(input: number, kernel: number, stride: number, pad: number): number {
  return Math.floor((input + 2 * pad - kernel) / stride) + 1;
}
