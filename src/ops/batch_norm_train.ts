/**
 * Training-mode batch normalisation with batch statistics (the differentiable core of
 * `batchNormAct` / `batchNorm2d`), optionally fused with a residual add and a ReLU: one
 * `batchNormForwardTraining` kernel forward and one `batchNormBackward` kernel backward (which masks
 * the gradient by the ReLU and hands the residual its gradient).
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Output and batch statistics of {@link batchNormTrain}. */
export interface BatchNormTrainResult {
  /** act(gamma * (x - mean) / sqrt(variance + eps) + beta (+ residual)), shaped like x. */
  y: Tensor;
  /** Per-channel batch mean [C] (no autodiff node). */
  mean: Tensor;
  /** Per-channel biased batch variance [C] (no autodiff node). */
  variance: Tensor;
}

/** What is fused into the batch norm: a residual added before the activation, and a ReLU. */
export interface BatchNormFusion {
  /** Added to the normalised output (shaped like x), or null. */
  residual?: Tensor | null;
  /** Apply max(., 0) last. */
  relu?: boolean;
}

/**
 * Normalises `x` [N, C, H, W] with its own per-channel statistics, scaled by `gamma` [C] and
 * shifted by `beta` [C], then adds `residual` and applies the ReLU when asked. Shapes are not
 * checked here: `batchNormAct` validates them. `y` is differentiable in x, gamma, beta and the
 * residual; the statistics are plain values.
 */
export function batchNormTrain(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
  fusion: BatchNormFusion = {},
): BatchNormTrainResult {
  const [n, c, h, w] = x.shape;
  const geom = { n, c, hw: h * w };
  const ctx = x.ctx;
  const be = x.backend;
  const residual = fusion.residual ?? null;
  const relu = fusion.relu === true;
  const y = ctx.empty(x.shape);
  const mean = ctx.empty([c]);
  const variance = ctx.empty([c]);
  be.batchNormForwardTraining({
    x: x.storage,
    gamma: gamma.storage,
    beta: beta.storage,
    y: y.storage,
    mean: mean.storage,
    variance: variance.storage,
    geom,
    eps,
    residual: residual?.storage ?? null,
    relu,
  });
  const inputs = residual ? [x, gamma, beta, residual] : [x, gamma, beta];
  record(y, inputs, (dy) => {
    const dx = ctx.empty(x.shape);
    const dgamma = ctx.empty([c]);
    const dbeta = ctx.empty([c]);
    const dresidual = residual?.requiresGrad ? ctx.empty(x.shape) : null;
    be.batchNormBackward({
      x: x.storage,
      dy: dy.storage,
      gamma: gamma.storage,
      mean: mean.storage,
      variance: variance.storage,
      dx: dx.storage,
      dgamma: dgamma.storage,
      dbeta: dbeta.storage,
      geom,
      eps,
      relu,
      y: relu ? y.storage : null,
      dresidual: dresidual?.storage ?? null,
    });
    return [dx, dgamma, dbeta, dresidual];
  });
  return { y, mean, variance };
}
