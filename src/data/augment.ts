/**
 * Augmentation pipelines as data, and their pure application to u8 images.
 *
 * A {@link ViewPipeline} is a plain, serialisable list of ops (RandomResizedCrop, horizontal flip,
 * ColorJitter, RandomGrayscale, GaussianBlur) followed by Normalize. {@link sampleView} draws every
 * random choice of one view from a counter-based stream keyed by (seed, epoch, sample index, view),
 * and {@link applyView} applies fixed parameters, so the views of a sample do not depend on the batch
 * size, the worker count or the resume point. One-channel images skip saturation, hue and grayscale.
 *
 * @module
 */

import {
  adjustBrightness,
  adjustContrast,
  adjustHue,
  adjustSaturation,
  toGrayscale,
} from "./augment_color.ts";
import { gaussianBlur } from "./augment_blur.ts";
import {
  type JitterParams,
  type JitterStrength,
  sampleJitter,
  sampleResizedCropBox,
} from "./augment_params.ts";
import { type CropBox, resizedCropU8ToPlanar } from "./augment_resize.ts";
import { foldIn, nameId, RandomStream, type RngKey } from "../random/philox.ts";

/** One augmentation op of a pipeline, with its strengths and probabilities (plain data). */
export type AugmentOp =
  | { op: "randomResizedCrop"; scale: [number, number]; ratio: [number, number] }
  | { op: "horizontalFlip"; p: number }
  | ({ op: "colorJitter"; p: number } & JitterStrength)
  | { op: "randomGrayscale"; p: number }
  | { op: "gaussianBlur"; p: number; kernelSize: number; sigma: [number, number] };

/** A view: ops in order (a crop, if any, first), output `size x size`, then Normalize. */
export interface ViewPipeline {
  /** Output height and width. */
  size: number;
  /** Augmentation ops, applied in order before the resize to `size`. */
  ops: AugmentOp[];
  /** Per-channel mean and std of Normalize (length = image channels). */
  mean: number[];
  /** Per-channel std of Normalize. */
  std: number[];
}

/** The drawn parameters of one op (`null`: the op was not applied this time). */
export type OpParams =
  | { op: "randomResizedCrop"; box: CropBox }
  | { op: "horizontalFlip"; flip: boolean }
  | { op: "colorJitter"; jitter: JitterParams | null }
  | { op: "randomGrayscale"; gray: boolean }
  | { op: "gaussianBlur"; sigma: number | null };

/** Stream name of the augmentation keys: `foldIn(key, AUGMENT_STREAM, epoch, index, view)`. */
export const AUGMENT_STREAM: number = nameId("augment");

/** The key of view `view` (0 weak, 1 strong, 2.. extra crops) of sample `index` in `epoch`. */
export function viewKey(key: RngKey, epoch: number, index: number, view: number): RngKey {
  return foldIn(key, AUGMENT_STREAM, epoch, index, view);
}

/** Throws when a pipeline cannot run on images with `channels` channels. */
export function checkPipeline(p: ViewPipeline, channels: number): void {
  if (p.mean.length !== channels || p.std.length !== channels) {
    throw new RangeError(
      `Cannot augment ${channels}-channel images: the pipeline normalises ${p.mean.length} channels (use a preset for ${channels}-channel data)`,
    );
  }
  p.ops.forEach((o, k) => {
    if (o.op === "randomResizedCrop" && k !== 0) {
      throw new RangeError(
        `Cannot build a view: randomResizedCrop must be the first op, found at ${k}`,
      );
    }
    if (o.op === "gaussianBlur" && (o.kernelSize % 2 !== 1 || (o.kernelSize - 1) / 2 >= p.size)) {
      throw new RangeError(
        `Cannot build a view: blur kernel ${o.kernelSize} must be odd with a half-width below the size ${p.size}`,
      );
    }
  });
}

/** Draws the parameters of one view of an image of `height x width`, op by op. */
export function sampleView(
  p: ViewPipeline,
  height: number,
  width: number,
  rng: RandomStream,
): OpParams[] {
  return p.ops.map((o): OpParams => {
    switch (o.op) {
      case "randomResizedCrop":
        return { op: o.op, box: sampleResizedCropBox(rng, height, width, o.scale, o.ratio) };
      case "horizontalFlip":
        return { op: o.op, flip: rng.uniform() < o.p };
      case "colorJitter":
        return { op: o.op, jitter: rng.uniform() < o.p ? sampleJitter(rng, o) : null };
      case "randomGrayscale":
        return { op: o.op, gray: rng.uniform() < o.p };
      case "gaussianBlur":
        return {
          op: o.op,
          sigma: rng.uniform() < o.p ? rng.uniformRange(o.sigma[0], o.sigma[1]) : null,
        };
    }
  });
}

