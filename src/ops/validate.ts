/**
 * Argument checks shared by the ops: dtype, rank, same context, and equal shapes, each failing with
 * a message that names the op, the argument and what was expected.
 *
 * @module
 */

import type { Tensor } from "../tensor/tensor.ts";

/** Formats a shape as `[2,3,4]` for error messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}

/** Throws unless `t` is an f32 tensor that is still alive. */
export function checkF32(op: string, name: string, t: Tensor): void {
  t.assertAlive();
  if (t.dtype !== "f32") {
    throw new TypeError(`Cannot run ${op}: ${name} has dtype ${t.dtype} but ${op} needs f32`);
  }
}

/** Throws unless `t` is an f32 tensor of rank `rank`. */
export function checkRank(op: string, name: string, t: Tensor, rank: number): void {
  checkF32(op, name, t);
  if (t.rank !== rank) {
    throw new RangeError(
      `Cannot run ${op}: ${name} has shape ${fmtShape(t.shape)} (rank ${t.rank}) but ${op} ` +
        `expects rank ${rank}`,
    );
  }
}

/** Throws unless every tensor belongs to the context of the first one. */
export function checkSameContext(op: string, tensors: readonly Tensor[]): void {
  const ctx = tensors[0].ctx;
  for (const t of tensors) {
    if (t.ctx !== ctx) {
      throw new Error(
        `Cannot run ${op}: its inputs belong to different contexts (backends ${ctx.backend.name} ` +
          `and ${t.ctx.backend.name}); move them to one context first`,
      );
    }
  }
}

/** Throws unless `a` and `b` have the same shape. */
export function checkSameShape(op: string, a: Tensor, b: Tensor): void {
  const same = a.rank === b.rank && a.shape.every((d, i) => d === b.shape[i]);
  if (!same) {
    throw new RangeError(
      `Cannot run ${op}: shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)} differ ` +
        `(${op} does not broadcast)`,
    );
  }
}

/** Throws unless `v` is an integer >= `min`. */
export function checkInt(op: string, name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`Cannot run ${op}: ${name} is ${v} but must be an integer >= ${min}`);
  }
}

/** Throws unless `v` is a finite number. */
export function checkFinite(op: string, name: string, v: number): void {
  if (!Number.isFinite(v)) {
    throw new RangeError(`Cannot run ${op}: ${name} is ${v} but must be a finite number`);
  }
}
