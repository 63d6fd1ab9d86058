/**
 * Argument checks shared by every `Comm` implementation, so that `single` refuses exactly what
 * `mpi` refuses (a program that runs on one process runs on many).
 *
 * @module
 */

import {
  arrayDtype,
  type CommArray,
  CommError,
  rankLabel,
  type ReduceArray,
  type ReduceOp,
} from "./comm.ts";

const OPS: readonly ReduceOp[] = ["sum", "avg", "max", "min"];

interface Who {
  readonly rank: number;
  readonly size: number;
}

/** Checks an allreduce's arguments; returns the dtype. */
export function checkReduce(who: Who, buf: ReduceArray, op: ReduceOp): "f32" | "f64" | "i32" {
  const dtype = arrayDtype(buf);
  if (dtype !== "f32" && dtype !== "f64" && dtype !== "i32") {
    throw new CommError(
      `${rankLabel(who)}: cannot allreduce a ${buf.constructor.name}: use a Float32Array, ` +
        `Float64Array or Int32Array (u8/u16 data can only be gathered or broadcast)`,
    );
  }
  if (!OPS.includes(op)) {
    throw new CommError(`${rankLabel(who)}: unknown reduction '${op}': use ${OPS.join(", ")}`);
  }
  if (op === "avg" && dtype === "i32") {
    throw new CommError(
      `${rankLabel(who)}: cannot average an Int32Array (the mean is not an integer): ` +
        `reduce with 'sum' and divide, or use a float array`,
    );
  }
  return dtype;
}

/** Divides every element by `size` (the `avg` of a summed buffer). */
export function divideBySize(buf: ReduceArray, size: number): void {
  if (size === 1) return;
  for (let i = 0; i < buf.length; i++) buf[i] /= size;
}

/** What an allgather does once its arguments are checked. */
export interface GatherPlan<T extends CommArray> {
  /** The result array (given or allocated). */
  result: T;
  /** Whether `send` is this rank's own block of `result`. */
  inPlace: boolean;
}

/** Checks an allgather's arguments and allocates the result where it is omitted. */
export function checkGather<T extends CommArray>(who: Who, send: T, result?: T): GatherPlan<T> {
  arrayDtype(send);
  const n = send.length;
  const want = n * who.size;
  if (result === undefined) {
    const ctor = send.constructor as new (length: number) => T;
    return { result: new ctor(want), inPlace: false };
  }
  if (result.constructor !== send.constructor) {
    throw new CommError(
      `${rankLabel(who)}: allgather of a ${send.constructor.name} into a ` +
        `${result.constructor.name}: the result must have the same type`,
    );
  }
  if (result.length !== want) {
    throw new CommError(
      `${
        rankLabel(who)
      }: allgather of ${n} elements per rank needs a result of ${who.size} × ${n} ` +
        `= ${want} elements, got ${result.length}`,
    );
  }
  if (send.buffer !== result.buffer) return { result, inPlace: false };
  const own = result.byteOffset + who.rank * send.byteLength;
  if (send.byteOffset === own) return { result, inPlace: true };
  const sendEnd = send.byteOffset + send.byteLength;
  const resultEnd = result.byteOffset + result.byteLength;
  if (send.byteOffset < resultEnd && result.byteOffset < sendEnd) {
    throw new CommError(
      `${rankLabel(who)}: allgather's send array overlaps its result but is not this rank's ` +
        `block (elements ${who.rank * n}..${(who.rank + 1) * n}): use a separate array or ` +
        `result.subarray(${who.rank * n}, ${(who.rank + 1) * n})`,
    );
  }
  return { result, inPlace: false };
}

/** Checks a broadcast's root and array. */
export function checkBroadcast(who: Who, buf: CommArray, root: number): void {
  arrayDtype(buf);
  if (!Number.isInteger(root) || root < 0 || root >= who.size) {
    throw new CommError(
      `${rankLabel(who)}: broadcast root ${root} is not a rank of this job (0..${who.size - 1})`,
    );
  }
}