/** Reusable scratch memory for {@link applyView} (one per thread). */
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
 * Applies a view with fixed parameters to one u8 image, writing the normalised float CHW result
 * (`channels * size * size`) to `out` at `outOffset`.
 */
export function applyView(
  p: ViewPipeline,
  params: readonly OpParams[],
  image: U8Image,
  out: Float32Array,
  outOffset: number,
  ws: AugmentWorkspace = new AugmentWorkspace(),
): void {
  const { height, width, channels: c } = image;
  const size = p.size, plane = size * size;
  const first = params[0];
  const box = first?.op === "randomResizedCrop" ? first.box : { top: 0, left: 0, height, width };
  const img = ws.get("planar", c * plane);
  resizedCropU8ToPlanar(
    {
      src: image.data,
      srcOffset: image.offset,
      srcWidth: width,
      channels: c,
      box,
      outHeight: size,
      outWidth: size,
    },
    img,
    ws.get("resize", c * box.height * size),
  );
  for (let k = 0; k < p.ops.length; k++) {
    const o = p.ops[k], q = params[k];
    if (o.op !== q.op) {
      throw new RangeError(`Cannot apply a view: op ${k} is ${o.op}, params are for ${q.op}`);
    }
    if (q.op === "horizontalFlip" && q.flip) flipHorizontal(img, c, size, size);
    else if (q.op === "colorJitter" && q.jitter) applyJitter(img, c, plane, q.jitter);
    else if (q.op === "randomGrayscale" && q.gray) toGrayscale(img, c, plane);
    else if (q.op === "gaussianBlur" && q.sigma !== null && o.op === "gaussianBlur") {
      gaussianBlur(
        img,
        c,
        size,
        size,
        o.kernelSize,
        q.sigma,
        ws.get("blur", plane + size + o.kernelSize),
      );
    }
  }
  for (let ch = 0; ch < c; ch++) {
    const m = p.mean[ch], inv = 1 / p.std[ch], base = ch * plane;
    for (let i = 0; i < plane; i++) out[outOffset + base + i] = (img[base + i] - m) * inv;
  }
}

/** Arguments of {@link augmentBatch}. */
export interface AugmentBatchArgs {
  /** u8 NHWC images of the batch. */
  images: Uint8Array;
  /** Image height in pixels. */
  height: number;
  /** Image width in pixels. */
  width: number;
  /** Channels per pixel (1 or 3). */
  channels: number;
  /** Dataset index of each image (keys the randomness). */
  indices: ArrayLike<number>;
  /** The epoch (keys the randomness with the index). */
  epoch: number;
  /** Root key of the run. */
  key: RngKey;
  /** The views to make, in order (weak, strong, ...). */
  views: readonly ViewPipeline[];
  /** Scratch memory to reuse across batches (default: a new one). */
  ws?: AugmentWorkspace;
}

/** Makes every view of every image of a batch: one normalised NCHW float array per view. */
export function augmentBatch(args: AugmentBatchArgs): Float32Array[] {
  const { images, height, width, channels, indices, epoch, key, views } = args;
  const ws = args.ws ?? new AugmentWorkspace();
  const n = indices.length;
  const bytes = height * width * channels;
  if (images.length !== n * bytes) {
    throw new RangeError(
      `Cannot augment: ${images.length} bytes for ${n} images of ${height}x${width}x${channels}`,
    );
  }
  for (const v of views) checkPipeline(v, channels);
  const outs = views.map((v) => new Float32Array(n * channels * v.size * v.size));
  for (let i = 0; i < n; i++) {
    const image = { data: images, offset: i * bytes, height, width, channels };
    views.forEach((v, k) => {
      const rng = new RandomStream(viewKey(key, epoch, indices[i], k));
      const per = channels * v.size * v.size;
      applyView(v, sampleView(v, height, width, rng), image, outs[k], i * per, ws);
    });
  }
  return outs;
}
