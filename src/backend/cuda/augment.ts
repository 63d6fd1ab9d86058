/**
 * `augmentViews` of the cuda backend: the `augment_views_*` kernel (`augment.cu`), one block per
 * sample, with its scratch from the caching allocator.
 *
 * The kernel trusts the crop boxes, so every parameter row is checked first
 * (`checkAugmentParamRow`, as the other backends). The rows come from the host: when the params
 * storage still holds the values of its last whole upload (its `shadow`), the check runs on those,
 * with no device round trip; otherwise the rows are downloaded for the check (a synchronisation,
 * only when the rows were made on the device).
 *
 * @module
 */

import type { AugmentGeometry, AugmentStep } from "../backend.ts";
import { AUGMENT_PARAM_COUNT, checkAugmentParamRow } from "../augment_layout.ts";
import {
  AUGMENT_MAX_BLUR_KERNEL,
  augmentWorkFloats,
  encodeAugmentSteps,
} from "../../../ffi/cuda/kernels/signatures.ts";
import { BLOCK } from "./kernel_image.ts";
import type { CudaRuntime } from "./runtime.ts";
import type { CudaStorage } from "./storage.ts";

/** Most blocks of one launch (blocks stride over further samples). */
const MAX_SAMPLE_BLOCKS = 65535;

/** Options of {@link augmentViews} with this backend's storages. */
export interface AugmentCall {
  images: CudaStorage;
  params: CudaStorage;
  out: CudaStorage;
  geom: AugmentGeometry;
  steps: readonly AugmentStep[];
  blurKernel: number;
  mean: readonly number[];
  std: readonly number[];
}

/** The parameter rows of a call, from the storage's shadow or (else) downloaded. */
function hostRows(rt: CudaRuntime, params: CudaStorage, n: number): Float32Array {
  const shadow = params.shadow;
  if (shadow instanceof Float32Array && shadow.length >= n * AUGMENT_PARAM_COUNT) return shadow;
  const rows = new Float32Array(n * AUGMENT_PARAM_COUNT);
  rt.staging.download(rows, params.ptr);
  return rows;
}

/** Makes the views of a validated call. */
export function augmentViews(rt: CudaRuntime, o: AugmentCall): void {
  const { n, h, w, c, size } = o.geom;
  if (o.blurKernel > AUGMENT_MAX_BLUR_KERNEL) {
    throw new RangeError(
      `Cannot run augmentViews on CUDA: blurKernel ${o.blurKernel} exceeds the kernel's ` +
        `${AUGMENT_MAX_BLUR_KERNEL}`,
    );
  }
  if (n === 0) return;
  const rows = hostRows(rt, o.params, n);
  for (let i = 0; i < n; i++) checkAugmentParamRow("augmentViews", rows, i, h, w);
  const work = rt.scratch(augmentWorkFloats(n, c, size) * 4);
  const mean = [o.mean[0], c === 3 ? o.mean[1] : 0, c === 3 ? o.mean[2] : 0];
  const std = [o.std[0], c === 3 ? o.std[1] : 1, c === 3 ? o.std[2] : 1];
  try {
    const name = o.out.dtype === "bf16" ? "augment_views_bf16" : "augment_views_f32";
    rt.kernels.launch(name, Math.min(n, MAX_SAMPLE_BLOCKS), BLOCK, [
      o.images.ptr,
      o.params.ptr,
      o.out.ptr,
      work,
      n,
      h,
      w,
      c,
      size,
      encodeAugmentSteps(o.steps),
      o.blurKernel,
      ...mean,
      ...std,
    ]);
  } finally {
    rt.release(work);
  }
}
