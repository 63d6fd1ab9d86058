/**
 * The kernel table: for every kernel of the {@link BackendKernels} contract, the storages it reads
 * (`inputs`), writes whole (`outputs`) and updates in place (`inouts`), how many elements each needs
 * given the call's dimensions, which dtypes each accepts (a `group` names a type variable whose
 * arguments must share one dtype), which scalar options must be finite, which outputs may alias
 * which inputs, and any geometry check. `validateKernel` (validate.ts) is generated from this table
 * and every backend calls it before running a kernel, so argument checks are written once.
 *
 * Multi-tensor kernels take lists of storages (`lists`): entry i of every list belongs to tensor i
 * and needs at least the length of entry i of the list named by `lengthOf`.
 *
 * @module
 */

import type { BackendKernels, DType, KernelName, Opts } from "./backend.ts";
import { AUGMENT_PARAM_COUNT } from "./augment_layout.ts";
import {
  checkAugmentOptions,
  checkBatchNorm,
  checkConvGeometry,
  checkDims,
  checkEps,
  checkPartRows,
  checkPoolGeometry,
  checkSgdMulti,
} from "./checks.ts";

/** One storage argument of a kernel. */
export interface ArgSpec<O> {
  /** Accepted dtypes (for a group: the dtypes the group may take). */
  dtypes: readonly DType[];
  /** Arguments with the same group name must have the same dtype. */
  group?: string;
  /** Elements the storage must hold at least. */
  count: (o: O) => number;
  /** The argument may be null/undefined; `requiredWhen` makes it mandatory in some calls. */
  optional?: boolean;
  /** When this returns true, an optional argument must be given. */
  requiredWhen?: (o: O) => boolean;
}

/** A list argument of a multi-tensor kernel. */
export interface ListSpec {
  /** Accepted dtypes of every entry. */
  dtypes: readonly DType[];
  /** Entry i needs at least the length of entry i of this list (itself: no requirement). */
  lengthOf: string;
}

/** The table entry of one kernel. */
export interface KernelSpec<O> {
  /** What the kernel computes, in one line (for docs and error messages). */
  summary: string;
  /** Storages the kernel reads, by option name. */
  inputs: Record<string, ArgSpec<O>>;
  /** Storages the kernel writes whole, by option name. */
  outputs: Record<string, ArgSpec<O>>;
  /** Storages the kernel reads and updates in place, by option name. */
  inouts?: Record<string, ArgSpec<O>>;
  /** Lists of storages (multi-tensor kernels), by role. */
  lists?: {
    inputs?: Record<string, ListSpec>;
    outputs?: Record<string, ListSpec>;
    inouts?: Record<string, ListSpec>;
  };
  /** Dimensions: integers >= 0. */
  dims: (o: O) => Record<string, number>;
  /** Scalars that must be finite numbers. */
  scalars?: (o: O) => Record<string, number>;
  /** Further checks (geometry, eps, option lists). */
  check?: (kernel: string, o: O) => void;
  /** [output, input] pairs that may be the same storage (in-place operation). */
  mayAlias?: readonly (readonly [string, string])[];
}

/** The whole table: one entry per kernel of the contract. */
export type KernelTable = { readonly [K in KernelName]: KernelSpec<Opts<K>> };

const F32: readonly DType[] = ["f32"];
const FLOAT: readonly DType[] = ["f32", "bf16"];
const I32: readonly DType[] = ["i32"];
const U8: readonly DType[] = ["u8"];
const ANY: readonly DType[] = ["f32", "bf16", "u8", "i32"];

type RowOpts = { rows: number; cols: number };
const rowsCols = (o: RowOpts) => o.rows * o.cols;
const rowDims = (o: RowOpts) => ({ rows: o.rows, cols: o.cols });
const f32 = <O>(count: (o: O) => number): ArgSpec<O> => ({ dtypes: F32, count });
const float = <O>(count: (o: O) => number): ArgSpec<O> => ({ dtypes: FLOAT, group: "T", count });

type Bn = Opts<"batchNormForwardTraining">;
const bnSize = (o: { geom: Bn["geom"] }) => o.geom.n * o.geom.c * o.geom.hw;
const bnChannels = (o: { geom: Bn["geom"] }) => o.geom.c;
const bnDims = (o: { geom: Bn["geom"] }) => ({ n: o.geom.n, c: o.geom.c, hw: o.geom.hw });
const bnCheck = (k: string, o: { geom: Bn["geom"]; eps: number }) =>
  checkBatchNorm(k, o.geom, o.eps);
const residual = { ...float(bnSize), optional: true };

