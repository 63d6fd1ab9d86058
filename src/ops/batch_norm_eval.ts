/**
 * Inference-mode batch normalisation with given (running) statistics, optionally fused with a
 * residual add and a ReLU (one `batchNormForwardInference` kernel), differentiable in the input,
 * the affine parameters and the residual (a frozen backbone still passes gradients to its input).
 *
 * @module
 */

import type { Backend, BatchNormGeometry } from "../backend/backend.ts";
import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { BatchNormFusion } from "./batch_norm_train.ts";

function inference(
  be: Backend,
  geom: BatchNormGeometry,
  eps: number,
  args: { x: Tensor; gamma: Tensor; beta: Tensor; mean: Tensor; variance: Tensor; y: Tensor },
  fusion: BatchNormFusion = {},
): void {
  be.batchNormForwardInference({
    x: args.x.storage,
    gamma: args.gamma.storage,
    beta: args.beta.storage,
    mean: args.mean.storage,
    variance: args.variance.storage,
    y: args.y.storage,
    geom,
    eps,
    residual: fusion.residual?.storage ?? null,
    relu: fusion.relu === true,
  });
}

/** Per-channel sums of `t` [N, C, H, W] as a [C] tensor (mean over pixels, sum over images). */
function channelSum(t: Tensor, geom: BatchNormGeometry): Tensor {
  const { n, c, hw } = geom;
  const ctx = t.ctx;
  const be = t.backend;
  const perImage = ctx.empty([n, c]);
  be.globalAvgPool({ x: t.storage, y: perImage.storage, n, c, hw });
  const means = ctx.empty([c]);
  be.sumRows({ x: perImage.storage, out: means.storage, rows: n, cols: c });
  perImage.dispose();
  const sums = ctx.empty([c]);
  be.axpby({ x: means.storage, y: means.storage, out: sums.storage, alpha: hw, beta: 0, n: c });
  means.dispose();
  return sums;
}

/**
 * y = act(gamma * (x - mean) / sqrt(variance + eps) + beta (+ residual)) per channel of `x`
 * [N, C, H, W], with the statistics given (not differentiated). Differentiable in x, gamma, beta
 * and the residual: the ReLU masks the incoming gradient (by y > 0), the residual receives the
 * masked gradient, and the affine map's rules apply to it.
 */
export function batchNormEval(
  x: Tensor,
  gamma: Tensor,
  beta: Tensor,
  stats: { mean: Tensor; variance: Tensor },
  eps: number,
  fusion: BatchNormFusion = {},
): Tensor {
  const [n, c, h, w] = x.shape;
  const geom = { n, c, hw: h * w };
  const ctx = x.ctx;
  const be = x.backend;
  const { mean, variance } = stats;
  const residual = fusion.residual ?? null;
  const y = ctx.empty(x.shape);
  inference(be, geom, eps, { x, gamma, beta, mean, variance, y }, fusion);
  const inputs = residual ? [x, gamma, beta, residual] : [x, gamma, beta];
  return record(y, inputs, (dyIn) => {
    let dy = dyIn;
    if (fusion.relu === true) {
      dy = ctx.empty(x.shape);
      be.reluBackward({ y: y.storage, dy: dyIn.storage, dx: dy.storage, n: x.size });
    }
    let dx: Tensor | null = null;
    let dgamma: Tensor | null = null;
    let dbeta: Tensor | null = null;
    const zeros = ctx.zeros([c]);
    if (x.requiresGrad) {
      // dx = dy * gamma / sqrt(variance + eps): the same affine map applied to dy with mean 0.
      dx = ctx.empty(x.shape);
      inference(be, geom, eps, { x: dy, gamma, beta: zeros, mean: zeros, variance, y: dx });
    }
    if (gamma.requiresGrad) {
      // dgamma = sum over (n, p) of dy * xhat, xhat the normalised input.
      const ones = ctx.full([c], 1);
      const xhat = ctx.empty(x.shape);
      inference(be, geom, eps, { x, gamma: ones, beta: zeros, mean, variance, y: xhat });
      ones.dispose();
      const prod = ctx.empty(x.shape);
      be.mul({ a: xhat.storage, b: dy.storage, out: prod.storage, n: x.size });
      xhat.dispose();
      dgamma = channelSum(prod, geom);
      prod.dispose();
    }
    if (beta.requiresGrad) dbeta = channelSum(dy, geom);
    zeros.dispose();
    // The residual's gradient is the (masked) incoming gradient itself.
    const dresidual = residual?.requiresGrad ? dy : null;
    if (dy !== dyIn && dresidual === null) dy.dispose();
    return [dx, dgamma, dbeta, dresidual];
  });
}
