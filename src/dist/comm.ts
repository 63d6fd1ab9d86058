/**
 * The `Comm` contract: the collectives data-parallel training needs, on host typed arrays, over a
 * fixed group of processes (the world). Implementations: `single` (one process, no library) and
 * `mpi` (OpenMPI or MPICH through FFI). Collectives on device memory are a separate contract,
 * `DeviceComm` (`device_comm.ts`), so that a GPU communicator (NCCL) need not fake host arrays.
 *
 * Rules every implementation follows:
 * - Every rank calls the same collectives in the same order with matching sizes and dtypes.
 * - Collectives block the calling thread until done; `allreduceStart` returns at once and its
 *   request completes later (buffers must stay untouched until `wait` returns).
 * - No collective waits forever: a collective that does not complete within the timeout ends the
 *   whole job (`abort`) with a message naming this rank and the collective.
 * - `abort` ends every rank of the job with a non-zero status; it never returns.
 *
 * @module
 */

import type { LaunchInfo } from "./launch.ts";

/** Reductions: `avg` is `sum` divided by the size (float arrays only). */
export type ReduceOp = "sum" | "avg" | "max" | "min";

/** Arrays `allreduce` accepts (reduced element-wise in place). */
export type ReduceArray = Float32Array | Float64Array | Int32Array;

/** Arrays `allgather` and `broadcast` accept (bf16 bits travel as `Uint16Array`, images as u8). */
export type CommArray = Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array;

/** A started collective. */
export interface CommRequest {
  /** Whether it has completed; calling it also drives the library's progress. */
  test(): boolean;
  /** Blocks until it completes (or the timeout ends the job); applies `avg`'s division. */
  wait(): void;
}

/** A group of processes and the collectives over it. */
export interface Comm extends Disposable {
  /** Which implementation this is. */
  readonly kind: "single" | "mpi";
  /** This process's rank, 0 ≤ rank < size. */
  readonly rank: number;
  /** Number of processes. */
  readonly size: number;
  /** Rank among the processes on this node (picks a GPU, splits CPU threads). */
  readonly localRank: number;
  /** Number of processes on this node. */
  readonly localSize: number;
  /** What the launcher said about this process. */
  readonly launch: LaunchInfo;
  /** A one-line description (`mpi openmpi (Open MPI v4.1.4, …) rank 1 of 2`). */
  readonly description: string;
  /** Reduces `buf` element-wise across ranks, in place (default `sum`). */
  allreduce(buf: ReduceArray, op?: ReduceOp): void;
  /**
   * Starts an in-place allreduce and returns at once, so that computation can overlap the
   * exchange (gradient buckets); `buf` must not be read or written until `wait` returns.
   */
  allreduceStart(buf: ReduceArray, op?: ReduceOp): CommRequest;
  /**
   * Concatenates every rank's `send` (equal lengths) in rank order into `result`
   * (`size * send.length` elements of the same type, allocated when omitted) and returns it.
   * `send` may be this rank's own block of `result` (in place); any other overlap is refused.
   */
  allgather<T extends CommArray>(send: T, result?: T): T;
  /** Copies `buf` of rank `root` (default 0) into `buf` of every rank. */
  broadcast(buf: CommArray, root?: number): void;
  /** Returns once every rank has called it. */
  barrier(): void;
  /**
   * Ends the whole job: prints `message` with this rank to stderr and stops every rank with
   * status `code` (1..255; other values become 1). Never returns.
   */
  abort(code: number, message: string): never;
  /** Waits for every rank (bounded by the timeout), then releases the library. Idempotent. */
  dispose(): void;
}

/** Thrown by a collective that failed (bad arguments, an MPI error): names rank and collective. */
export class CommError extends Error {
  /** An error with `message` (which already names the rank and the collective). */
  constructor(message: string) {
    super(message);
    this.name = "CommError";
  }
}

/** `rank 1 of 2` (used at the start of every message a communicator prints). */
export function rankLabel(comm: { rank: number; size: number }): string {
  return `rank ${comm.rank} of ${comm.size}`;
}

/** The exit status `abort` uses for `code`: an integer in 1..255, else 1. */
export function abortStatus(code: number): number {
  return Number.isInteger(code) && code >= 1 && code <= 255 ? code : 1;
}

/** The dtype name of an array `Comm` accepts (`Float32Array` → `f32`), for messages and MPI. */
export function arrayDtype(a: CommArray): "f32" | "f64" | "i32" | "u8" | "u16" {
  if (a instanceof Float32Array) return "f32";
  if (a instanceof Float64Array) return "f64";
  if (a instanceof Int32Array) return "i32";
  if (a instanceof Uint8Array) return "u8";
  if (a instanceof Uint16Array) return "u16";
  throw new CommError(
    `Cannot communicate a ${
      (a as object)?.constructor?.name ?? typeof a
    }: use a Float32Array, Float64Array, Int32Array, Uint8Array or Uint16Array`,
  );
}
