/**
 * Training-mode batch normalisation with batch statistics (the differentiable core of
 * `batchNorm2d`): normalises each channel of a [N, C, H, W] tensor by its batch mean and biased
 * variance and returns those statistics for the running-stat update.
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Output and batch statistics of {@link batchNormTrain}. */
export interface BatchNormTrainResult {
  /** gamma * (x - mean) / sqrt(variance + eps) + beta, shaped like x. */
  y: Tensor;
  /** Per-channel batch mean [C] (no autodiff node). */
  mean: Tensor;
  /** Per-channel biased batch variance [C] (no autodiff node). */
  variance: Tensor;
}

/**
 * Normalises `x` [N, C, H, W] with its own per-channel statistics, scaled by `gamma` [C] and
 * shifted by `beta` [C]. Shapes are not checked here: `batchNorm2d` validates them.
 * `y` is differentiable in x, gamma and beta; the statistics are plain values.
 */
export function batchNormTrain(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  eps: number,
): BatchNormTrainResult {
  const [n, c, h, w] = x.shape;
  const geom = { n, c, hw: h * w };
  const ctx = x.ctx;
  const be = x.backend;
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
  });
  record(y, [x, gamma, beta], (dy) => {
    const dx = ctx.empty(x.shape);
    const dgamma = ctx.empty([c]);
    const dbeta = ctx.empty([c]);
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
    });
    return [dx, dgamma, dbeta];
  });
  return { y, mean, variance };
}
