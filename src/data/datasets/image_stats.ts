/**
 * What training on a folder of one's own images needs to know about it: the sizes of its images
 * (from their headers, no decoding) and the per-channel mean and standard deviation of its pixels,
 * estimated from a sample chosen by a seed.
 *
 * ```ts
 * const { files } = scanImageFolder("photos");
 * const sizes = imageSizeStats(files);              // sizes.mostCommon -> { width, height, count }
 * const { mean, std } = estimateMeanStd(files, { sample: 500, seed: 0, size: 64 });
 * ```
 *
 * @module
 */

import { resizeU8 } from "../../image/resize.ts";
import { DataError } from "../errors.ts";
import { decodeImage, type DecodeLimits } from "../image_decode.ts";
import { ImageHeaderError, readImageInfoFile } from "../image_info.ts";
import { permutation, rngKey } from "../../random/mod.ts";

/** How many images have one size. */
export interface SizeCount {
  width: number;
  height: number;
  count: number;
}

/** The sizes of a set of images. */
export interface ImageSizeStats {
  /** Images whose size was read. */
  images: number;
  /** Every distinct size, most common first (ties: larger area first, then wider). */
  sizes: SizeCount[];
  /** The most common size (`sizes[0]`). */
  mostCommon: SizeCount;
  minWidth: number;
  maxWidth: number;
  minHeight: number;
  maxHeight: number;
}

/** Options of {@link imageSizeStats} and {@link estimateMeanStd}. */
export interface SampleOptions {
  /** Use at most this many images, chosen at random by `seed` (default: all for sizes, 1000 for
   * mean/std). */
  sample?: number;
  /** Seed of the sample (default 0): the same seed and file list give the same sample. */
  seed?: number;
}

/** The images of `files` to use: all of them, or `sample` of them chosen by `seed`, in list order. */
export function sampleFiles(files: readonly string[], options: SampleOptions = {}): string[] {
  const n = options.sample;
  if (n !== undefined && !(Number.isInteger(n) && n > 0)) {
    throw new RangeError(`sample must be a positive integer, got ${n}`);
  }
  if (n === undefined || n >= files.length) return [...files];
  const pick = Array.from(permutation(rngKey(options.seed ?? 0), files.length).subarray(0, n));
  return pick.sort((a, b) => a - b).map((i) => files[i]);
}

/**
 * Sizes of the images of `files` (or of a sample), read from their headers without decoding.
 * Throws a {@link DataError} naming a file that is not a readable JPEG, PNG or WebP header.
 */
export function imageSizeStats(
  files: readonly string[],
  options: SampleOptions = {},
): ImageSizeStats {
  const chosen = sampleFiles(files, options);
  if (chosen.length === 0) throw new DataError("Cannot survey image sizes: no images given");
  const counts = new Map<string, SizeCount>();
  for (const f of chosen) {
    let info;
    try {
      info = readImageInfoFile(f);
    } catch (err) {
      const why = err instanceof ImageHeaderError
        ? `bad image header: ${err.message}`
        : (err as Error).message;
      throw new DataError(`Cannot read the size of image '${f}': ${why}`, { file: f, cause: err });
    }
    const key = `${info.width}x${info.height}`;
    const c = counts.get(key) ?? { width: info.width, height: info.height, count: 0 };
    c.count++;
    counts.set(key, c);
  }
  const sizes = [...counts.values()].sort((a, b) =>
    b.count - a.count || b.width * b.height - a.width * a.height || b.width - a.width
  );
  return {
    images: chosen.length,
    sizes,
    mostCommon: sizes[0],
    minWidth: Math.min(...sizes.map((s) => s.width)),
    maxWidth: Math.max(...sizes.map((s) => s.width)),
    minHeight: Math.min(...sizes.map((s) => s.height)),
    maxHeight: Math.max(...sizes.map((s) => s.height)),
  };
}

/** Options of {@link estimateMeanStd}. */
export interface MeanStdOptions extends SampleOptions, DecodeLimits {
  /** 3 (RGB, default) or 1 (luma), as the images will be read for training. */
  channels?: 1 | 3;
  /** Resize each image to this size first, as training will (a number means square). */
  size?: number | { height: number; width: number };
}

/** Per-channel statistics of pixel values on the 0..1 scale (what `Normalize(mean, std)` takes). */
export interface ChannelStats {
  mean: number[];
  /** Population standard deviation over every pixel of the sampled images. */
  std: number[];
  /** Images used. */
  images: number;
  /** Pixels per channel used. */
  pixels: number;
}

/**
 * Per-channel mean and standard deviation of the pixels of a sample of `files` (default 1000
 * images chosen by `seed`), decoded as training reads them (values / 255). Deterministic: the same
 * files, options and seed give the same numbers. Sums are accumulated in f64.
 */
export function estimateMeanStd(
  files: readonly string[],
  options: MeanStdOptions = {},
): ChannelStats {
  const channels = options.channels ?? 3;
  const chosen = sampleFiles(files, { sample: options.sample ?? 1000, seed: options.seed });
  if (chosen.length === 0) throw new DataError("Cannot estimate mean and std: no images given");
  const want = typeof options.size === "number"
    ? { height: options.size, width: options.size }
    : options.size;
  const sum = new Float64Array(channels), sq = new Float64Array(channels);
  let pixels = 0;
  for (const f of chosen) {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(f);
    } catch (err) {
      throw new DataError(`Cannot read image '${f}': ${(err as Error).message}`, {
        file: f,
        cause: err,
      });
    }
    const img = decodeImage(bytes, f, channels, options);
    const data = want && (img.height !== want.height || img.width !== want.width)
      ? resizeU8(img.data, img.height, img.width, channels, want.height, want.width)
      : img.data;
    for (let i = 0; i < data.length; i += channels) {
      for (let c = 0; c < channels; c++) {
        const v = data[i + c];
        sum[c] += v;
        sq[c] += v * v;
      }
    }
    pixels += data.length / channels;
  }
  const mean = Array.from(sum, (s) => s / pixels / 255);
  const std = Array.from(sq, (s, c) => Math.sqrt(Math.max(0, s / pixels / 65025 - mean[c] ** 2)));
  return { mean, std, images: chosen.length, pixels };
}