type Conv = Opts<"conv2dForward">;
const convX = (o: { geom: Conv["geom"] }) => o.geom.n * o.geom.c * o.geom.h * o.geom.w;
const convW = (o: { geom: Conv["geom"] }) => o.geom.k * o.geom.c * o.geom.r * o.geom.s;
const convY = (o: { geom: Conv["geom"] }) => o.geom.n * o.geom.k * o.geom.outH * o.geom.outW;
const convCheck = (k: string, o: { geom: Conv["geom"] }) => checkConvGeometry(k, o.geom);

type Pool = Opts<"maxPool2dForward">;
const poolX = (o: { geom: Pool["geom"] }) => o.geom.n * o.geom.c * o.geom.h * o.geom.w;
const poolY = (o: { geom: Pool["geom"] }) => o.geom.n * o.geom.c * o.geom.outH * o.geom.outW;
const poolCheck = (k: string, o: { geom: Pool["geom"] }) => checkPoolGeometry(k, o.geom);

type Gap = { n: number; c: number; hw: number };
const gapX = (o: Gap) => o.n * o.c * o.hw;
const gapY = (o: Gap) => o.n * o.c;
const gapDims = (o: Gap) => ({ n: o.n, c: o.c, hw: o.hw });

type Aug = Opts<"augmentViews">;

