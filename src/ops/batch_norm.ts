/**
 * `batchNorm2d`: PyTorch's BatchNorm2d as a pure function of parameters and running statistics,
 * with the official ReSSL SplitBatchNorm (`splits`) for simulated multi-GPU statistics; and
 * `batchNormAct`, the same fused with a residual add and a ReLU (a ResNet block's
 * `relu(bn(x) + identity)`, cuDNN's BN_ADD_ACTIVATION) in one kernel forward and one backward.
 *
 * @module
 */

import type { Tensor } from "../tensor/tensor.ts";
import { batchNormEval } from "./batch_norm_eval.ts";
import { batchNormTrain } from "./batch_norm_train.ts";
import { reshape } from "./shape.ts";
import { batchNormPlan, type BatchNormSync, syncBatchNormTrain } from "./batch_norm_sync.ts";
import { blendSplitStats, repeatChannels } from "./split_batch_norm.ts";
import { checkRank, checkSameContext, checkSameShape, fmtShape } from "./validate.ts";

/** Learnable affine parameters of a batch norm, each [C]. */
export interface BatchNormParams {
  /** Scale (gamma). */
  weight: Tensor;
  /** Shift (beta). */
  bias: Tensor;
}

/** Running statistics of a batch norm, each [C]. */
export interface BatchNormState {
  /** Running mean. */
  runningMean: Tensor;
  /** Running (unbiased) variance. */
  runningVar: Tensor;
}

/** Options of {@link batchNorm2d}. */
export interface BatchNormOptions {
  /** Batch statistics and a running-stat update (true) or the running statistics (false). */
  training: boolean;
  /** Weight of the new batch statistics in the running update (default 0.1). */
  momentum?: number;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /**
   * SplitBatchNorm: number of image groups with separate statistics in training (default 1). With
   * `sync`, the groups are counted over the global batch of all ranks.
   */
  splits?: number;
  /**
   * Data-parallel training: this rank holds the strided slice of a global batch spread over
   * `sync.size` ranks; groups on several ranks share statistics (SyncBN); see
   * `batch_norm_sync.ts` for the running statistics. Absent or of size 1: one process.
   */
  sync?: BatchNormSync;
}

/** Options of {@link batchNormAct}: batch norm's, plus what is fused after it. */
export interface BatchNormActOptions extends BatchNormOptions {
  /** Added to the normalised output before the activation; shaped like the input. */
  residual?: Tensor | null;
  /** Apply a ReLU last. Default false. */
  relu?: boolean;
}

/** What {@link batchNorm2d} returns; all three are new tensors the caller owns. */
export interface BatchNormResult {
  /** The normalised output, shaped like the input. */
  y: Tensor;
  /** Updated running mean (training) or a view of the given one (eval). */
  runningMean: Tensor;
  /** Updated running variance (training) or a view of the given one (eval). */
  runningVar: Tensor;
}

function checkArgs(
  op: string,
  x: Tensor,
  params: BatchNormParams,
  state: BatchNormState,
  opts: { momentum: number; eps: number; splits: number; training: boolean; ranks: number },
  residual: Tensor | null,
): void {
  checkRank(op, "input x", x, 4);
  const vectors: [string, Tensor][] = [
    ["weight", params.weight],
    ["bias", params.bias],
    ["runningMean", state.runningMean],
    ["runningVar", state.runningVar],
  ];
  checkSameContext(op, [x, ...vectors.map(([, t]) => t), ...(residual ? [residual] : [])]);
  if (residual) {
    checkRank(op, "residual", residual, 4);
    checkSameShape(op, x, residual);
  }
  const [n, c, h, w] = x.shape;
  for (const [name, t] of vectors) {
    checkRank(op, name, t, 1);
    if (t.shape[0] !== c) {
      throw new RangeError(
        `Cannot run ${op}: input ${fmtShape(x.shape)} has ${c} channels but ${name} has ${
          t.shape[0]
        } entries`,
      );
    }
  }
  const { momentum, eps, splits, training } = opts;
  if (!(momentum >= 0 && momentum <= 1)) {
    throw new RangeError(`Cannot run ${op}: momentum is ${momentum} but must be in [0, 1]`);
  }
  if (!(eps > 0) || !Number.isFinite(eps)) {
    throw new RangeError(`Cannot run ${op}: eps is ${eps} but must be a finite number > 0`);
  }
  if (!Number.isInteger(splits) || splits < 1) {
    throw new RangeError(`Cannot run ${op}: splits is ${splits} but must be an integer >= 1`);
  }
  if (!training) return;
  if (n % splits !== 0) {
    throw new RangeError(
      `Cannot run ${op}: batch of ${n} images does not divide into ${splits} splits`,
    );
  }
  if ((n / splits) * h * w * opts.ranks <= 1) {
    throw new RangeError(
      `Cannot run ${op} in training mode: each channel${splits > 1 ? " of each split" : ""} has ${
        (n / splits) * h * w * opts.ranks
      } value(s), expected more than 1 (input ${fmtShape(x.shape)})`,
    );
  }
}

