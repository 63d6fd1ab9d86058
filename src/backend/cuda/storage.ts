/**
 * Storage of the cuda backend: a device address (from the backend's caching allocator) holding
 * `length` elements of `dtype` in the contract's logical layout (dense row-major, NCHW for images).
 *
 * A storage may also carry a `shadow`: the host values of its last whole upload, kept for small f32
 * and i32 storages only, and dropped as soon as anything else writes the storage. Kernels whose
 * arguments come from the host and must be checked before the device trusts them (the crop boxes
 * of `augmentViews`, the row indices of `gatherRows`) check the shadow instead of downloading the
 * storage, which would synchronise the stream.
 *
 * @module
 */

import type { Backend, DType, KernelName, Opts, Storage } from "../backend.ts";
import { KERNEL_NAMES, kernelSpec } from "../kernels.ts";

/** Bytes per element of each dtype. */
export const ELEMENT_BYTES: Readonly<Record<DType, number>> = Object.freeze({
  f32: 4,
  bf16: 2,
  i32: 4,
  u8: 1,
});

/** Storages of at most this many elements keep a host shadow of their last whole upload. */
export const SHADOW_MAX_ELEMENTS = 1 << 16;

/** A storage of the cuda backend. */
export class CudaStorage implements Storage {
  /** The backend that allocated this storage. */
  readonly backend: Backend;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly length: number;
  /** The device address (0n for an empty storage, which owns no device memory). */
  readonly ptr: bigint;
  /** The same address as a number (exact: user-space addresses are below 2^53), for fast keys. */
  readonly addr: number;
  /** Whether `free` has released it. */
  freed = false;
  /** The host values of the last whole upload while nothing else has written the storage. */
  shadow: Float32Array | Int32Array | null = null;

  constructor(backend: Backend, dtype: DType, length: number, ptr: bigint) {
    this.backend = backend;
    this.dtype = dtype;
    this.length = length;
    this.ptr = ptr;
    this.addr = Number(ptr);
  }

  /** Bytes of its elements. */
  get bytes(): number {
    return this.length * ELEMENT_BYTES[this.dtype];
  }

  /** The device address of element `index`. */
  at(index: number): bigint {
    return this.ptr + BigInt(index * ELEMENT_BYTES[this.dtype]);
  }
}

/** The {@link CudaStorage} behind a storage the validator has accepted for this backend. */
export function cu(s: Storage): CudaStorage {
  return s as CudaStorage;
}

/** The device address of an optional storage, 0n when absent (a NULL kernel argument). */
export function ptrOrNull(s: Storage | null | undefined): bigint {
  return s ? (s as CudaStorage).ptr : 0n;
}

/** For each kernel of the table, the storage arguments (and lists) it writes. */
const WRITES: Readonly<Record<string, { args: string[]; lists: string[] }>> = Object.fromEntries(
  KERNEL_NAMES.map((k) => {
    const s = kernelSpec(k);
    return [k, {
      args: [...Object.keys(s.outputs), ...Object.keys(s.inouts ?? {})],
      lists: [...Object.keys(s.lists?.outputs ?? {}), ...Object.keys(s.lists?.inouts ?? {})],
    }];
  }),
);

/** Drops the shadow of every storage a (validated) call of `kernel` writes. */
export function dropShadows<K extends KernelName>(kernel: K, o: Opts<K>): void {
  const rec = o as unknown as Record<string, Storage | Storage[] | null | undefined>;
  const writes = WRITES[kernel];
  for (const a of writes.args) {
    const s = rec[a] as CudaStorage | null | undefined;
    if (s) s.shadow = null;
  }
  for (const l of writes.lists) for (const s of rec[l] as CudaStorage[]) s.shadow = null;
}
