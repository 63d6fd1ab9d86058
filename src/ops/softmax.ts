/**
 * Row-wise `softmax` and `logSoftmax` of a [N, D] matrix (numerically stable, max-shifted).
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkRank } from "./validate.ts";

/** exp(x - max) / sum(exp(x - max)) along each row of `x` [N, D]. */
export function softmax(x: Tensor): Tensor {
  checkRank("softmax", "input x", x, 2);
  const [rows, cols] = x.shape;
  const ctx = x.ctx;
  const y = ctx.empty(x.shape);
  x.backend.softmax({ x: x.storage, y: y.storage, rows, cols });
  return record(y, [x], (dy) => {
    const dx = ctx.empty(x.shape);
    x.backend.softmaxBackward({ y: y.storage, dy: dy.storage, dx: dx.storage, rows, cols });
    return [dx];
  });
}

/** x - max - log(sum(exp(x - max))) along each row of `x` [N, D]. */
export function logSoftmax(x: Tensor): Tensor {
  checkRank("logSoftmax", "input x", x, 2);
  const [rows, cols] = x.shape;
  const ctx = x.ctx;
  const y = ctx.empty(x.shape);
  x.backend.logSoftmax({ x: x.storage, y: y.storage, rows, cols });
  return record(y, [x], (dy) => {
    const dx = ctx.empty(x.shape);
    x.backend.logSoftmaxBackward({ y: y.storage, dy: dy.storage, dx: dx.storage, rows, cols });
    return [dx];
  });
}
