/**
 * Storage of the reference backend: a host typed array plus the bookkeeping every kernel checks
 * (owning backend, dtype, freed flag).
 *
 * @module
 */

import type { Backend, DType, HostArray, Storage } from "../backend.ts";

/** A storage of the reference backend: a typed array on the host. */
export class ReferenceStorage implements Storage {
  /** The backend that allocated this storage. */
  readonly backend: Backend;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  /** The elements (Float32Array for f32, Uint8Array for u8, Int32Array for i32). */
  readonly data: HostArray;
  /** Whether `free` has released this storage. */
  freed = false;

  constructor(backend: Backend, dtype: DType, length: number) {
    this.backend = backend;
    this.dtype = dtype;
    this.length = length;
    this.data = allocHostArray(dtype, length);
  }
}

/** A zeroed host array of `length` elements of `dtype`. */
export function allocHostArray(dtype: DType, length: number): HostArray {
  switch (dtype) {
    case "f32":
      return new Float32Array(length);
    case "u8":
      return new Uint8Array(length);
    case "i32":
      return new Int32Array(length);
    default:
      throw new TypeError(`Cannot allocate storage of dtype '${dtype}': use f32, u8 or i32`);
  }
}

/** The dtype a host array holds. */
export function hostArrayDType(a: HostArray): DType {
  if (a instanceof Float32Array) return "f32";
  if (a instanceof Uint8Array) return "u8";
  if (a instanceof Int32Array) return "i32";
  throw new TypeError(
    `Cannot use a host array of type ${
      (a as object)?.constructor?.name ?? typeof a
    }: use Float32Array, Uint8Array or Int32Array`,
  );
}
