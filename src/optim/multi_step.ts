/**
 * The device work of an SGD or LARS step: copy every parameter and momentum buffer (the step is
 * functional), then one in-place `sgdUpdateMulti` over all the copies. Internal to the optimisers.
 *
 * @module
 */

import type { LarsSettings } from "../backend/backend.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { mapTree, type TensorTree } from "../tensor/tree.ts";
import { cloneTree } from "../tensor/tree.ts";
import { matchSlots, type ParamSlot } from "./params.ts";
import type { OptimizerStep, SgdOptions, SgdState } from "./sgd.ts";

/**
 * Copies every parameter and momentum buffer, then runs one `sgdUpdateMulti` over the copies
 * (with `lars`: its per-tensor adaptation flags are computed from `slots`' paths).
 */
export function multiStep<P extends TensorTree>(
  what: string,
  params: P,
  grads: P,
  state: SgdState<P>,
  opts: SgdOptions,
  lars: ((slots: ParamSlot[]) => LarsSettings) | null,
): OptimizerStep<P, SgdState<P>> {
  const slots = matchSlots(what, params, grads, state.momentum);
  const newParams = new Map<string, Tensor>();
  const newBufs = new Map<string, Tensor>();
  for (const { path, param, buf } of slots) {
    newParams.set(path, cloneTree(param));
    newBufs.set(path, cloneTree(buf));
  }
  if (slots.length > 0) {
    slots[0].param.backend.sgdUpdateMulti({
      params: slots.map((s) => newParams.get(s.path)!.storage),
      grads: slots.map((s) => s.grad.storage),
      momentumBufs: slots.map((s) => newBufs.get(s.path)!.storage),
      lr: opts.lr,
      momentum: opts.momentum,
      weightDecay: slots.map((s) => (opts.exclude?.(s.path, s.param) ? 0 : opts.weightDecay)),
      nesterov: opts.nesterov ?? false,
      lars: lars?.(slots) ?? null,
    });
  }
  return {
    params: mapTree(params, (_t, path) => newParams.get(path)!),
    state: { momentum: mapTree(state.momentum, (_t, path) => newBufs.get(path)!) },
  };
}
