/**
 * Batch norm in data-parallel training, where the batch of one step is spread over W processes
 * (ranks) and the BatchNorm groups are counted over the **global** batch (`splits` groups, image
 * n of the global batch in group n % splits). Rank r holds the global images r, r + W, r + 2W, ...
 * (a strided slice), which makes every group live on whole ranks:
 *
 * - `splits` a multiple of W ("local" plan): rank r holds `splits / W` whole groups (its local
 *   image i is global image i W + r, in global group (i % (splits / W)) W + r): SplitBatchNorm
 *   with `splits / W` local splits, no exchange in forward or backward. Each rank updates its
 *   running statistics from its own groups (as the official code's per-GPU BN); their average
 *   over the ranks is exactly one process's update (the mean over all groups), so the caller
 *   averages the buffers across the ranks once per step (the train step does, in its last
 *   gradient bucket) and every rank keeps the buffers one process would have.
 * - W a multiple of `splits` ("sync" plan, SyncBN): group j spans the ranks r with r % splits ==
 *   j; each layer gathers every rank's [mean | variance] (2 C floats), merges its group's in f64
 *   (`batchNormMergeStats`) and normalises with them; backward gathers every rank's [sum g |
 *   sum g xhat] and applies them (`batchNormBackwardApply`). Running statistics come from the
 *   merged (group) statistics, identical on the group's ranks.
 *
 * Any other combination is refused ({@link batchNormPlan}). Every rank makes the same gathers in
 * the same order (one per layer in forward, one per layer in backward for the sync plan).
 *
 * @module
 */

import type { BatchNormGeometry, Storage } from "../backend/backend.ts";
import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { BatchNormFusion } from "./batch_norm_train.ts";

/** The collective a distributed batch norm needs: an allgather of f32 storages across ranks. */
export interface BatchNormSync {
  /** This process's rank, 0 ≤ rank < size. */
  readonly rank: number;
  /** Number of ranks W. */
  readonly size: number;
  /** Writes every rank's `send` in rank order into `result` (`size × send.length` elements). */
  allgather(send: Storage, result: Storage): void;
}

/** How a layer's groups map onto the ranks (see the module doc). */
export type BatchNormPlan =
  | { kind: "local"; localSplits: number }
  | { kind: "sync"; first: number; stride: number; take: number };

/**
 * The plan for `splits` global groups on `size` ranks (rank `rank`). Throws a RangeError saying
 * what would work when neither divides the other.
 */
export function batchNormPlan(splits: number, size: number, rank: number): BatchNormPlan {
  if (splits % size === 0) return { kind: "local", localSplits: splits / size };
  if (size % splits === 0) {
    return { kind: "sync", first: rank % splits, stride: splits, take: size / splits };
  }
  throw new RangeError(
    `Cannot spread ${splits} BatchNorm groups (ressl.bnSplits) over ${size} processes: one must ` +
      `divide the other (e.g. ${size} or ${Math.max(1, splits - (splits % size))} groups, or a ` +
      `process count that divides or is a multiple of ${splits})`,
  );
}

/** Output and group statistics of {@link syncBatchNormTrain}. */
export interface SyncBatchNormResult {
  /** act(gamma (x - mean) / sqrt(variance + eps) + beta (+ residual)), shaped like x. */
  y: Tensor;
  /** The group's mean [C] (no autodiff node). */
  mean: Tensor;
  /** The group's biased variance [C] (no autodiff node). */
  variance: Tensor;
  /** Values per channel in the group (all its ranks). */
  count: number;
}

/**
 * SyncBN's differentiable core: `x` [n, C, H, W] is this rank's share of a group spread over the
 * ranks of `plan`; statistics and backward sums are gathered through `sync`. `y` is
 * differentiable in x, gamma, beta and the residual; gamma's and beta's gradients are this rank's
 * shares (the data-parallel gradient average adds the ranks' shares up).
 */
export function syncBatchNormTrain(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
  fusion: BatchNormFusion,
  sync: BatchNormSync,
  plan: { first: number; stride: number; take: number },
): SyncBatchNormResult {
  const [n, c, h, w] = x.shape;
  const geom: BatchNormGeometry = { n, c, hw: h * w };
  const ctx = x.ctx;
  const be = x.backend;
  const residual = fusion.residual ?? null;
  const relu = fusion.relu === true;
  const sel = { rows: sync.size, ...plan };
  const mean = ctx.empty([c]);
  const variance = ctx.empty([c]);
  {
    const stats = ctx.empty([2 * c]);
    const parts = ctx.empty([sync.size * 2 * c]);
    be.batchNormStats({ x: x.storage, stats: stats.storage, geom });
    sync.allgather(stats.storage, parts.storage);
    be.batchNormMergeStats({
      parts: parts.storage,
      mean: mean.storage,
      variance: variance.storage,
      c,
      ...sel,
    });
    stats.dispose();
    parts.dispose();
  }
  const y = ctx.empty(x.shape);
  be.batchNormForwardInference({
    x: x.storage,
    gamma: gamma.storage,
    beta: beta.storage,
    mean: mean.storage,
    variance: variance.storage,
    y: y.storage,
    geom,
    eps,
    residual: residual?.storage ?? null,
    relu,
  });
  const count = n * h * w * plan.take;
  const inputs = residual ? [x, gamma, beta, residual] : [x, gamma, beta];
  record(y, inputs, (dy) => {
    const sums = ctx.empty([2 * c]);
    be.batchNormBackwardReduce({
      x: x.storage,
      dy: dy.storage,
      mean: mean.storage,
      variance: variance.storage,
      sums: sums.storage,
      geom,
      eps,
      relu,
      y: relu ? y.storage : null,
    });
    const gathered = ctx.empty([sync.size * 2 * c]);
    sync.allgather(sums.storage, gathered.storage);
    const dx = ctx.empty(x.shape);
    const dresidual = residual?.requiresGrad ? ctx.empty(x.shape) : null;
    be.batchNormBackwardApply({
      x: x.storage,
      dy: dy.storage,
      gamma: gamma.storage,
      mean: mean.storage,
      variance: variance.storage,
      sums: gathered.storage,
      dx: dx.storage,
      geom,
      ...sel,
      count,
      eps,
      relu,
      y: relu ? y.storage : null,
      dresidual: dresidual?.storage ?? null,
    });
    const dgamma = ctx.empty([c]);
    const dbeta = ctx.empty([c]);
    be.copy({ src: sums.storage, dst: dbeta.storage, srcOffset: 0, dstOffset: 0, length: c });
    be.copy({ src: sums.storage, dst: dgamma.storage, srcOffset: c, dstOffset: 0, length: c });
    sums.dispose();
    gathered.dispose();
    return [dx, dgamma, dbeta, dresidual];
  });
  return { y, mean, variance, count };
}
