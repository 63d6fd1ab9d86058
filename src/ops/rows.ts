/**
 * Rows of a batch: `sliceRows` (a contiguous range of the first dimension) and `concatRows`
 * (batches stacked along the first dimension). Both copy on the device (one backend `copy` per
 * piece, no host round trip) and are differentiable: the gradient of a slice is `dy` placed into
 * zeros, the gradient of a concatenation is the matching slice of `dy` for each input.
 *
 * A slice of every row, and a concatenation of one tensor, share the input's storage instead of
 * copying (tensors are immutable, so no caller can tell).
 *
 * @module
 */

import { record } from "../tensor/autodiff.ts";
import type { Context, Tensor } from "../tensor/tensor.ts";
import { checkSameContext, fmtShape } from "./validate.ts";

/** Elements per row of `x` (the product of every dimension after the first). */
function rowSize(x: Tensor): number {
  let n = 1;
  for (let i = 1; i < x.rank; i++) n *= x.shape[i];
  return n;
}

/** Copies rows `[from, from + count)` of `src` into `dst` starting at row `at` (same row size). */
function copyRows(src: Tensor, dst: Tensor, from: number, count: number, at: number): void {
  const cols = rowSize(src);
  if (count === 0 || cols === 0) return;
  src.backend.copy({
    src: src.storage,
    dst: dst.storage,
    srcOffset: from * cols,
    dstOffset: at * cols,
    length: count * cols,
  });
}

function checkHasRows(op: string, name: string, x: Tensor): void {
  x.assertAlive();
  if (x.rank < 1) {
    throw new RangeError(`Cannot run ${op}: ${name} is a scalar (shape []); it needs rows`);
  }
}

/** Rows `start..end-1` of `x` without autodiff (the slice's values). */
function slice(ctx: Context, x: Tensor, start: number, end: number): Tensor {
  if (start === 0 && end === x.shape[0]) return ctx.view(x, x.shape);
  const y = ctx.empty([end - start, ...x.shape.slice(1)], x.dtype);
  copyRows(x, y, start, end - start, 0);
  return y;
}

/**
 * Rows `start` (inclusive) to `end` (exclusive) of `x` [N, ...]: a tensor [end - start, ...] of
 * `x`'s dtype. Requires integers 0 <= start <= end <= N. Differentiable in `x`.
 *
 * ```ts
 * const chunk = sliceRows(features, 256, 512); // rows 256..511
 * ```
 */
export function sliceRows(x: Tensor, start: number, end: number): Tensor {
  checkHasRows("sliceRows", "input x", x);
  const n = x.shape[0];
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > n || start > end) {
    throw new RangeError(
      `Cannot run sliceRows: rows ${start}..${end} are not a range of the ${n} rows of ` +
        `${fmtShape(x.shape)}; need integers 0 <= start <= end <= ${n}`,
    );
  }
  const ctx = x.ctx;
  const y = slice(ctx, x, start, end);
  return record(y, [x], (dy) => {
    if (start === 0 && end === n) return [dy];
    const dx = ctx.zeros(x.shape, dy.dtype);
    copyRows(dy, dx, 0, end - start, start);
    return [dx];
  });
}

/**
 * The rows of every tensor of `xs`, in order: [N1 + N2 + ..., ...]. All inputs must have the same
 * dtype, context and dimensions after the first. Differentiable in each input.
 *
 * ```ts
 * const all = concatRows([batch0Features, batch1Features]);
 * ```
 */
export function concatRows(xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) {
    throw new RangeError("Cannot run concatRows: no tensors given; pass at least one");
  }
  xs.forEach((x, i) => checkHasRows("concatRows", `input ${i}`, x));
  checkSameContext("concatRows", xs);
  const [first] = xs;
  const tail = first.shape.slice(1);
  xs.forEach((x, i) => {
    const same = x.rank === first.rank && tail.every((d, j) => d === x.shape[j + 1]);
    if (!same) {
      throw new RangeError(
        `Cannot run concatRows: input ${i} has shape ${fmtShape(x.shape)} but input 0 has ` +
          `${fmtShape(first.shape)}; every dimension after the first must match`,
      );
    }
    if (x.dtype !== first.dtype) {
      throw new TypeError(
        `Cannot run concatRows: input ${i} has dtype ${x.dtype} but input 0 has ${first.dtype}`,
      );
    }
  });
  const ctx = first.ctx;
  if (xs.length === 1) return record(ctx.view(first, first.shape), [first], (dy) => [dy]);
  const rows = xs.map((x) => x.shape[0]);
  const starts = rows.map((_, i) => rows.slice(0, i).reduce((a, b) => a + b, 0));
  const total = starts[xs.length - 1] + rows[xs.length - 1];
  const y = ctx.empty([total, ...tail], first.dtype);
  xs.forEach((x, i) => copyRows(x, y, 0, rows[i], starts[i]));
  return record(y, xs, (dy) => xs.map((_, i) => slice(ctx, dy, starts[i], starts[i] + rows[i])));
}
