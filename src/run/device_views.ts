/**
 * The views of a batch made by the backend (`augmentViews`) from the u8 images and the parameter
 * rows the loader drew on the host (`viewsOn: "device"`): what the trainer does on the cuda
 * backend, where a batch of u8 pixels and a few KB of parameters go to the device instead of the
 * f32 views, and the augmentation runs there. Same parameters, so the same views as the host path
 * (within the kernel's 1/255 of the pixel range; see the backend conformance suite).
 *
 * @module
 */

import { AUGMENT_PARAM_COUNT } from "../backend/augment_layout.ts";
import type { HostBatch } from "../data/loader.ts";
import { type ViewPipeline, viewRecipe } from "../data/augment.ts";
import type { Context, Tensor } from "../tensor/mod.ts";
import type { TrainViews } from "./views.ts";

/** Image geometry of a dataset. */
export interface ImageShape {
  height: number;
  width: number;
  channels: number;
}

/**
 * The weak, strong and extra views of `batch` as f32 NCHW tensors, made on the context's backend.
 * The uploaded images and rows are temporaries of the current scope.
 */
export function deviceBatchViews(
  ctx: Context,
  batch: HostBatch,
  views: TrainViews,
  image: ImageShape,
): { weak: Tensor; strong: Tensor; extraStrong: Tensor[] } {
  const rows = batch.viewParams;
  const pipelines = [views.weak, views.strong, ...views.extra];
  if (rows === undefined || rows.length !== pipelines.length) {
    throw new Error(
      `Cannot make the views on the device: the batch has ${rows?.length ?? "no"} parameter ` +
        `row sets for ${pipelines.length} views (make the loader with viewsOn "device")`,
    );
  }
  const n = batch.indices.length;
  const { height: h, width: w, channels: c } = image;
  const images = ctx.fromArray(batch.images, [n * h * w * c], "u8");
  const make = (p: ViewPipeline, params: Float32Array): Tensor => {
    const r = viewRecipe(p);
    const rowsT = ctx.fromArray(params, [n, AUGMENT_PARAM_COUNT]);
    const out = ctx.empty([n, c, p.size, p.size]);
    ctx.backend.augmentViews({
      images: images.storage,
      params: rowsT.storage,
      out: out.storage,
      geom: { n, h, w, c, size: p.size },
      steps: r.steps,
      blurKernel: r.blurKernel,
      mean: r.mean,
      std: r.std,
    });
    return out;
  };
  const [weak, strong, ...extraStrong] = pipelines.map((p, i) => make(p, rows[i]));
  return { weak, strong, extraStrong };
}
