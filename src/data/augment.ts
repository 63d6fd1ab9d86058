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

import { type JitterStrength, sampleJitter, sampleResizedCropBox } from "./augment_params.ts";
import type { CropBox } from "../image/resize.ts";
import {
  applyViewParams,
  AugmentWorkspace,
  type JitterParams,
  type U8Image,
  type ViewParams,
  type ViewRecipe,
  type ViewStep,
} from "../image/view.ts";
import { foldIn, nameId, RandomStream, type RngKey } from "../random/philox.ts";
import { AUGMENT_PARAM_COUNT, encodeAugmentParams } from "../backend/augment_layout.ts";

export { AugmentWorkspace, type U8Image } from "../image/view.ts";

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

/** The step order, blur kernel and Normalize of a pipeline (what `augmentViews` takes). */
export function viewRecipe(p: ViewPipeline): ViewRecipe {
  const steps: ViewStep[] = [];
  let blurKernel = 1;
  for (const o of p.ops) {
    if (o.op === "horizontalFlip") steps.push("flip");
    else if (o.op === "colorJitter") steps.push("jitter");
    else if (o.op === "randomGrayscale") steps.push("grayscale");
    else if (o.op === "gaussianBlur") {
      steps.push("blur");
      blurKernel = o.kernelSize;
    }
  }
  return { size: p.size, steps, blurKernel, mean: p.mean, std: p.std };
}

/** The drawn op parameters of a view as one {@link ViewParams} record for an `h x w` image. */
export function viewParams(
  p: ViewPipeline,
  params: readonly OpParams[],
  height: number,
  width: number,
): ViewParams {
  const out: ViewParams = {
    box: { top: 0, left: 0, height, width },
    flip: false,
    jitter: null,
    grayscale: false,
    blurSigma: null,
  };
  if (params.length !== p.ops.length) {
    throw new RangeError(
      `Cannot apply a view: ${params.length} op parameters for ${p.ops.length} ops`,
    );
  }
  p.ops.forEach((o, k) => {
    const q = params[k];
    if (o.op !== q.op) {
      throw new RangeError(`Cannot apply a view: op ${k} is ${o.op}, params are for ${q.op}`);
    }
    if (q.op === "randomResizedCrop") out.box = q.box;
    else if (q.op === "horizontalFlip") out.flip = q.flip;
    else if (q.op === "colorJitter") out.jitter = q.jitter;
    else if (q.op === "randomGrayscale") out.grayscale = q.gray;
    else out.blurSigma = q.sigma;
  });
  return out;
}

/**
 * The drawn parameters of n views (one per image of an `height x width` batch) as the rows the
 * `augmentViews` kernel takes: n rows of `AUGMENT_PARAM_COUNT` f32 values (`augment_layout.ts`),
 * so a step can upload them and make the views on the device with the pipeline's
 * {@link viewRecipe}.
 */
export function encodeViewParamRows(
  p: ViewPipeline,
  drawn: readonly (readonly OpParams[])[],
  height: number,
  width: number,
): Float32Array {
  const rows = new Float32Array(drawn.length * AUGMENT_PARAM_COUNT);
  drawn.forEach((params, i) => encodeAugmentParams(viewParams(p, params, height, width), rows, i));
  return rows;
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
  const vp = viewParams(p, params, image.height, image.width);
  applyViewParams(viewRecipe(p), vp, image, out, outOffset, ws);
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

/**
 * The parameter rows of every view of a batch, drawn exactly as {@link augmentBatch} draws them
 * (the same key per image and view), for the backend's `augmentViews` kernel: one array of
 * `indices.length` rows per view, in view order. Only the parameters are drawn; no pixel is read.
 */
export function augmentBatchParams(
  args: Omit<AugmentBatchArgs, "images" | "channels" | "ws">,
): Float32Array[] {
  const { height, width, indices, epoch, key, views } = args;
  return views.map((v, k) => {
    const drawn = Array.from(
      indices,
      (index) => sampleView(v, height, width, new RandomStream(viewKey(key, epoch, index, k))),
    );
    return encodeViewParamRows(v, drawn, height, width);
  });
}
