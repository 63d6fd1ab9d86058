/**
 * The C interface of `libressl_cpu.so`, the cpu backend's own kernels (`ffi/cpu/kernels/*.c`,
 * built by `scripts/setup_cpu.sh`). Every pointer is a host address; sizes are int64.
 *
 * @module
 */

/** The functions of `libressl_cpu.so` (ABI version {@link CPU_KERNELS_ABI}). */
export const CPU_KERNEL_SYMBOLS = {
  /** 1 when this CPU runs the code the library was compiled for (x86-64-v3), else 0. */
  ressl_cpu_kernels_supported: { parameters: [], result: "i32" },
  /** The version of this C interface. */
  ressl_cpu_kernels_abi: { parameters: [], result: "i32" },
  /**
   * (x, residual|null, y, gamma, beta, mean, variance, n, c, hw, lanes, eps, relu, threads,
   * scratch, scratch bytes) ->
   * 0 or a negative error code.
   */
  ressl_bn_forward_training: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "i64",
      "i64",
      "i64",
      "i64",
      "f64",
      "i32",
      "i32",
      "pointer",
      "i64",
    ],
    result: "i32",
  },
  /**
   * (x, dy, y|null, gamma, mean, variance, dx, dgamma, dbeta, dresidual|null, n, c, hw, lanes,
   * eps, relu, threads, scratch, scratch bytes) -> 0 or a negative error code.
   */
  ressl_bn_backward: {
    parameters: [
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "pointer",
      "i64",
      "i64",
      "i64",
      "i64",
      "f64",
      "i32",
      "i32",
      "pointer",
      "i64",
    ],
    result: "i32",
  },
  /** (param, grad, buf, n, lr, momentum, wd, scale, nesterov, threads): one tensor's SGD step. */
  ressl_sgd_f32: {
    parameters: ["pointer", "pointer", "pointer", "i64", "f64", "f64", "f64", "f64", "i32", "i32"],
    result: "void",
  },
  /** (teacher, student, out, n, m, 1 - m, threads): out = m teacher + (1 - m) student. */
  ressl_ema_f32: {
    parameters: ["pointer", "pointer", "pointer", "i64", "f64", "f64", "i32"],
    result: "void",
  },
  /**
   * (x, n, threads, parts, capacity: doubles in parts) -> the f64 sum of x[0..n); multi-threaded
   * when parts holds ceil(n / 4096) chunk sums, else on the calling thread (the same result).
   */
  ressl_sum_f32: { parameters: ["pointer", "i64", "i32", "pointer", "i64"], result: "f64" },
  /** (x, y, rows, cols, threads): row-wise log-softmax in f64 with the C library's exp and log. */
  ressl_log_softmax_f32: {
    parameters: ["pointer", "pointer", "i64", "i64", "i32"],
    result: "void",
  },
  /** (n, c, hw, lanes) -> bytes of scratch a batch-norm call needs (0: invalid geometry). */
  ressl_bn_scratch_bytes: { parameters: ["i64", "i64", "i64", "i64"], result: "i64" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The bound functions. */
export type CpuKernelSymbols = Deno.DynamicLibrary<typeof CPU_KERNEL_SYMBOLS>["symbols"];

/** The ABI version these bindings are written for (`ressl_cpu_kernels_abi()`). */
export const CPU_KERNELS_ABI = 5;

/** Error codes the kernels return. */
export const CPU_KERNEL_ERRORS: Readonly<Record<number, string>> = Object.freeze({
  [-1]: "invalid geometry or arguments",
  [-2]: "scratch missing or too small",
});
