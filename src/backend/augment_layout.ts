/**
 * The row layout of the per-sample parameters that the `augmentViews` kernel takes: one row of
 * {@link AUGMENT_PARAM_COUNT} f32 values per image, drawn on the host (from the Philox key) and
 * applied on the device. Every backend decodes the same layout; `src/data` encodes it.
 *
 * | index | meaning |
 * |---|---|
 * | 0..3 | crop box: top, left, height, width (source pixels; the whole image when not cropped) |
 * | 4 | horizontal flip (1) or not (0) |
 * | 5 | ColorJitter applied (1) or not (0) |
 * | 6..9 | ColorJitter sub-op order: a permutation of 0 brightness, 1 contrast, 2 saturation, 3 hue |
 * | 10..13 | brightness, contrast, saturation factors and hue shift; NaN: that sub-op is skipped |
 * | 14 | grayscale (1) or not (0) |
 * | 15 | Gaussian blur sigma; 0: no blur |
 *
 * @module
 */

import type { ViewParams } from "../image/view.ts";

/** Values per sample. */
export const AUGMENT_PARAM_COUNT = 16;

/** The offset of each field of a parameter row (the table in the module documentation). */
export interface AugmentParamOffsets {
  /** Crop box top (source pixels). */
  readonly top: 0;
  /** Crop box left. */
  readonly left: 1;
  /** Crop box height. */
  readonly height: 2;
  /** Crop box width. */
  readonly width: 3;
  /** Horizontal flip (1) or not (0). */
  readonly flip: 4;
  /** ColorJitter applied (1) or not (0). */
  readonly jitter: 5;
  /** First of the four ColorJitter sub-op order slots (6..9). */
  readonly order: 6;
  /** Brightness factor (NaN: skipped). */
  readonly brightness: 10;
  /** Contrast factor (NaN: skipped). */
  readonly contrast: 11;
  /** Saturation factor (NaN: skipped). */
  readonly saturation: 12;
  /** Hue shift (NaN: skipped). */
  readonly hue: 13;
  /** Grayscale (1) or not (0). */
  readonly grayscale: 14;
  /** Gaussian blur sigma (0: no blur). */
  readonly blurSigma: 15;
}

/** Offsets of the fields of a parameter row. */
export const AugmentParam: AugmentParamOffsets = Object.freeze({
  top: 0,
  left: 1,
  height: 2,
  width: 3,
  flip: 4,
  jitter: 5,
  order: 6,
  brightness: 10,
  contrast: 11,
  saturation: 12,
  hue: 13,
  grayscale: 14,
  blurSigma: 15,
});

/** One decoded parameter row: the image layer's {@link ViewParams}. */
export type AugmentParamRow = ViewParams;

/** Reads row `i` of a parameter array (no validation: see {@link checkAugmentParamRow}). */
export function decodeAugmentParams(params: Float32Array, i: number): AugmentParamRow {
  const o = i * AUGMENT_PARAM_COUNT;
  const f = (k: number) => params[o + k];
  const opt = (k: number) => (Number.isNaN(f(k)) ? undefined : f(k));
  return {
    box: {
      top: f(AugmentParam.top),
      left: f(AugmentParam.left),
      height: f(AugmentParam.height),
      width: f(AugmentParam.width),
    },
    flip: f(AugmentParam.flip) !== 0,
    jitter: f(AugmentParam.jitter) !== 0
      ? {
        order: [0, 1, 2, 3].map((k) => f(AugmentParam.order + k)),
        brightness: opt(AugmentParam.brightness),
        contrast: opt(AugmentParam.contrast),
        saturation: opt(AugmentParam.saturation),
        hue: opt(AugmentParam.hue),
      }
      : null,
    grayscale: f(AugmentParam.grayscale) !== 0,
    blurSigma: f(AugmentParam.blurSigma) > 0 ? f(AugmentParam.blurSigma) : null,
  };
}

/** Writes one row at `i` (the inverse of {@link decodeAugmentParams}). */
export function encodeAugmentParams(row: AugmentParamRow, out: Float32Array, i: number): void {
  const o = i * AUGMENT_PARAM_COUNT;
  out[o + AugmentParam.top] = row.box.top;
  out[o + AugmentParam.left] = row.box.left;
  out[o + AugmentParam.height] = row.box.height;
  out[o + AugmentParam.width] = row.box.width;
  out[o + AugmentParam.flip] = row.flip ? 1 : 0;
  const j = row.jitter;
  out[o + AugmentParam.jitter] = j ? 1 : 0;
  for (let k = 0; k < 4; k++) out[o + AugmentParam.order + k] = j ? j.order[k] : k;
  out[o + AugmentParam.brightness] = j?.brightness ?? NaN;
  out[o + AugmentParam.contrast] = j?.contrast ?? NaN;
  out[o + AugmentParam.saturation] = j?.saturation ?? NaN;
  out[o + AugmentParam.hue] = j?.hue ?? NaN;
  out[o + AugmentParam.grayscale] = row.grayscale ? 1 : 0;
  out[o + AugmentParam.blurSigma] = row.blurSigma ?? 0;
}

/**
 * Checks row `i` against an `h x w` source image: an integer crop box inside the image, flags 0/1,
 * a permutation as the jitter order, finite non-negative factors, a hue shift in [-0.5, 0.5], a
 * finite sigma >= 0. Throws a RangeError naming the sample and the field.
 */
export function checkAugmentParamRow(
  kernel: string,
  params: Float32Array,
  i: number,
  h: number,
  w: number,
): void {
  const o = i * AUGMENT_PARAM_COUNT;
  const bad = (what: string): never => {
    throw new RangeError(`Cannot run ${kernel}: params of sample ${i}: ${what}`);
  };
  const [top, left, bh, bw] = [0, 1, 2, 3].map((k) => params[o + k]);
  for (const [name, v] of [["top", top], ["left", left], ["height", bh], ["width", bw]] as const) {
    if (!Number.isInteger(v)) bad(`crop ${name} is ${v}, expected an integer`);
  }
  if (top < 0 || left < 0 || bh < 1 || bw < 1 || top + bh > h || left + bw > w) {
    bad(`crop box top ${top} left ${left} ${bh}x${bw} does not fit the ${h}x${w} image`);
  }
  for (const k of [AugmentParam.flip, AugmentParam.jitter, AugmentParam.grayscale]) {
    if (params[o + k] !== 0 && params[o + k] !== 1) bad(`flag ${k} is ${params[o + k]}, not 0/1`);
  }
  if (params[o + AugmentParam.jitter] === 1) {
    const order = [0, 1, 2, 3].map((k) => params[o + AugmentParam.order + k]);
    if ([...order].sort().join() !== "0,1,2,3") bad(`jitter order ${order} is no permutation`);
    for (const k of [AugmentParam.brightness, AugmentParam.contrast, AugmentParam.saturation]) {
      const v = params[o + k];
      if (!Number.isNaN(v) && !(Number.isFinite(v) && v >= 0)) bad(`jitter factor ${k} is ${v}`);
    }
    const hue = params[o + AugmentParam.hue];
    if (!Number.isNaN(hue) && !(hue >= -0.5 && hue <= 0.5)) bad(`hue shift ${hue} not in ±0.5`);
  }
  const sigma = params[o + AugmentParam.blurSigma];
  if (!(Number.isFinite(sigma) && sigma >= 0)) bad(`blur sigma ${sigma}`);
}
