/**
 * Shape changes that share storage: `reshape` and `flatten` (views; the gradient is reshaped back).
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import { shapeSize, type Tensor } from "../tensor/tensor.ts";
import { fmtShape } from "./validate.ts";

/** Resolves one optional -1 dimension of `shape` against `size`, or throws. */
function resolveShape(x: Tensor, shape: readonly number[]): number[] {
  const inferred = shape.filter((d) => d === -1).length;
  if (inferred > 1) {
    throw new RangeError(
      `Cannot reshape ${fmtShape(x.shape)} to ${fmtShape(shape)}: at most one dimension may be -1`,
    );
  }
  for (const d of shape) {
    if (d !== -1 && (!Number.isInteger(d) || d < 0)) {
      throw new RangeError(
        `Cannot reshape ${fmtShape(x.shape)} to ${fmtShape(shape)}: dimensions must be integers ` +
          `>= 0 (or one -1)`,
      );
    }
  }
  const known = shapeSize(shape.filter((d) => d !== -1));
  const out = shape.map((d) => (d === -1 ? (known === 0 ? 0 : x.size / known) : d));
  if (shapeSize(out) !== x.size || out.some((d) => !Number.isInteger(d))) {
    throw new RangeError(
      `Cannot reshape ${fmtShape(x.shape)} (${x.size} elements) to ${fmtShape(shape)}: ` +
        `the sizes differ`,
    );
  }
  return out;
}

/**
 * The elements of `x` with another shape of the same size (row-major order kept); one dimension
 * may be -1 and is inferred. The result shares `x`'s storage.
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  x.assertAlive();
  const target = resolveShape(x, shape);
  const y = x.ctx.view(x, target);
  return record(y, [x], (dy) => [dy.ctx.view(dy, x.shape)]);
}

/** `x` [N, ...] as a matrix [N, rest] (a view). */
export function flatten(x: Tensor): Tensor {
  x.assertAlive();
  if (x.rank < 1) {
    throw new RangeError(
      "Cannot run flatten: the input is a scalar (shape []); it needs rank >= 1",
    );
  }
  const n = x.shape[0];
  return reshape(x, [n, shapeSize(x.shape.slice(1))]);
}
