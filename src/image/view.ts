/**
 * One augmented view of one u8 image from fixed parameters: the crop resized to `size x size`
 * (antialiased bilinear, as torchvision), then flip / ColorJitter / grayscale / Gaussian blur in the
 * given step order, then Normalize. The one implementation of applying a view: the data layer's
 * host augmentation and the backends' `augmentViews` kernel both call it (a GPU backend runs its
 * own kernel and is checked against this).
 *
 * @module
 */

import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  toGrayscale,
} from "./color.ts";
import { gaussianBlur } from "./blur.ts";
import { type CropBox, resizedCropU8ToPlanar } from "./resize.ts";

/** Sampled ColorJitter parameters; a factor is absent when its sub-op is skipped. */
export interface JitterParams {
  /** Order of the sub-ops: a permutation of 0 brightness, 1 contrast, 2 saturation, 3 hue. */
  order: readonly number[];
  brightness?: number;
  contrast?: number;
  saturation?: number;
  hue?: number;
}

/** The drawn parameters of one view (what the ops do to this image). */
export interface ViewParams {
  /** The crop box in source pixels (the whole image when the view does not crop). */
  box: CropBox;
  flip: boolean;
  /** ColorJitter, or null when not applied. */
  jitter: JitterParams | null;
  grayscale: boolean;
  /** Blur sigma, or null for no blur. */
  blurSigma: number | null;
}

/** The ops a view applies after its crop, in order. */
export type ViewStep = "flip" | "jitter" | "grayscale" | "blur";

/** How a view is finished: output size, step order, blur kernel, Normalize. */
export interface ViewRecipe {
  size: number;
  steps: readonly ViewStep[];
  /** Odd blur kernel size (used when a blur step runs). */
  blurKernel: number;
  mean: readonly number[];
  std: readonly number[];
}

/** Reusable scratch memory for {@link applyViewParams} (one per thread). */
export class AugmentWorkspace {
  #bufs = new Map<string, Float32Array>();

  /** A scratch buffer named `name` of at least `n` floats. */
  get(name: string, n: number): Float32Array {
    let b = this.#bufs.get(name);
    if (!b || b.length < n) {
      b = new Float32Array(n);
      this.#bufs.set(name, b);
    }
    return b;
  }
}

/** A u8 HWC image inside a larger buffer (e.g. one image of an NHWC batch). */
export interface U8Image {
  data: Uint8Array;
  offset: number;
  height: number;
  width: number;
  channels: number;
}

/** Mirrors each row of a planar image in place. */
export function flipHorizontal(img: Float32Array, channels: number, height: number, width: number) {
  for (let r = 0; r < channels * height; r++) {
    const row = r * width;
    for (let a = row, b = row + width - 1; a < b; a++, b--) {
      const t = img[a];
      img[a] = img[b];
      img[b] = t;
    }
  }
}

/** Applies ColorJitter's sub-ops in the drawn order. */
export function applyJitter(img: Float32Array, channels: number, plane: number, j: JitterParams) {
  for (const which of j.order) {
    if (which === 0 && j.brightness !== undefined) {
      adjustBrightness(img, channels * plane, j.brightness);
    }
    if (which === 1 && j.contrast !== undefined) adjustContrast(img, channels, plane, j.contrast);
    if (which === 2 && j.saturation !== undefined) {
      adjustSaturation(img, channels, plane, j.saturation);
    }
    if (which === 3 && j.hue !== undefined) adjustHue(img, channels, plane, j.hue);
  }
}

/**
 * Applies one view with fixed parameters to a u8 HWC image, writing the normalised float CHW
 * result (`channels * size * size`) to `out` at `outOffset`.
 */
export function applyViewParams(
  recipe: ViewRecipe,
  params: ViewParams,
  image: U8Image,
  out: Float32Array,
  outOffset: number,
  ws: AugmentWorkspace = new AugmentWorkspace(),
): void {
  const { channels: c } = image;
  const size = recipe.size, plane = size * size;
  const box = params.box;
  const img = ws.get("planar", c * plane);
  resizedCropU8ToPlanar(
    {
      src: image.data,
      srcOffset: image.offset,
      srcWidth: image.width,
      channels: c,
      box,
      outHeight: size,
      outWidth: size,
    },
    img,
    ws.get("resize", c * box.height * size),
  );
  for (const step of recipe.steps) {
    if (step === "flip" && params.flip) flipHorizontal(img, c, size, size);
    else if (step === "jitter" && params.jitter) applyJitter(img, c, plane, params.jitter);
    else if (step === "grayscale" && params.grayscale) toGrayscale(img, c, plane);
    else if (step === "blur" && params.blurSigma !== null) {
      const k = recipe.blurKernel;
      gaussianBlur(img, c, size, size, k, params.blurSigma, ws.get("blur", plane + size + k));
    }
  }
  for (let ch = 0; ch < c; ch++) {
    const m = recipe.mean[ch], inv = 1 / recipe.std[ch], base = ch * plane;
    for (let i = 0; i < plane; i++) out[outOffset + base + i] = (img[base + i] - m) * inv;
  }
}
