/**
 * Activations: `relu`.
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkF32 } from "./validate.ts";

/** max(x, 0) elementwise; the gradient is dy where the output is positive, else 0. */
export function relu(x: Tensor): Tensor {
  checkF32("relu", "x", x);
  const y = x.ctx.empty(x.shape);
  x.backend.relu({ x: x.storage, y: y.storage, n: x.size });
  return record(y, [x], (dy) => {
    const dx = x.ctx.empty(x.shape);
    x.backend.reluBackward({ y: y.storage, dy: dy.storage, dx: dx.storage, n: x.size });
    return [dx];
  });
}
