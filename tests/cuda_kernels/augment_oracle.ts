/**
 * The host augmentation the `augment_views_*` kernels must match: one view from one parameter row
 * (the layout of `augmentViews`: crop box, flip, jitter flag, order, factors with NaN = skipped,
 * grayscale, blur sigma), through the data layer's `applyView` (the same pixel code as
 * `applyViewParams` of the backend contract's branch, which moved it to src/image/ unchanged).
 *
 * When the contract branch is merged, this becomes `applyViewParams(recipe,
 * decodeAugmentParams(rows, i), image, out, offset)` (src/image/view.ts,
 * src/backend/augment_layout.ts).
 *
 * @module
 */

import { applyView, type AugmentOp, type OpParams } from "../../src/data/augment.ts";

/** Values per parameter row. */
export const ROW = 16;

/** A view step, as the kernel's `steps` list names them. */
export type Step = "flip" | "jitter" | "grayscale" | "blur";

/** How the views are finished: size, step order, blur kernel, Normalize. */
export interface Recipe {
  size: number;
  steps: readonly Step[];
  blurKernel: number;
  mean: readonly number[];
  std: readonly number[];
}

/** The reference view of image `i` of an NHWC u8 batch from row `i` of `rows`. */
export function referenceView(
  recipe: Recipe,
  rows: Float32Array,
  images: Uint8Array,
  i: number,
  geom: { h: number; w: number; c: number },
): Float32Array {
  const r = (k: number) => rows[i * ROW + k];
  const opt = (k: number) => (Number.isNaN(r(k)) ? undefined : r(k));
  const ops: AugmentOp[] = [{ op: "randomResizedCrop", scale: [0.2, 1], ratio: [0.75, 4 / 3] }];
  const params: OpParams[] = [{
    op: "randomResizedCrop",
    box: { top: r(0), left: r(1), height: r(2), width: r(3) },
  }];
  for (const step of recipe.steps) {
    if (step === "flip") {
      ops.push({ op: "horizontalFlip", p: 0.5 });
      params.push({ op: "horizontalFlip", flip: r(4) !== 0 });
    } else if (step === "jitter") {
      ops.push({
        op: "colorJitter",
        p: 0.8,
        brightness: 0.4,
        contrast: 0.4,
        saturation: 0.4,
        hue: 0.1,
      });
      const jitter = r(5) !== 0
        ? {
          order: [r(6), r(7), r(8), r(9)],
          brightness: opt(10),
          contrast: opt(11),
          saturation: opt(12),
          hue: opt(13),
        }
        : null;
      params.push({ op: "colorJitter", jitter });
    } else if (step === "grayscale") {
      ops.push({ op: "randomGrayscale", p: 0.2 });
      params.push({ op: "randomGrayscale", gray: r(14) !== 0 });
    } else {
      ops.push({ op: "gaussianBlur", p: 0.5, kernelSize: recipe.blurKernel, sigma: [0.1, 2] });
      params.push({ op: "gaussianBlur", sigma: r(15) > 0 ? r(15) : null });
    }
  }
  const { h, w, c } = geom;
  const out = new Float32Array(c * recipe.size * recipe.size);
  applyView(
    { size: recipe.size, ops, mean: [...recipe.mean], std: [...recipe.std] },
    params,
    { data: images, offset: i * h * w * c, height: h, width: w, channels: c },
    out,
    0,
  );
  return out;
}
