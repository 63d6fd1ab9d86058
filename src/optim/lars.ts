/**
 * LARS (You et al. 2017, "Large batch training of convolutional networks") as in solo-learn /
 * Lightning Bolts / apex: SGD whose per-parameter gradient is rescaled by a trust ratio,
 * `lars_lr = eta * ||p|| / (||g|| + wd * ||p|| + eps)`, `d = lars_lr * (g + wd * p)`, then PyTorch's
 * momentum SGD on `d` (dampening 0). Parameters excluded from adaptation (BatchNorm and biases by
 * default) and parameters with `||p|| = 0` or `||g|| = 0` use the plain gradient `d = g` (as the
 * reference code, weight decay is only added inside the adaptation branch).
 *
 * The whole step is one `sgdUpdateMulti` call with LARS settings: the norms and trust ratios are
 * computed inside the kernel, on the device, with no host round-trip.
 *
 * @module
 */

import type { TensorTree } from "../tensor/tree.ts";
import { checkNonNegative, excludeBnAndBias } from "./params.ts";
import type { ParamPredicate } from "./params.ts";
import { multiStep } from "./multi_step.ts";
import { checkSgdOptions, type OptimizerStep, type SgdOptions, type SgdState } from "./sgd.ts";

/** Hyper-parameters of one LARS step (SGD's, plus the trust-ratio settings). */
export interface LarsOptions extends SgdOptions {
  /** Trust coefficient eta. Default 0.001 (solo-learn, apex). */
  eta?: number;
  /** Added to the trust ratio's denominator. Default 1e-8. */
  eps?: number;
  /** Clip the adapted rate: `lars_lr = min(lars_lr / lr, 1)` (solo-learn's `clip_lars_lr`). */
  clipLr?: boolean;
  /** Parameters left out of the adaptation. Default {@link excludeBnAndBias}. */
  excludeFromAdaptation?: ParamPredicate;
}

/** LARS keeps the same state as SGD: one momentum buffer per parameter. */
export type LarsState<P extends TensorTree> = SgdState<P>;

/**
 * One LARS step. Returns new parameter and momentum trees; the inputs are neither modified nor
 * disposed.
 */
export function larsStep<P extends TensorTree>(
  params: P,
  grads: P,
  state: LarsState<P>,
  opts: LarsOptions,
): OptimizerStep<P, LarsState<P>> {
  checkSgdOptions("the LARS step", opts);
  checkNonNegative("the LARS step", "eta", opts.eta ?? 1e-3);
  checkNonNegative("the LARS step", "eps", opts.eps ?? 1e-8);
  const skip = opts.excludeFromAdaptation ?? excludeBnAndBias;
  return multiStep("the LARS step", params, grads, state, opts, (slots) => ({
    eta: opts.eta ?? 1e-3,
    eps: opts.eps ?? 1e-8,
    clip: opts.clipLr ?? false,
    adapt: slots.map((s) => !skip(s.path, s.param)),
  }));
}