/** The kernel table of the contract. */
export const KERNELS: KernelTable = {
  copy: {
    summary: "dst[dstOffset..] = src[srcOffset..], length elements, same dtype",
    inputs: { src: { dtypes: ANY, group: "T", count: (o) => o.srcOffset + o.length } },
    outputs: { dst: { dtypes: ANY, group: "T", count: (o) => o.dstOffset + o.length } },
    dims: (o) => ({ srcOffset: o.srcOffset, dstOffset: o.dstOffset, length: o.length }),
    mayAlias: [["dst", "src"]],
  },
  cast: {
    summary: "y = x converted between f32 and bf16 (round to nearest even)",
    inputs: { x: { dtypes: FLOAT, count: (o) => o.n } },
    outputs: { y: { dtypes: FLOAT, count: (o) => o.n } },
    dims: (o) => ({ n: o.n }),
  },
  axpby: {
    summary: "out = alpha x + beta y",
    inputs: { x: float((o) => o.n), y: float((o) => o.n) },
    outputs: { out: float((o) => o.n) },
    dims: (o) => ({ n: o.n }),
    scalars: (o) => ({ alpha: o.alpha, beta: o.beta }),
    mayAlias: [["out", "x"], ["out", "y"]],
  },
  mul: {
    summary: "out = a * b",
    inputs: { a: f32((o) => o.n), b: f32((o) => o.n) },
    outputs: { out: f32((o) => o.n) },
    dims: (o) => ({ n: o.n }),
  },
  broadcastScalar: {
    summary: "out[i] = alpha s[0]",
    inputs: { s: f32(() => 1) },
    outputs: { out: f32((o) => o.n) },
    dims: (o) => ({ n: o.n }),
    scalars: (o) => ({ alpha: o.alpha }),
  },
  relu: {
    summary: "y = max(x, 0)",
    inputs: { x: float((o) => o.n) },
    outputs: { y: float((o) => o.n) },
    dims: (o) => ({ n: o.n }),
  },
  reluBackward: {
    summary: "dx = dy where y > 0 else 0",
    inputs: { y: float((o) => o.n), dy: float((o) => o.n) },
    outputs: { dx: float((o) => o.n) },
    dims: (o) => ({ n: o.n }),
  },
  sum: {
    summary: "out[0] = alpha sum(x)",
    inputs: { x: f32((o) => o.n) },
    outputs: { out: f32(() => 1) },
    dims: (o) => ({ n: o.n }),
    scalars: (o) => ({ alpha: o.alpha }),
  },
  gemm: {
    summary: "c = alpha op(a) op(b) + beta c (row-major)",
    inputs: { a: float((o) => o.m * o.k), b: float((o) => o.k * o.n) },
    outputs: { c: float((o) => o.m * o.n) },
    dims: (o) => ({ m: o.m, n: o.n, k: o.k }),
    scalars: (o) => ({ alpha: o.alpha, beta: o.beta }),
  },
  addRowVector: {
    summary: "y[r, j] = x[r, j] + bias[j]",
    inputs: { x: f32(rowsCols), bias: f32((o) => o.cols) },
    outputs: { y: f32(rowsCols) },
    dims: rowDims,
  },
  sumRows: {
    summary: "out[j] = sum_r x[r, j]",
    inputs: { x: f32(rowsCols) },
    outputs: { out: f32((o) => o.cols) },
    dims: rowDims,
  },
  gatherRows: {
    summary: "y[i, :] = x[index[i], :]",
    inputs: { x: f32(rowsCols), index: { dtypes: I32, count: (o) => o.rows } },
    outputs: { y: f32(rowsCols) },
    dims: rowDims,
  },
  softmax: {
    summary: "row-wise softmax",
    inputs: { x: f32(rowsCols) },
    outputs: { y: f32(rowsCols) },
    dims: rowDims,
  },
  softmaxBackward: {
    summary: "dx = y (dy - sum(dy y)) per row",
    inputs: { y: f32(rowsCols), dy: f32(rowsCols) },
    outputs: { dx: f32(rowsCols) },
    dims: rowDims,
  },
  logSoftmax: {
    summary: "row-wise log-softmax",
    inputs: { x: f32(rowsCols) },
    outputs: { y: f32(rowsCols) },
    dims: rowDims,
  },
  logSoftmaxBackward: {
    summary: "dx = dy - exp(y) sum(dy) per row",
    inputs: { y: f32(rowsCols), dy: f32(rowsCols) },
    outputs: { dx: f32(rowsCols) },
    dims: rowDims,
  },
  l2Normalize: {
    summary: "y = x / max(|x|, eps) per row",
    inputs: { x: f32(rowsCols) },
    outputs: { y: f32(rowsCols) },
    dims: rowDims,
    check: (k, o) => checkEps(k, o.eps),
  },
  l2NormalizeBackward: {
    summary: "gradient of l2Normalize",
    inputs: { x: f32(rowsCols), dy: f32(rowsCols) },
    outputs: { dx: f32(rowsCols) },
    dims: rowDims,
    check: (k, o) => checkEps(k, o.eps),
  },
  conv2dForward: {
    summary: "y = conv(x, w)",
    inputs: { x: float(convX), w: float(convW) },
    outputs: { y: float(convY) },
    dims: () => ({}),
    check: convCheck,
  },
  conv2dBackwardData: {
    summary: "dx = conv backward data",
    inputs: { dy: float(convY), w: float(convW) },
    outputs: { dx: float(convX) },
    dims: () => ({}),
    check: convCheck,
  },
  conv2dBackwardWeights: {
    summary: "dw = conv backward weights",
    inputs: { x: float(convX), dy: float(convY) },
    outputs: { dw: float(convW) },
    dims: () => ({}),
    check: convCheck,
  },
  batchNormForwardTraining: {
    summary: "y = act(bn(x) + residual), batch statistics out",
    inputs: { x: float(bnSize), gamma: f32(bnChannels), beta: f32(bnChannels), residual },
    outputs: { y: float(bnSize), mean: f32(bnChannels), variance: f32(bnChannels) },
    dims: bnDims,
    check: bnCheck,
  },
  batchNormForwardInference: {
    summary: "y = act(bn(x; running stats) + residual)",
    inputs: {
      x: float(bnSize),
      gamma: f32(bnChannels),
      beta: f32(bnChannels),
      mean: f32(bnChannels),
      variance: f32(bnChannels),
      residual,
    },
    outputs: { y: float(bnSize) },
    dims: bnDims,
    check: bnCheck,
  },
  batchNormBackward: {
    summary: "dx, dgamma, dbeta (and dresidual) of the fused training batch norm",
    inputs: {
      x: float(bnSize),
      dy: float(bnSize),
      gamma: f32(bnChannels),
      mean: f32(bnChannels),
      variance: f32(bnChannels),
      y: { ...float(bnSize), optional: true, requiredWhen: (o) => o.relu === true },
    },
    outputs: {
      dx: float(bnSize),
      dgamma: f32(bnChannels),
      dbeta: f32(bnChannels),
      dresidual: { ...float(bnSize), optional: true },
    },
    dims: bnDims,
    check: bnCheck,
  },
  batchNormStats: {
    summary: "stats = [mean, biased variance] per channel of x (SyncBN, this process's part)",
    inputs: { x: float(bnSize) },
    outputs: { stats: f32((o) => 2 * o.geom.c) },
    dims: bnDims,
    check: (k, o) => checkBatchNorm(k, o.geom, 0),
  },
  batchNormMergeStats: {
    summary: "mean, variance of the union of equal parts from their gathered statistics (f64)",
    inputs: { parts: f32((o) => o.rows * 2 * o.c) },
    outputs: { mean: f32((o) => o.c), variance: f32((o) => o.c) },
    dims: (o) => ({ c: o.c, rows: o.rows, first: o.first, stride: o.stride, take: o.take }),
    check: (k, o) => {
      checkDims(k, { c: o.c }, 1);
      checkPartRows(k, o);
    },
  },
  batchNormBackwardReduce: {
    summary: "sums = [sum(g), sum(g xhat)] per channel, g = relu-masked dy (SyncBN backward)",
    inputs: {
      x: float(bnSize),
      dy: float(bnSize),
      mean: f32(bnChannels),
      variance: f32(bnChannels),
      y: { ...float(bnSize), optional: true, requiredWhen: (o) => o.relu === true },
    },
    outputs: { sums: f32((o) => 2 * o.geom.c) },
    dims: bnDims,
    check: bnCheck,
  },
  batchNormBackwardApply: {
    summary: "dx (and dresidual) of a batch norm over all parts from their gathered sums",
    inputs: {
      x: float(bnSize),
      dy: float(bnSize),
      gamma: f32(bnChannels),
      mean: f32(bnChannels),
      variance: f32(bnChannels),
      sums: f32((o) => o.rows * 2 * o.geom.c),
      y: { ...float(bnSize), optional: true, requiredWhen: (o) => o.relu === true },
    },
    outputs: { dx: float(bnSize), dresidual: { ...float(bnSize), optional: true } },
    dims: (o) => ({ ...bnDims(o), rows: o.rows, first: o.first, stride: o.stride, take: o.take }),
    scalars: (o) => ({ count: o.count }),
    check: (k, o) => {
      bnCheck(k, o);
      checkPartRows(k, o);
      if (!(o.count >= 1)) {
        throw new RangeError(
          `Cannot run ${k}: 'count' is ${o.count}, expected the elements per channel (>= 1)`,
        );
      }
    },
  },
  maxPool2dForward: {
    summary: "max pooling",
    inputs: { x: f32(poolX) },
    outputs: { y: f32(poolY) },
    dims: () => ({}),
    check: poolCheck,
  },
  maxPool2dBackward: {
    summary: "max pooling backward (first maximum wins)",
    inputs: { x: f32(poolX), dy: f32(poolY) },
    outputs: { dx: f32(poolX) },
    dims: () => ({}),
    check: poolCheck,
  },
  globalAvgPool: {
    summary: "y[n, c] = mean over hw of x[n, c]",
    inputs: { x: f32(gapX) },
    outputs: { y: f32(gapY) },
    dims: gapDims,
  },
  globalAvgPoolBackward: {
    summary: "dx[n, c, p] = dy[n, c] / hw",
    inputs: { dy: f32(gapY) },
    outputs: { dx: f32(gapX) },
    dims: gapDims,
  },
  sgdUpdateMulti: {
    summary: "SGD (+ LARS) step over every parameter tensor, in place",
    inputs: {},
    outputs: {},
    lists: {
      inputs: { grads: { dtypes: F32, lengthOf: "params" } },
      inouts: {
        params: { dtypes: F32, lengthOf: "params" },
        momentumBufs: { dtypes: F32, lengthOf: "params" },
      },
    },
    dims: () => ({}),
    scalars: (o) => ({ lr: o.lr, momentum: o.momentum }),
    check: checkSgdMulti,
  },
  emaUpdateMulti: {
    summary: "out[i] = m teacher[i] + (1 - m) student[i] for every tensor",
    inputs: {},
    outputs: {},
    lists: {
      inputs: {
        teacher: { dtypes: F32, lengthOf: "teacher" },
        student: { dtypes: F32, lengthOf: "teacher" },
      },
      outputs: { out: { dtypes: F32, lengthOf: "teacher" } },
    },
    dims: () => ({}),
    scalars: (o) => ({ momentum: o.momentum }),
    mayAlias: [["out", "teacher"]],
  },
  augmentViews: {
    summary: "normalised views of a u8 NHWC batch from per-sample crop/flip/jitter/blur params",
    inputs: {
      images: { dtypes: U8, count: (o: Aug) => o.geom.n * o.geom.h * o.geom.w * o.geom.c },
      params: f32((o: Aug) => o.geom.n * AUGMENT_PARAM_COUNT),
    },
    outputs: {
      out: { dtypes: FLOAT, count: (o: Aug) => o.geom.n * o.geom.c * o.geom.size * o.geom.size },
    },
    dims: (o) => ({ n: o.geom.n, h: o.geom.h, w: o.geom.w, c: o.geom.c, size: o.geom.size }),
    check: checkAugmentOptions,
  },
};

/** The kernels the table lists, in table order. */
export const KERNEL_NAMES: readonly KernelName[] = Object.keys(KERNELS) as KernelName[];

/** The table entry of `kernel` (typed). */
export function kernelSpec<K extends KernelName>(kernel: K): KernelSpec<Opts<K>> {
  return KERNELS[kernel] as unknown as KernelSpec<Opts<K>>;
}

/** Whether `kernel` accepts `dtype` for its argument `arg` (tests and backends' dtype dispatch). */
export function acceptsDType<K extends keyof BackendKernels>(
  kernel: K,
  arg: string,
  dtype: DType,
): boolean {
  const spec = KERNELS[kernel] as unknown as KernelSpec<unknown>;
  const a = spec.inputs[arg] ?? spec.outputs[arg] ?? spec.inouts?.[arg];
  if (a) return a.dtypes.includes(dtype);
  const l = spec.lists?.inputs?.[arg] ?? spec.lists?.outputs?.[arg] ?? spec.lists?.inouts?.[arg];
  return l !== undefined && l.dtypes.includes(dtype);
}
