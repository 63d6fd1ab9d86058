/**
 * Gaussian blur on planar float images, separable, with reflect padding (torchvision's
 * `gaussian_blur`: kernel `exp(-x^2 / (2 sigma^2))` on `x = -(k-1)/2 .. (k-1)/2`, normalised).
 *
 * @module
 */

/** The normalised 1-D Gaussian kernel of odd size `size` and standard deviation `sigma`. */
export function gaussianKernel1d(size: number, sigma: number): Float32Array {
  if (!(size >= 1 && size % 2 === 1)) {
    throw new RangeError(`Cannot make a Gaussian kernel of size ${size}: it must be odd and >= 1`);
  }
  if (!(sigma > 0)) {
    throw new RangeError(`Cannot make a Gaussian kernel: sigma ${sigma} must be > 0`);
  }
  const half = (size - 1) / 2;
  const k = new Float32Array(size);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    const x = -half + i;
    const v = Math.exp(-0.5 * (x / sigma) ** 2);
    k[i] = v;
    sum += Math.fround(v);
  }
  for (let i = 0; i < size; i++) k[i] = k[i] / sum;
  return k;
}

/** Reflect index (`torch.nn.functional.pad(mode="reflect")`: the edge pixel is not repeated). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * (n - 1);
  i = ((i % period) + period) % period;
  return i < n ? i : period - i;
}

/**
 * Blurs a planar image in place with a `size x size` Gaussian of `sigma` (separable: rows, then
 * columns). `scratch` holds at least `(height + 1) * width + size` floats.
 */
export function gaussianBlur(
  img: Float32Array,
  channels: number,
  height: number,
  width: number,
  size: number,
  sigma: number,
  scratch: Float32Array,
): void {
  const k = gaussianKernel1d(size, sigma);
  const half = (size - 1) / 2;
  const plane = height * width;
  const tmp = scratch.subarray(0, plane);
  const line = scratch.subarray(plane, plane + width + 2 * half);
  const rowOf = new Int32Array(height + 2 * half);
  for (let i = 0; i < rowOf.length; i++) rowOf[i] = reflect(i - half, height) * width;
  const colOf = new Int32Array(width + 2 * half);
  for (let i = 0; i < colOf.length; i++) colOf[i] = reflect(i - half, width);
  for (let c = 0; c < channels; c++) {
    const base = c * plane;
    // Rows: copy each row with its reflected margins into `line`, then convolve.
    for (let y = 0; y < height; y++) {
      const row = base + y * width;
      for (let i = 0; i < half; i++) {
        line[i] = img[row + colOf[i]];
        line[half + width + i] = img[row + colOf[half + width + i]];
      }
      line.set(img.subarray(row, row + width), half);
      const o = y * width;
      for (let x = 0; x < width; x++) {
        let acc = 0;
        for (let t = 0; t < size; t++) acc += k[t] * line[x + t];
        tmp[o + x] = acc;
      }
    }
    // Columns: each output row is a weighted sum of (reflected) rows of `tmp`.
    for (let y = 0; y < height; y++) {
      const out = base + y * width;
      const r0 = rowOf[y], w0 = k[0];
      for (let x = 0; x < width; x++) img[out + x] = w0 * tmp[r0 + x];
      for (let t = 1; t < size; t++) {
        const r = rowOf[y + t], w = k[t];
        for (let x = 0; x < width; x++) img[out + x] += w * tmp[r + x];
      }
    }
  }
}
