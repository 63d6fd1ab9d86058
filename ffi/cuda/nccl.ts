/**
 * NCCL 2 (`libnccl.so.2`, `nccl.h` of NCCL 2.30) as a Deno FFI symbol table, its loader and status
 * checking. Only the binding: communicator logic lives with the distributed trainer.
 *
 * `ncclCommInitRank` takes the 128-byte `ncclUniqueId` BY VALUE: it is declared as a struct of
 * 16 u64 and passed as a 128-byte `Uint8Array` (what `ncclGetUniqueId` fills). Communicators and
 * streams are pointers, device buffers u64 (bigint), counts `usize`.
 *
 * @module
 */

import { type DiscoveryOptions, type LibraryLocation, openCudaLibrary } from "./discovery.ts";
import { cString, CudaLibraryError } from "./errors.ts";

/** `NCCL_UNIQUE_ID_BYTES`. */
export const NCCL_UNIQUE_ID_BYTES = 128;

/** `ncclUniqueId` as an FFI struct passed by value (`char internal[128]`). */
export const NCCL_UNIQUE_ID = { struct: Array(16).fill("u64") as "u64"[] } as const;

/** Symbols of `libnccl.so.2`. */
export const NCCL_SYMBOLS = {
  ncclGetVersion: { parameters: ["buffer"], result: "i32" },
  ncclGetErrorString: { parameters: ["i32"], result: "pointer" },
  ncclGetUniqueId: { parameters: ["buffer"], result: "i32" },
  ncclCommInitRank: { parameters: ["buffer", "i32", NCCL_UNIQUE_ID, "i32"], result: "i32" },
  ncclCommGetAsyncError: { parameters: ["pointer", "buffer"], result: "i32" },
  ncclCommAbort: { parameters: ["pointer"], result: "i32" },
  ncclCommDestroy: { parameters: ["pointer"], result: "i32" },
  ncclGroupStart: { parameters: [], result: "i32" },
  ncclGroupEnd: { parameters: [], result: "i32" },
  ncclAllReduce: {
    // sendbuff, recvbuff, count, datatype, op, comm, stream
    parameters: ["u64", "u64", "usize", "i32", "i32", "pointer", "pointer"],
    result: "i32",
  },
  ncclAllGather: {
    // sendbuff, recvbuff, sendcount, datatype, comm, stream
    parameters: ["u64", "u64", "usize", "i32", "pointer", "pointer"],
    result: "i32",
  },
  ncclBroadcast: {
    // sendbuff, recvbuff, count, datatype, root, comm, stream
    parameters: ["u64", "u64", "usize", "i32", "i32", "pointer", "pointer"],
    result: "i32",
  },
  ncclReduceScatter: {
    // sendbuff, recvbuff, recvcount, datatype, op, comm, stream
    parameters: ["u64", "u64", "usize", "i32", "i32", "pointer", "pointer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound NCCL functions. */
export type NcclSymbols = Deno.DynamicLibrary<typeof NCCL_SYMBOLS>["symbols"];

/** `ncclResult_t` names by value. */
export const NCCL_RESULT_NAMES: readonly string[] = [
  "ncclSuccess",
  "ncclUnhandledCudaError",
  "ncclSystemError",
  "ncclInternalError",
  "ncclInvalidArgument",
  "ncclInvalidUsage",
  "ncclRemoteError",
  "ncclInProgress",
  "ncclTimeout",
];

/** `ncclDataType_t`. */
export const NCCL_DATA = {
  int32: 2,
  int64: 4,
  float16: 6,
  float32: 7,
  float64: 8,
  bfloat16: 9,
} as const;

/** `ncclRedOp_t`. */
export const NCCL_OP = { sum: 0, prod: 1, max: 2, min: 3, avg: 4 } as const;

/** A loaded NCCL. */
export interface NcclLibrary {
  readonly symbols: NcclSymbols;
  readonly location: LibraryLocation;
  /** `major.minor.patch` from `ncclGetVersion` (e.g. 23007 is 2.30.7). */
  readonly version: string;
  /** Throws a {@link CudaLibraryError} `Cannot <what>: ncclInvalidArgument (...)` unless 0. */
  check(status: number, what: string): void;
  close(): void;
}

/** `2.30.7` from 23007 (NCCL >= 2.9 codes: major * 10000 + minor * 100 + patch). */
export function formatNcclVersion(code: number): string {
  const major = Math.floor(code / 10000);
  return `${major}.${Math.floor((code % 10000) / 100)}.${code % 100}`;
}

/** Loads NCCL (see `discovery.ts`); throws `CudaUnavailableError` when missing. */
export function loadNccl(opts: DiscoveryOptions = {}): NcclLibrary {
  const { lib, location } = openCudaLibrary("nccl", NCCL_SYMBOLS, opts);
  const s = lib.symbols;
  const check = (status: number, what: string): void => {
    if (status === 0) return;
    const name = NCCL_RESULT_NAMES[status] ?? `ncclResult_${status}`;
    throw new CudaLibraryError("nccl", status, name, cString(s.ncclGetErrorString(status)), what);
  };
  const v = new Int32Array(1);
  check(s.ncclGetVersion(v), "read the NCCL version");
  let closed = false;
  return {
    symbols: s,
    location,
    version: formatNcclVersion(v[0]),
    check,
    close(): void {
      if (closed) return;
      closed = true;
      lib.close();
    },
  };
}
