/**
 * How many OpenMP threads each oneDNN primitive of the cpu backend runs on: a pure function of its
 * kind, the size of its data and the backend's tuning, fixed when the primitive is created.
 *
 * Why fewer than all: every multi-threaded primitive is an OpenMP parallel region whose threads
 * meet at barriers. When the cores are shared with other processes, a thread that reaches a barrier
 * waits until its partner has been scheduled again, so a primitive of a few microseconds of work
 * can cost a scheduler time slice (milliseconds). Small primitives gain nothing from a second
 * thread (fork, join and cache traffic cost more than the work), and oneDNN 2.6.3's batch norm
 * (`bnorm_jit`) spins inside its JIT code at two or three barriers per call, which under load made
 * a 2-thread batch norm 50x slower than the same work on one thread (docs/benchmarks.md).
 *
 * @module
 */

import type { CpuRuntime } from "./runtime.ts";

/** Threads of an elementwise-like primitive (eltwise, binary, reorder, pooling, softmax). */
export function elementwiseThreads(rt: CpuRuntime, bytes: number): number {
  return bytes < rt.tuning.parallelMinBytes ? 1 : rt.threads;
}

/** Threads of a batch-norm primitive over `bytes` bytes of data. */
export function batchNormThreads(rt: CpuRuntime, bytes: number): number {
  return rt.tuning.parallelBatchNorm ? elementwiseThreads(rt, bytes) : 1;
}
