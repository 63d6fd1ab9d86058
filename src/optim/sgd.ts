/**
 * Stochastic gradient descent with momentum, Nesterov momentum and weight decay, with exactly the
 * semantics of `torch.optim.SGD` (dampening 0): per parameter,
 * `g = grad + wd * p; buf = momentum * buf + g; p -= lr * (nesterov ? g + momentum * buf : buf)`.
 * PyTorch starts `buf` as a copy of the first `g`; a zero buffer gives the same first step.
 *
 * The step is functional: it returns new parameter and state trees and never writes into the
 * caller's tensors (it copies them, then runs the in-place `sgdUpdateMulti` kernel once, over
 * every copy).
 *
 * @module
 */

import { mapTree, type TensorTree } from "../tensor/tree.ts";
import { multiStep } from "./multi_step.ts";
import { checkNonNegative, type ParamPredicate } from "./params.ts";

/** Hyper-parameters of one SGD step. */
export interface SgdOptions {
  /** Learning rate of this step (from the schedule). */
  lr: number;
  /** Momentum factor (0.9 in every ReSSL recipe); 0 disables momentum. */
  momentum: number;
  /** L2 weight decay added to the gradient (5e-4 small datasets, 1e-4 ImageNet). */
  weightDecay: number;
  /** Nesterov momentum (needs momentum > 0). Default false. */
  nesterov?: boolean;
  /** Parameters for which weight decay is 0 (e.g. {@link excludeBnAndBias}). Default: none. */
  exclude?: ParamPredicate;
}

/** Optimiser state of SGD: one momentum buffer per parameter, shaped like the parameters. */
export interface SgdState<P extends TensorTree> {
  /** Momentum buffers, same tree structure as the parameters. */
  momentum: P;
}

/** The result of an optimiser step: new parameters and new state (the inputs are unchanged). */
export interface OptimizerStep<P extends TensorTree, S> {
  /** The updated parameters. */
  params: P;
  /** The updated optimiser state. */
  state: S;
}

/** A fresh SGD state: zero momentum buffers shaped like `params`. */
export function sgdInit<P extends TensorTree>(params: P): SgdState<P> {
  return { momentum: mapTree(params, (t) => t.ctx.zeros(t.shape)) };
}

/** Throws a clear error for invalid SGD hyper-parameters. */
export function checkSgdOptions(what: string, opts: SgdOptions): void {
  checkNonNegative(what, "lr", opts.lr);
  checkNonNegative(what, "momentum", opts.momentum);
  checkNonNegative(what, "weightDecay", opts.weightDecay);
  if (opts.nesterov && opts.momentum <= 0) {
    throw new RangeError(
      `Cannot run ${what}: Nesterov momentum needs momentum > 0, got ${opts.momentum}`,
    );
  }
}

/**
 * One SGD step. Returns new parameter and momentum trees; `params`, `grads` and `state` are not
 * modified nor disposed (dispose them when they are no longer needed).
 */
export function sgdStep<P extends TensorTree>(
  params: P,
  grads: P,
  state: SgdState<P>,
  opts: SgdOptions,
): OptimizerStep<P, SgdState<P>> {
  checkSgdOptions("the SGD step", opts);
  return multiStep("the SGD step", params, grads, state, opts, null);
}