/**
 * Batch normalisation of `x` [N, C, H, W] with PyTorch's semantics.
 * - training: batch mean and biased variance per channel (per split with `splits` > 1, images
 *   n with n % splits == j forming split j); running stats updated as
 *   `(1 - m) * running + m * stat`, with the variance made unbiased by n/(n-1), n the values per
 *   channel and split, and averaged over splits.
 * - eval: the running statistics normalise; they are returned as views.
 * `y` is differentiable in x, weight and bias; running statistics are not.
 */
export function batchNorm2d(
  x: Tensor,
  params: BatchNormParams,
  state: BatchNormState,
  opts: BatchNormOptions,
): BatchNormResult {
  return batchNormImpl("batchNorm2d", x, params, state, opts, null, false);
}

/**
 * `relu?(batchNorm2d(x) + residual?)` as one op: the batch norm of {@link batchNorm2d} (training
 * or eval, SplitBatchNorm included: the residual and the output are split like the input) with the
 * residual add and the ReLU fused into its kernels, forward and backward. `y` is differentiable in
 * x, weight, bias and the residual.
 */
export function batchNormAct(
  x: Tensor,
  params: BatchNormParams,
  state: BatchNormState,
  opts: BatchNormActOptions,
): BatchNormResult {
  return batchNormImpl("batchNormAct", x, params, state, opts, opts.residual ?? null, opts.relu);
}

function batchNormImpl(
  op: string,
  x: Tensor,
  params: BatchNormParams,
  state: BatchNormState,
  opts: BatchNormOptions,
  residual: Tensor | null,
  relu: boolean | undefined,
): BatchNormResult {
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  const globalSplits = opts.splits ?? 1;
  const training = opts.training;
  const sync = opts.sync && opts.sync.size > 1 ? opts.sync : null;
  const plan = training && sync ? batchNormPlan(globalSplits, sync.size, sync.rank) : null;
  // Splits of this rank's images, and ranks per group (values per channel multiply by it).
  const splits = plan === null ? globalSplits : plan.kind === "local" ? plan.localSplits : 1;
  const ranks = plan?.kind === "sync" ? plan.take : 1;
  checkArgs(op, x, params, state, { momentum, eps, splits, training, ranks }, residual);
  const ctx = x.ctx;
  const { weight, bias } = params;
  const { runningMean, runningVar } = state;
  if (!training) {
    const stats = { mean: runningMean, variance: runningVar };
    const y = batchNormEval(x, weight, bias, stats, eps, { residual, relu });
    return {
      y,
      runningMean: ctx.view(runningMean, runningMean.shape),
      runningVar: ctx.view(runningVar, runningVar.shape),
    };
  }
  if (plan?.kind === "sync") {
    const core = syncBatchNormTrain(x, weight, bias, eps, { residual, relu }, sync!, plan);
    const count = core.count;
    const newMean = blendSplitStats(core.mean, runningMean, 1, momentum, 1 - momentum);
    const newVar = blendSplitStats(
      core.variance,
      runningVar,
      1,
      (momentum * count) / (count - 1),
      1 - momentum,
    );
    if (!core.y.node) { for (const t of [core.mean, core.variance]) t.dispose(); }
    return { y: core.y, runningMean: newMean, runningVar: newVar };
  }
  const [n, c, h, w] = x.shape;
  const temps: Tensor[] = [];
  let xs = x;
  let rs = residual;
  let gamma = weight;
  let beta = bias;
  if (splits > 1) {
    // The split view [n/s, c*s, h, w] of x, and the same view of the residual (elementwise).
    xs = reshape(x, [n / splits, c * splits, h, w]);
    rs = residual && reshape(residual, xs.shape);
    gamma = repeatChannels(weight, splits);
    beta = repeatChannels(bias, splits);
    temps.push(xs, gamma, beta, ...(rs ? [rs] : []));
  }
  const core = batchNormTrain(xs, gamma, beta, eps, { residual: rs, relu });
  temps.push(core.mean, core.variance);
  let y = core.y;
  if (splits > 1) {
    y = reshape(core.y, x.shape);
    temps.push(core.y);
  }
  const count = (n / splits) * h * w;
  // With the local plan, each rank updates its buffers from its own groups: the average over the
  // ranks (the data-parallel step averages the buffers once per step) is one process's update.
  const newMean = blendSplitStats(core.mean, runningMean, splits, momentum / splits, 1 - momentum);
  const newVar = blendSplitStats(
    core.variance,
    runningVar,
    splits,
    (momentum * count) / (count - 1) / splits,
    1 - momentum,
  );
  // Without an autodiff node nothing refers to the intermediates; with one, the graph needs them
  // until the enclosing scope (valueAndGrad's) ends.
  if (!y.node) { for (const t of temps) t.dispose(); }
  return { y, runningMean: newMean, runningVar: newVar };
}
