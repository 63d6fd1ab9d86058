/**
 * Stochastic gradient descent with momentum, Nesterov momentum and weight decay, with exactly the
 * semantics of `torch.optim.SGD` (dampening 0): per parameter,
 * `g = grad + wd * p; buf = momentum * buf + g; p -= lr * (nesterov ? g + momentum * buf : buf)`.
 * PyTorch starts `buf` as a copy of the first `g`; a zero buffer gives the same first step.
 *
 * The step is functional: it returns new parameter and state trees and never writes into the
 * caller's tensors (it copies them, then runs the in-place `sgdUpdate` kernel on the copies).
 *
 * @module
 */

import type { Tensor } from "../tensor/tensor.ts";
import { cloneTree, mapTree, type TensorTree } from "../tensor/tree.ts";
import { checkNonNegative, matchSlots, type ParamPredicate } from "./params.ts";

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
  const slots = matchSlots("the SGD step", params, grads, state.momentum);
  const newParams = new Map<string, Tensor>();
  const newBufs = new Map<string, Tensor>();
  for (const { path, param, grad, buf } of slots) {
    const p = cloneTree(param);
    const b = cloneTree(buf);
    const decay = opts.exclude?.(path, param) ? 0 : opts.weightDecay;
    param.backend.sgdUpdate({
      param: p.storage,
      grad: grad.storage,
      momentumBuf: b.storage,
      n: param.size,
      lr: opts.lr,
      momentum: opts.momentum,
      weightDecay: decay,
      nesterov: opts.nesterov ?? false,
    });
    newParams.set(path, p);
    newBufs.set(path, b);
  }
  return {
    params: mapTree(params, (_t, path) => newParams.get(path)!),
    state: { momentum: mapTree(state.momentum, (_t, path) => newBufs.get(path)!) },
  };
}
