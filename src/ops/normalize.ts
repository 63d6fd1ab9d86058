/**
 * Row-wise L2 normalisation, as `torch.nn.functional.normalize(x, dim=1)`.
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkRank } from "./validate.ts";

/** Options of {@link l2Normalize}. */
export interface L2NormalizeOptions {
  /** Lower bound of the norm a row is divided by (default 1e-12). */
  eps?: number;
}

/** Divides each row of `x` [N, D] by max(||row||_2, eps). */
export function l2Normalize(x: Tensor, opts: L2NormalizeOptions = {}): Tensor {
  const eps = opts.eps ?? 1e-12;
  checkRank("l2Normalize", "input x", x, 2);
  if (!(eps > 0) || !Number.isFinite(eps)) {
    throw new RangeError(`Cannot run l2Normalize: eps is ${eps} but must be a finite number > 0`);
  }
  const [rows, cols] = x.shape;
  const ctx = x.ctx;
  const y = ctx.empty(x.shape);
  x.backend.l2Normalize({ x: x.storage, y: y.storage, rows, cols, eps });
  return record(y, [x], (dy) => {
    const dx = ctx.empty(x.shape);
    x.backend.l2NormalizeBackward({
      x: x.storage,
      dy: dy.storage,
      dx: dx.storage,
      rows,
      cols,
      eps,
    });
    return [dx];
  });
}
