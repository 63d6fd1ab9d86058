/**
 * Colour transforms on planar float images (CHW, values in [0, 1]), in place, with the arithmetic of
 * torchvision's tensor functional ops (`adjust_brightness`, `adjust_contrast`, `adjust_saturation`,
 * `adjust_hue`, `rgb_to_grayscale`). One-channel images: brightness and contrast apply; saturation,
 * hue and grayscale leave them unchanged (as torchvision does).
 *
 * @module
 */

/** torchvision's luma weights (ITU-R 601-2). */
const LR = 0.2989, LG = 0.587, LB = 0.114;

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);

/** `img = clamp(factor * img)`. */
export function adjustBrightness(img: Float32Array, n: number, factor: number): void {
  for (let k = 0; k < n; k++) img[k] = clamp01(factor * img[k]);
}

/**
 * Blends with the mean grayscale level of the whole image: `clamp(f * img + (1 - f) * mean)`.
 * `plane` is height x width; `channels` 1 or 3.
 */
export function adjustContrast(
  img: Float32Array,
  channels: number,
  plane: number,
  factor: number,
): void {
  let sum = 0;
  if (channels === 3) {
    for (let p = 0; p < plane; p++) {
      sum += Math.fround(LR * img[p] + LG * img[plane + p] + LB * img[2 * plane + p]);
    }
  } else {
    for (let p = 0; p < plane * channels; p++) sum += img[p];
  }
  const mean = Math.fround(sum / (plane * (channels === 3 ? 1 : channels)));
  const off = (1 - factor) * mean;
  const n = channels * plane;
  for (let k = 0; k < n; k++) img[k] = clamp01(factor * img[k] + off);
}

/** Blends each pixel with its own grayscale level: `clamp(f * img + (1 - f) * gray)`. RGB only. */
export function adjustSaturation(
  img: Float32Array,
  channels: number,
  plane: number,
  factor: number,
): void {
  if (channels !== 3) return;
  const keep = 1 - factor;
  for (let p = 0; p < plane; p++) {
    const r = img[p], g = img[plane + p], b = img[2 * plane + p];
    const gray = keep * Math.fround(LR * r + LG * g + LB * b);
    img[p] = clamp01(factor * r + gray);
    img[plane + p] = clamp01(factor * g + gray);
    img[2 * plane + p] = clamp01(factor * b + gray);
  }
}

/**
 * Shifts the hue by `hueFactor` (in [-0.5, 0.5], a fraction of the colour wheel) through HSV, with
 * torchvision's `_rgb2hsv` / `_hsv2rgb`. RGB only.
 */
export function adjustHue(
  img: Float32Array,
  channels: number,
  plane: number,
  hueFactor: number,
): void {
  if (channels !== 3) return;
  for (let p = 0; p < plane; p++) {
    const r = img[p], g = img[plane + p], b = img[2 * plane + p];
    const maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
    const minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
    const cr = maxc - minc;
    const eqc = cr === 0;
    const s = eqc ? 0 : cr / maxc;
    const inv = eqc ? 1 : 1 / cr;
    let h: number;
    if (maxc === r) h = (g - b) * inv; // bc - gc
    else if (maxc === g) h = 2 + (b - r) * inv; // 2 + rc - bc
    else h = 4 + (r - g) * inv; // 4 + gc - rc
    h = h / 6 + 1 + hueFactor;
    h -= Math.floor(h);
    const v = maxc;
    const h6 = h * 6;
    const i = Math.floor(h6);
    const fr = h6 - i;
    const pp = clamp01(v * (1 - s));
    const qq = clamp01(v * (1 - s * fr));
    const tt = clamp01(v * (1 - s * (1 - fr)));
    let ro: number, go: number, bo: number;
    switch (i % 6) {
      case 0:
        ro = v, go = tt, bo = pp;
        break;
      case 1:
        ro = qq, go = v, bo = pp;
        break;
      case 2:
        ro = pp, go = v, bo = tt;
        break;
      case 3:
        ro = pp, go = qq, bo = v;
        break;
      case 4:
        ro = tt, go = pp, bo = v;
        break;
      default:
        ro = v, go = pp, bo = qq;
    }
    img[p] = ro;
    img[plane + p] = go;
    img[2 * plane + p] = bo;
  }
}

/** Replaces RGB by its luma in all three channels (`rgb_to_grayscale(num_output_channels=3)`). */
export function toGrayscale(img: Float32Array, channels: number, plane: number): void {
  if (channels !== 3) return;
  for (let p = 0; p < plane; p++) {
    const l = Math.fround(LR * img[p] + LG * img[plane + p] + LB * img[2 * plane + p]);
    img[p] = l;
    img[plane + p] = l;
    img[2 * plane + p] = l;
  }
}
