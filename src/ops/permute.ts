/**
 * Row permutation of a batch: `permuteRows` (the teacher's batch shuffle and its undo).
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Context, Tensor } from "../tensor/tensor.ts";
import { checkF32 } from "./validate.ts";

/** Throws unless `perm` holds each of 0..n-1 exactly once; returns its inverse. */
function invertPermutation(perm: Int32Array, n: number): Int32Array {
  if (perm.length !== n) {
    throw new RangeError(
      `Cannot run permuteRows: the permutation has ${perm.length} entries but the input has ${n} rows`,
    );
  }
  const inverse = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const p = perm[i];
    if (p < 0 || p >= n || inverse[p] !== -1) {
      throw new RangeError(
        `Cannot run permuteRows: perm[${i}] = ${p} is ${
          p < 0 || p >= n ? `outside 0..${n - 1}` : "repeated"
        }; perm must be a permutation of 0..${n - 1}`,
      );
    }
    inverse[p] = i;
  }
  return inverse;
}

/** y[i, :] = x[index[i], :] for `x` viewed as [rows, cols]. */
function gather(ctx: Context, x: Tensor, index: Int32Array): Tensor {
  const rows = x.shape[0];
  const cols = rows === 0 ? 0 : x.size / rows;
  const y = ctx.empty(x.shape);
  const idx = ctx.fromArray(index, [rows], "i32");
  try {
    x.backend.gatherRows({ x: x.storage, index: idx.storage, y: y.storage, rows, cols });
  } finally {
    idx.dispose();
  }
  return y;
}

/**
 * Reorders the rows (first dimension) of `x`: y[i] = x[perm[i]]. `perm` must be a permutation of
 * 0..N-1; the gradient applies the inverse permutation.
 */
export function permuteRows(x: Tensor, perm: Int32Array): Tensor {
  checkF32("permuteRows", "input x", x);
  if (x.rank < 1) {
    throw new RangeError("Cannot run permuteRows: the input is a scalar (shape []); it needs rows");
  }
  const inverse = invertPermutation(perm, x.shape[0]);
  const ctx = x.ctx;
  const y = gather(ctx, x, perm);
  return record(y, [x], (dy) => [gather(ctx, dy, inverse)]);
}
