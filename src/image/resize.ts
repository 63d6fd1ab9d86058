/**
 * Bilinear resampling of a crop box, with the antialiasing filter of PIL (and of torchvision's
 * `resize(..., antialias=True)`): when shrinking, the triangle filter widens to the scale factor;
 * when enlarging it is plain bilinear interpolation with half-pixel centres (`align_corners=False`).
 *
 * @module
 */

/** An integer crop box in pixels (torchvision's `top, left, height, width`). */
export interface CropBox {
  readonly top: number;
  readonly left: number;
  readonly height: number;
  readonly width: number;
}

/** Resampling coefficients along one axis: for output `i`, taps `start[i] .. start[i]+count[i]-1`. */
export interface AxisCoeffs {
  start: Int32Array;
  count: Int32Array;
  /** `weights[i * taps + k]`, normalised to sum 1. */
  weights: Float32Array;
  /** Taps per output (the maximum of `count`). */
  taps: number;
}

/**
 * Antialiased bilinear coefficients mapping `inSize` input pixels to `outSize` outputs
 * (PIL's `precompute_coeffs` / ATen's `_compute_indices_weights_aa` with the triangle filter).
 */
export function bilinearCoeffs(inSize: number, outSize: number): AxisCoeffs {
  const scale = inSize / outSize;
  const support = scale >= 1 ? scale : 1;
  const invScale = scale >= 1 ? 1 / scale : 1;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * taps);
  for (let i = 0; i < outSize; i++) {
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xsize = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    const row = i * taps;
    for (let j = 0; j < xsize; j++) {
      const t = Math.abs((j + xmin - center + 0.5) * invScale);
      const w = t < 1 ? 1 - t : 0;
      weights[row + j] = w;
      total += w;
    }
    if (total !== 0) { for (let j = 0; j < xsize; j++) weights[row + j] /= total; }
    start[i] = xmin;
    count[i] = xsize;
  }
  return { start, count, weights, taps };
}

/** Coefficients already computed, by `inSize * 65536 + outSize` (shared: never modified). */
const COEFFS = new Map<number, AxisCoeffs>();
const COEFFS_LIMIT = 4096;

/**
 * {@link bilinearCoeffs}, memoised (a crop of a small image repeats few box sizes); fresh for an
 * output side of 65536 or more, where the key could collide.
 */
function coeffsFor(inSize: number, outSize: number): AxisCoeffs {
  if (outSize >= 65536) return bilinearCoeffs(inSize, outSize);
  const key = inSize * 65536 + outSize;
  let c = COEFFS.get(key);
  if (c === undefined) {
    if (COEFFS.size >= COEFFS_LIMIT) COEFFS.clear();
    c = bilinearCoeffs(inSize, outSize);
    COEFFS.set(key, c);
  }
  return c;
}

/** Geometry of a resized crop from an interleaved (HWC) u8 image. */
export interface ResizedCropArgs {
  /** Source image, u8 HWC. */
  src: Uint8Array;
  /** Offset of the image in `src` (bytes). */
  srcOffset: number;
  /** Source width and channels (its height only bounds the box). */
  srcWidth: number;
  channels: number;
  box: CropBox;
  outHeight: number;
  outWidth: number;
}

/**
 * Crops `box` from a u8 HWC image and resizes it to `outHeight x outWidth` with antialiased bilinear
 * filtering, writing planar float CHW in [0, 1] to `dst` (`channels * outHeight * outWidth`).
 * `scratch` must hold at least `channels * box.height * outWidth` floats.
 */
export function resizedCropU8ToPlanar(
  args: ResizedCropArgs,
  dst: Float32Array,
  scratch: Float32Array,
): void {
  const { src, srcOffset, srcWidth, channels: c, box, outHeight: oh, outWidth: ow } = args;
  const cx = coeffsFor(box.width, ow);
  const cy = coeffsFor(box.height, oh);
  const bh = box.height;
  // Locals, not property loads, in the hot loops (V8 does not hoist them past the stores).
  const wx = cx.weights, sx = cx.start, nx = cx.count, tx = cx.taps;
  const wy = cy.weights, sy = cy.start, ny = cy.count, ty = cy.taps;
  // Horizontal pass: rows of the box -> scratch[ch][y][x].
  for (let y = 0; y < bh; y++) {
    const rowBase = srcOffset + ((box.top + y) * srcWidth + box.left) * c;
    for (let ch = 0; ch < c; ch++) {
      const sRow = (ch * bh + y) * ow;
      for (let x = 0; x < ow; x++) {
        const n = nx[x], wBase = x * tx;
        let p = rowBase + sx[x] * c + ch;
        let acc = 0;
        for (let k = 0; k < n; k++, p += c) acc += wx[wBase + k] * src[p];
        scratch[sRow + x] = acc;
      }
    }
  }
  // Vertical pass: scratch -> dst[ch][y][x], scaled to [0, 1].
  const inv = 1 / 255;
  for (let ch = 0; ch < c; ch++) {
    const sPlane = ch * bh * ow, dPlane = ch * oh * ow;
    for (let y = 0; y < oh; y++) {
      const n = ny[y], wBase = y * ty;
      const sBase = sPlane + sy[y] * ow;
      const dRow = dPlane + y * ow;
      for (let x = 0; x < ow; x++) {
        let acc = 0;
        for (let k = 0, q = sBase + x; k < n; k++, q += ow) acc += wy[wBase + k] * scratch[q];
        dst[dRow + x] = acc * inv;
      }
    }
  }
}

/**
 * Resizes a whole u8 HWC image to `outHeight x outWidth` (antialiased bilinear), returning u8 HWC
 * rounded to nearest (used to resize images on load).
 */
export function resizeU8(
  src: Uint8Array,
  height: number,
  width: number,
  channels: number,
  outHeight: number,
  outWidth: number,
): Uint8Array {
  const planar = new Float32Array(channels * outHeight * outWidth);
  const scratch = new Float32Array(channels * height * outWidth);
  resizedCropU8ToPlanar(
    {
      src,
      srcOffset: 0,
      srcWidth: width,
      channels,
      box: { top: 0, left: 0, height, width },
      outHeight,
      outWidth,
    },
    planar,
    scratch,
  );
  const out = new Uint8Array(outHeight * outWidth * channels);
  const plane = outHeight * outWidth;
  for (let p = 0; p < plane; p++) {
    for (let ch = 0; ch < channels; ch++) {
      const v = Math.round(planar[ch * plane + p] * 255);
      out[p * channels + ch] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return out;
}
