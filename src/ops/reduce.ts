/**
 * Full reductions to a scalar tensor of shape []: `sum` and `mean`.
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkF32 } from "./validate.ts";

/** alpha * sum of all elements, with the gradient alpha * dy broadcast to x's shape. */
function scaledSum(x: Tensor, alpha: number): Tensor {
  const ctx = x.ctx;
  const y = ctx.empty([]);
  x.backend.sum({ x: x.storage, out: y.storage, alpha, n: x.size });
  return record(y, [x], (dy) => {
    const dx = ctx.empty(x.shape);
    x.backend.broadcastScalar({ s: dy.storage, out: dx.storage, alpha, n: x.size });
    return [dx];
  });
}

/** Sum of all elements of `x`, as a tensor of shape []. */
export function sum(x: Tensor): Tensor {
  checkF32("sum", "input x", x);
  return scaledSum(x, 1);
}

/** Mean of all elements of `x`, as a tensor of shape []; `x` must not be empty. */
export function mean(x: Tensor): Tensor {
  checkF32("mean", "input x", x);
  if (x.size === 0) {
    throw new RangeError(`Cannot run mean: the input of shape [${x.shape}] has no elements`);
  }
  return scaledSum(x, 1 / x.size);
}
