/**
 * Host-array helpers every backend shares: the typed array that holds each storage dtype on the
 * host (what `upload` takes and `download` returns), and the dtype a given host array holds.
 * Backend-neutral (no storage of any backend here): `reference/` keeps its storages in these arrays,
 * `cpu/` and `cuda/` use them for `upload`/`download`.
 *
 * @module
 */

import type { DType, HostArray } from "./backend.ts";

/** A zeroed host array of `length` elements of `dtype` (bf16 as a `Uint16Array` of raw bits). */
export function allocHostArray(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(length);
    case "bf16":
      return new Uint16Array(length);
    case "u8":
      return new Uint8Array(length);
    case "i32":
      return new Int32Array(length);
    default:
      throw new TypeError(`Cannot allocate storage of dtype '${dtype}': use f32, bf16, u8 or i32`);
  }
}

/** The dtype a host array holds (`Uint16Array` holds bf16 bits). */
export function hostArrayDType(a: HostArray): DType {
  if (a instanceof Float32Array) return "f32";
  if (a instanceof Uint16Array) return "bf16";
  if (a instanceof Uint8Array) return "u8";
  if (a instanceof Int32Array) return "i32";
  throw new TypeError(
    `Cannot use a host array of type ${
      (a as object)?.constructor?.name ?? typeof a
    }: use Float32Array, Uint16Array (bf16), Uint8Array or Int32Array`,
  );
}
