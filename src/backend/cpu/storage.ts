/**
 * Storage of the cpu backend: an aligned host buffer plus the layout its bytes are in. `md` null
 * means plain (dense row-major, the logical layout); otherwise `md` is the oneDNN layout (e.g.
 * nChw16c) of the same logical elements. The buffer is allocated lazily, on first write, so a
 * kernel can allocate it in whatever layout it produces.
 *
 * @module
 */

import type { Backend, DType, Storage } from "../backend.ts";
import type { Buffer } from "./buffers.ts";
import type { MemDesc } from "./memdesc.ts";

/** Bytes per element of each dtype. */
export const ELEMENT_BYTES: Readonly<Record<DType, number>> = Object.freeze({
  f32: 4,
  i32: 4,
  u8: 1,
});

/** A storage of the cpu backend. */
export class CpuStorage implements Storage {
  /** The backend that allocated this storage. */
  readonly backend: Backend;
  /** Element type. */
  readonly dtype: DType;
  /** Number of logical elements. */
  readonly length: number;
  /** The bytes, or null before the first write. */
  buf: Buffer | null = null;
  /** The layout of `buf`: null for plain, else a blocked oneDNN layout of `length` elements. */
  md: MemDesc | null = null;
  /** Whether `free` has released this storage. */
  freed = false;

  constructor(backend: Backend, dtype: DType, length: number) {
    this.backend = backend;
    this.dtype = dtype;
    this.length = length;
  }

  /** Bytes the plain layout needs. */
  get plainBytes(): number {
    return this.length * ELEMENT_BYTES[this.dtype];
  }
}
