/**
 * Storage of the cpu backend: an aligned host buffer plus the layout its bytes are in. `md` null
 * means plain (dense row-major, the logical layout); otherwise `md` is the oneDNN layout (e.g.
 * nChw16c) of the same logical elements. The buffer is allocated lazily, on first write, so a
 * kernel can allocate it in whatever layout it produces.
 *
 * @module
 */

import type { Backend, DType, HostArray, Storage } from "../backend.ts";
import { DataType } from "../../../ffi/dnnl/mod.ts";
import type { Buffer } from "./buffers.ts";
import type { MemDesc } from "./memdesc.ts";

/** Bytes per element of each dtype. */
export const ELEMENT_BYTES: Readonly<Record<DType, number>> = Object.freeze({
  f32: 4,
  bf16: 2,
  i32: 4,
  u8: 1,
});

/** The `dnnl_data_type_t` of each dtype. */
export const DNNL_DATA_TYPE: Readonly<Record<DType, number>> = Object.freeze({
  f32: DataType.f32,
  bf16: DataType.bf16,
  i32: DataType.s32,
  u8: DataType.u8,
});

/** The dtype whose elements a `dnnl_data_type_t` describes (temporaries such as workspaces). */
export function dtypeOfDataType(dataType: number): DType {
  for (const [dtype, dt] of Object.entries(DNNL_DATA_TYPE)) {
    if (dt === dataType) return dtype as DType;
  }
  throw new Error(`Cannot hold oneDNN data type ${dataType} in a cpu storage`);
}

/** The typed view of a buffer that matches `dtype` (bf16 as its raw `Uint16Array` bits). */
export function viewOf(buf: Buffer, dtype: DType): HostArray {
  switch (dtype) {
    case "f32":
      return buf.f32;
    case "bf16":
      return buf.u16;
    case "i32":
      return buf.i32;
    case "u8":
      return buf.u8;
  }
}

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
  /**
   * Known to hold no NaN (set by a scan or by a kernel whose output cannot hold NaN; cleared
   * whenever the storage may be written, see `runtime.ts` and `nan.ts`). False means unknown.
   */
  nanFree = false;

  constructor(backend: Backend, dtype: DType, length: number) {
    this.backend = backend;
    this.dtype = dtype;
    this.length = length;
  }

  /** Bytes the plain layout needs. */
  get plainBytes(): number {
    return this.length * ELEMENT_BYTES[this.dtype];
  }

  /** The `dnnl_data_type_t` of the elements. */
  get dataType(): number {
    return DNNL_DATA_TYPE[this.dtype];
  }
}
