/**
 * The dataset contract shared by every reader: images as u8 NHWC, optional labels and class names,
 * and a way to copy any set of images into a batch buffer (in memory or read lazily from disk).
 *
 * @module
 */

import { DataError } from "../errors.ts";

/** Height, width and channel count of every image of a dataset. */
export interface ImageShape {
  /** Image height in pixels. */
  readonly height: number;
  /** Image width in pixels. */
  readonly width: number;
  /** 1 (grayscale) or 3 (RGB). */
  readonly channels: number;
}

/**
 * A dataset of equally sized u8 images. In-memory datasets expose `images`; lazy ones (STL-10's
 * unlabeled split, large image folders) read on demand through {@link ImageDataset.readInto}.
 */
export interface ImageDataset extends ImageShape {
  /** Short description used in messages and logs, e.g. `cifar10/train`. */
  readonly name: string;
  /** Number of images. */
  readonly length: number;
  /** All images as u8 NHWC (`length * height * width * channels` bytes), when held in memory. */
  readonly images?: Uint8Array;
  /** Class index per image (`-1` where a sample has no label), when the dataset is labelled. */
  readonly labels?: Int32Array;
  /** Class names, indexed by label. */
  readonly classes?: readonly string[];
  /** Copies the images at `indices` into `out` (u8 NHWC, `indices.length` images). */
  readInto(indices: ArrayLike<number>, out: Uint8Array): void;
  /** Releases open files (lazy datasets); a no-op for in-memory ones. */
  close(): void;
}

/** Bytes of one image of `shape`. */
export function imageBytes(shape: ImageShape): number {
  return shape.height * shape.width * shape.channels;
}

/** Throws unless `out` holds exactly `count` images and every index is in range. */
export function checkReadArgs(
  ds: ImageDataset,
  indices: ArrayLike<number>,
  out: Uint8Array,
): void {
  const need = indices.length * imageBytes(ds);
  if (out.length !== need) {
    throw new RangeError(
      `Cannot read ${indices.length} images of ${ds.name}: output holds ${out.length} bytes, expected ${need}`,
    );
  }
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= ds.length) {
      throw new RangeError(
        `Cannot read image ${i} of ${ds.name}: index out of range [0, ${ds.length})`,
      );
    }
  }
}

/** Options of {@link memoryDataset}. */
export interface MemoryDatasetOptions extends ImageShape {
  /** The dataset's name (in messages and checkpoints). */
  name: string;
  /** Every image, u8 NHWC, one after another (a multiple of height x width x channels). */
  images: Uint8Array;
  /** One class index per image, when labelled. */
  labels?: Int32Array;
  /** Class names, indexed by label. */
  classes?: readonly string[];
}

/** Wraps u8 NHWC images held in memory as an {@link ImageDataset}. */
export function memoryDataset(options: MemoryDatasetOptions): ImageDataset {
  const { name, images, labels, classes, height, width, channels } = options;
  const bytes = height * width * channels;
  if (!(bytes > 0) || images.length % bytes !== 0) {
    throw new DataError(
      `Cannot make dataset ${name}: ${images.length} bytes is not a whole number of ${height}x${width}x${channels} images`,
    );
  }
  const length = images.length / bytes;
  if (labels && labels.length !== length) {
    throw new DataError(
      `Cannot make dataset ${name}: ${labels.length} labels for ${length} images`,
    );
  }
  const ds: ImageDataset = {
    name,
    length,
    height,
    width,
    channels,
    images,
    labels,
    classes,
    readInto(indices, out) {
      checkReadArgs(ds, indices, out);
      for (let k = 0; k < indices.length; k++) {
        const start = indices[k] * bytes;
        out.set(images.subarray(start, start + bytes), k * bytes);
      }
    },
    close() {},
  };
  return ds;
}

/**
 * Joins datasets of the same image shape end to end (STL-10's train+unlabeled split). Labels are
 * kept when any part has them, with `-1` for the images of unlabelled parts.
 */
export function concatDatasets(name: string, parts: readonly ImageDataset[]): ImageDataset {
  if (parts.length === 0) throw new DataError(`Cannot make dataset ${name}: no parts to join`);
  const first = parts[0];
  for (const p of parts) {
    if (p.height !== first.height || p.width !== first.width || p.channels !== first.channels) {
      throw new DataError(
        `Cannot join ${p.name} to ${first.name}: images are ${p.height}x${p.width}x${p.channels}, expected ${first.height}x${first.width}x${first.channels}`,
      );
    }
  }
  const offsets = [0];
  for (const p of parts) offsets.push(offsets[offsets.length - 1] + p.length);
  const length = offsets[parts.length];
  let labels: Int32Array | undefined;
  if (parts.some((p) => p.labels)) {
    labels = new Int32Array(length).fill(-1);
    parts.forEach((p, k) => p.labels && labels!.set(p.labels, offsets[k]));
  }
  const bytes = imageBytes(first);
  const ds: ImageDataset = {
    name,
    length,
    height: first.height,
    width: first.width,
    channels: first.channels,
    labels,
    classes: parts.find((p) => p.classes)?.classes,
    readInto(indices, out) {
      checkReadArgs(ds, indices, out);
      const one = [0];
      for (let k = 0; k < indices.length; k++) {
        let part = 0;
        while (indices[k] >= offsets[part + 1]) part++;
        one[0] = indices[k] - offsets[part];
        parts[part].readInto(one, out.subarray(k * bytes, (k + 1) * bytes));
      }
    },
    close() {
      for (const p of parts) p.close();
    },
  };
  return ds;
}
