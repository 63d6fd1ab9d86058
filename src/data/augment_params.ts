/**
 * Random parameters of the augmentations, drawn as torchvision draws them but from the project's
 * counter-based RNG: RandomResizedCrop's box (10 attempts at scale / log-ratio, then the central-crop
 * fallback), the flip coin, ColorJitter's factors and sub-op order, the grayscale coin and the blur
 * sigma. Sampling is separate from applying, so parity tests can fix the parameters.
 *
 * @module
 */

import type { CropBox } from "../image/resize.ts";
import type { JitterParams } from "../image/view.ts";
import type { RandomStream } from "../random/philox.ts";

/** Python's `round` (half to even), as torchvision uses for crop sizes. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The source of uniform draws the samplers need (a {@link RandomStream} satisfies it). */
export type Draws = Pick<RandomStream, "uniform" | "uniformRange" | "int">;

/**
 * torchvision's `RandomResizedCrop.get_params`: up to 10 tries of an area fraction uniform in
 * `scale` and an aspect ratio log-uniform in `ratio`; then a central crop clamped to `ratio`.
 */
export function sampleResizedCropBox(
  rng: Draws,
  height: number,
  width: number,
  scale: readonly [number, number],
  ratio: readonly [number, number],
): CropBox {
  const area = height * width;
  const logLo = Math.log(ratio[0]), logHi = Math.log(ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const targetArea = area * rng.uniformRange(scale[0], scale[1]);
    const aspect = Math.exp(rng.uniformRange(logLo, logHi));
    const w = roundHalfEven(Math.sqrt(targetArea * aspect));
    const h = roundHalfEven(Math.sqrt(targetArea / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const top = rng.int(height - h + 1);
      const left = rng.int(width - w + 1);
      return { top, left, height: h, width: w };
    }
  }
  return centralCropBox(height, width, ratio);
}

/** The fallback of {@link sampleResizedCropBox}: the largest central crop within `ratio`. */
export function centralCropBox(
  height: number,
  width: number,
  ratio: readonly [number, number],
): CropBox {
  const inRatio = width / height;
  let w: number, h: number;
  if (inRatio < Math.min(ratio[0], ratio[1])) {
    w = width;
    h = roundHalfEven(w / Math.min(ratio[0], ratio[1]));
  } else if (inRatio > Math.max(ratio[0], ratio[1])) {
    h = height;
    w = roundHalfEven(h * Math.max(ratio[0], ratio[1]));
  } else {
    w = width;
    h = height;
  }
  return {
    top: Math.floor((height - h) / 2),
    left: Math.floor((width - w) / 2),
    height: h,
    width: w,
  };
}

/** Strengths of ColorJitter, as torchvision's constructor takes them. */
export interface JitterStrength {
  /** Brightness factor range [max(0, 1 - b), 1 + b]. */
  brightness: number;
  /** Contrast factor range [max(0, 1 - c), 1 + c]. */
  contrast: number;
  /** Saturation factor range [max(0, 1 - s), 1 + s]. */
  saturation: number;
  /** Hue shift range [-h, h] (h <= 0.5). */
  hue: number;
}

export type { JitterParams } from "../image/view.ts";

/** torchvision's `ColorJitter.get_params`: a random order, then factors in [max(0, 1-s), 1+s]
 * (hue in [-h, h]). */
export function sampleJitter(rng: Draws, s: JitterStrength): JitterParams {
  const order = [0, 1, 2, 3];
  for (let i = 3; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const factor = (v: number) => (v > 0 ? rng.uniformRange(Math.max(0, 1 - v), 1 + v) : undefined);
  return {
    order,
    brightness: factor(s.brightness),
    contrast: factor(s.contrast),
    saturation: factor(s.saturation),
    hue: s.hue > 0 ? rng.uniformRange(-s.hue, s.hue) : undefined,
  };
}
