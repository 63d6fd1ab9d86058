/**
 * Storage of the reference backend: a host typed array plus the bookkeeping the kernel validator
 * checks (owning backend, dtype, freed flag), and the typed views the kernels compute on.
 *
 * @module
 */

import type { Backend, DType, HostArray, Storage } from "../backend.ts";
import { bf16ToF32, f64ToBf16 } from "../bf16.ts";
import { allocHostArray } from "../host.ts";

/** A storage of the reference backend: a typed array on the host. */
export class ReferenceStorage implements Storage {
  /** The backend that allocated this storage. */
  readonly backend: Backend;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  /** The elements (Float32Array f32, Uint16Array bf16 bits, Uint8Array u8, Int32Array i32). */
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

/** The typed array behind a storage the validator has accepted. */
export function dataOf(s: Storage): HostArray {
  return (s as ReferenceStorage).data;
}

/** The values a kernel reads from a float storage: the f32 array itself, or bf16 widened (exact). */
export function readFloat(s: Storage): Float32Array {
  const d = dataOf(s);
  if (d instanceof Float32Array) return d;
  const out = new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) out[i] = bf16ToF32(d[i]);
  return out;
}

/**
 * Runs `compute` on an array the kernel writes its results to, then stores them in `s`: an f32
 * storage is written directly (each f64 result rounded once to f32); a bf16 storage gets an f64
 * scratch array (holding the current values, for kernels that accumulate into their output) whose
 * values are then rounded once to bf16.
 */
export function writeFloat(s: Storage, compute: (out: Float32Array | Float64Array) => void): void {
  const d = dataOf(s);
  if (d instanceof Float32Array) {
    compute(d);
    return;
  }
  const bits = d as Uint16Array;
  const tmp = new Float64Array(bits.length);
  for (let i = 0; i < bits.length; i++) tmp[i] = bf16ToF32(bits[i]);
  compute(tmp);
  for (let i = 0; i < bits.length; i++) bits[i] = f64ToBf16(tmp[i]);
}

/** The f32 array of a storage the table only allows as f32. */
export function f32Of(s: Storage): Float32Array {
  return dataOf(s) as Float32Array;
}
