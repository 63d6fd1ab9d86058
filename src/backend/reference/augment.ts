/**
 * `augmentViews` of the reference backend: each parameter row is decoded and checked against the
 * source image, then the one TypeScript implementation of a view (`applyViewParams`, also used by
 * the data layer's host augmentation) makes the normalised CHW output; bf16 outputs are the f32
 * results rounded once.
 *
 * @module
 */

import type { Opts } from "../backend.ts";
import { checkAugmentParamRow, decodeAugmentParams } from "../augment_layout.ts";
import { f64ToBf16 } from "../bf16.ts";
import { applyViewParams, AugmentWorkspace, type ViewRecipe } from "../../image/view.ts";
import { dataOf, f32Of } from "./storage.ts";

/** `augmentViews` on the storages of a validated call. */
export function augmentViews(o: Opts<"augmentViews">): void {
  const { n, h, w, c, size } = o.geom;
  const params = f32Of(o.params);
  for (let i = 0; i < n; i++) checkAugmentParamRow("augmentViews", params, i, h, w);
  const images = dataOf(o.images) as Uint8Array;
  const recipe: ViewRecipe = {
    size,
    steps: o.steps,
    blurKernel: o.blurKernel,
    mean: o.mean,
    std: o.std,
  };
  const per = c * size * size;
  const bf16 = o.out.dtype === "bf16";
  const out = bf16 ? new Float32Array(n * per) : f32Of(o.out);
  const ws = new AugmentWorkspace();
  for (let i = 0; i < n; i++) {
    const image = { data: images, offset: i * h * w * c, height: h, width: w, channels: c };
    applyViewParams(recipe, decodeAugmentParams(params, i), image, out, i * per, ws);
  }
  if (bf16) {
    const bits = dataOf(o.out) as Uint16Array;
    for (let j = 0; j < n * per; j++) bits[j] = f64ToBf16(out[j]);
  }
}
