/**
 * Speed settings of the cpu backend that change how a kernel computes, not what it computes (each
 * choice passes the same conformance tolerances). They are fixed when the backend is created, and
 * every choice made from them is a pure function of a call's shapes and dtypes, never of timings or
 * of earlier calls, so a run is reproducible.
 *
 * @module
 */

/** See the module doc. */
export interface CpuTuning {
  /**
   * Winograd F(4x4, 3x3) (oneDNN's `jit_wino_4x3`) for f32 3x3 stride-1 convolutions where it is
   * faster than the direct algorithm (see `conv.ts`): 1.7-2x less convolution work for ResNet-18
   * at width 64. Its transforms round differently from a direct sum: about 1e-6 of the sum of the
   * absolute terms instead of 1e-7 (measured in `tests/backend/cpu_winograd_test.ts`).
   */
  winograd: boolean;
  /**
   * Elementwise-like primitives (eltwise, binary, reorder, pooling, softmax) whose largest tensor
   * has fewer bytes run on one thread (`threads.ts`).
   */
  parallelMinBytes: number;
  /**
   * Batch norm on all threads (from `parallelMinBytes`); false: always one thread (oneDNN's
   * batch norm spins at internal barriers, see `threads.ts`).
   */
  parallelBatchNorm: boolean;
  /**
   * The backend's own C kernels (`libressl_cpu.so`, built by `scripts/setup_cpu.sh`) where the
   * library is built: f32 training batch norm (`native_norm.ts`), SGD and EMA (`optim.ts`), the f64
   * sum (`eltwise.ts`) and log-softmax (`matrix.ts`); false: batch norm on oneDNN, the others as
   * TypeScript loops.
   */
  nativeKernels: boolean;
}

/** The defaults (measured in docs/benchmarks.md, "Issue 15, phase 2"). */
export const DEFAULT_TUNING: Readonly<CpuTuning> = Object.freeze({
  winograd: true,
  parallelMinBytes: 1 << 20,
  parallelBatchNorm: false,
  nativeKernels: true,
});
