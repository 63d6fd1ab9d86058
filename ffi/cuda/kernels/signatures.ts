/**
 * The project's CUDA kernels as the host sees them: the fatbin's location, every kernel's argument
 * types in order (the `extern "C"` declarations of the `.cu` files beside this one; a test checks
 * the two agree), and the constants and host-side tables some launches need. Semantics and launch
 * shapes: README.md beside this file.
 *
 * @module
 */

import type { KernelArgType } from "../launch.ts";

/** The committed fatbin holding every kernel (built by `ffi/cuda/kernels/build.sh`). */
export const KERNELS_FATBIN_URL: URL = new URL("./ressl_kernels.fatbin", import.meta.url);

const P = "ptr", I = "i32", F = "f32";

/** Argument types of every kernel, in declaration order (pointers are device addresses). */
export const KERNEL_SIGNATURES = {
  // elementwise.cu
  cast_f32_to_bf16: [P, P, I],
  cast_bf16_to_f32: [P, P, I],
  axpby_f32: [P, P, P, F, F, I],
  axpby_bf16: [P, P, P, F, F, I],
  mul_f32: [P, P, P, I],
  broadcast_scalar_f32: [P, P, F, I],
  relu_f32: [P, P, I],
  relu_bf16: [P, P, I],
  relu_backward_f32: [P, P, P, I],
  relu_backward_bf16: [P, P, P, I],
  sum_partials_f32: [P, P, I],
  sum_finish_f32: [P, I, P, F],
  // rows.cu
  add_row_vector_f32: [P, P, P, I, I],
  sum_rows_f32: [P, P, I, I],
  gather_rows_f32: [P, P, P, I, I],
  softmax_f32: [P, P, I, I],
  softmax_backward_f32: [P, P, P, I, I],
  log_softmax_f32: [P, P, I, I],
  log_softmax_backward_f32: [P, P, P, I, I],
  l2_normalize_f32: [P, P, I, I, "f64"],
  l2_normalize_backward_f32: [P, P, P, I, I, "f64"],
  // batch_norm.cu
  batch_norm_stats_partial_f32: [P, P, I, I, I],
  batch_norm_stats_partial_bf16: [P, P, I, I, I],
  batch_norm_stats_finish: [P, P, P, I, I, I, I],
  batch_norm_apply_f32: [P, P, P, P, P, P, P, F, I, I, I, I],
  batch_norm_apply_bf16: [P, P, P, P, P, P, P, F, I, I, I, I],
  batch_norm_backward_partial_f32: [P, P, P, P, P, F, P, I, I, I],
  batch_norm_backward_partial_bf16: [P, P, P, P, P, F, P, I, I, I],
  batch_norm_backward_finish: [P, P, P, I, I],
  batch_norm_backward_apply_f32: [P, P, P, P, P, P, P, P, F, P, P, I, I, I],
  batch_norm_backward_apply_bf16: [P, P, P, P, P, P, P, P, F, P, P, I, I, I],
  batch_norm_merge_stats: [P, P, P, I, I, I, I],
  batch_norm_backward_apply_sync_f32: [P, P, P, P, P, P, P, I, I, I, F, F, P, P, I, I, I],
  batch_norm_backward_apply_sync_bf16: [P, P, P, P, P, P, P, I, I, I, F, F, P, P, I, I, I],
  // pool.cu
  max_pool2d_forward_f32: [P, P, I, I, I, I, I, I, I, I, I, I, I, I],
  max_pool2d_backward_f32: [P, P, P, I, I, I, I, I, I, I, I, I, I, I, I],
  global_avg_pool_f32: [P, P, I, I],
  global_avg_pool_backward_f32: [P, P, I, I],
  // optim.cu
  multi_sq_norm_partials_f32: [P, P, P, P, I, I, P],
  sgd_update_multi_f32: [P, P, P, P, P, I, I, P, P, P, F, F, I, F, F, I],
  ema_update_multi_f32: [P, P, P, P, P, I, I, "f64", "f64"],
  // relation_loss.cu
  relation_loss_f32: [P, P, P, P, I, I, F, F, F],
  // augment.cu
  augment_views_f32: [P, P, P, P, I, I, I, I, I, I, I, F, F, F, F, F, F],
  augment_views_bf16: [P, P, P, P, I, I, I, I, I, I, I, F, F, F, F, F, F],
} as const satisfies Record<string, readonly KernelArgType[]>;

/** Names of the kernels in the fatbin. */
export type KernelName = keyof typeof KERNEL_SIGNATURES;

/** Largest block size any kernel supports; reductions need a multiple of 32. */
export const MAX_BLOCK = 1024;

/** Largest `blur_kernel` of `augment_views_*` (its shared weight table). */
export const AUGMENT_MAX_BLUR_KERNEL = 511;

/** Codes of the augmentation steps in `augment_views_*`'s `steps` argument. */
export const AUGMENT_STEP_CODES = Object.freeze({ flip: 1, jitter: 2, grayscale: 3, blur: 4 });

/** Packs an ordered step list into `steps` (4 bits per step, first step lowest, 0 ends). */
export function encodeAugmentSteps(steps: readonly (keyof typeof AUGMENT_STEP_CODES)[]): number {
  if (steps.length > 7) throw new RangeError(`Cannot encode ${steps.length} augmentation steps`);
  let code = 0;
  steps.forEach((s, k) => {
    const v = AUGMENT_STEP_CODES[s];
    if (v === undefined) throw new RangeError(`Cannot encode unknown augmentation step '${s}'`);
    code |= v << (4 * k);
  });
  return code;
}

/** Floats of scratch `augment_views_*` needs: two planes sets per sample. */
export function augmentWorkFloats(n: number, c: number, size: number): number {
  return n * 2 * c * size * size;
}

/**
 * The `chunk_start` table of the multi-tensor kernels: entry t is the number of chunks of
 * `chunkSize` elements in tensors 0..t-1 (an empty tensor has none); the last entry is the grid.
 */
export function multiTensorChunks(sizes: readonly number[], chunkSize: number): Int32Array {
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new RangeError(`Cannot split tensors into chunks of ${chunkSize} elements`);
  }
  const starts = new Int32Array(sizes.length + 1);
  let total = 0;
  sizes.forEach((size, t) => {
    if (!Number.isInteger(size) || size < 0 || size >= 2 ** 31) {
      throw new RangeError(`Cannot split tensor ${t} of ${size} elements into chunks`);
    }
    total += Math.ceil(size / chunkSize);
    if (total >= 2 ** 31) throw new RangeError(`Cannot launch ${total} chunks in one grid`);
    starts[t + 1] = total;
  });
  return starts;
}
