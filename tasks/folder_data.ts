/**
 * One's own image folder as the tasks use it: opened at one image size (default: the most common
 * size of its images), a deterministic held-out split for the kNN monitor and `eval` when it has
 * class folders but no `val/`, and the Normalize mean/std estimated from a sample of its images.
 *
 * @module
 */

import {
  estimateMeanStd,
  type ImageDataset,
  imageSizeStats,
  readImageFolder,
  scanImageFolder,
} from "../src/data/datasets/mod.ts";
import { checkReadArgs, imageBytes } from "../src/data/datasets/dataset.ts";
import { DataError } from "../src/data/errors.ts";
import { foldIn, nameId, permutation, rngKey } from "../src/random/mod.ts";
import type { FolderSource } from "./data_source.ts";

/** Share of a labelled folder's images held out as kNN / eval queries (when it has no val/). */
export const HELD_OUT_FRACTION = 0.1;

/** The largest default image size (a folder of photos trains at 224, as ImageNet). */
export const MAX_DEFAULT_IMAGE_SIZE = 224;

/** Images whose decoded size exceeds this many bytes in all are read lazily. */
const LAZY_BYTES = 2 ** 31;

/** The images of a folder `ds` at `indices` (in that order), sharing its storage. */
export function indexSubset(
  ds: ImageDataset,
  indices: Int32Array,
  name: string,
): ImageDataset {
  const bytes = imageBytes(ds);
  const sub: ImageDataset = {
    name,
    length: indices.length,
    height: ds.height,
    width: ds.width,
    channels: ds.channels,
    labels: ds.labels ? Int32Array.from(indices, (i) => ds.labels![i]) : undefined,
    classes: ds.classes,
    readInto(idx, out) {
      checkReadArgs(sub, idx, out);
      ds.readInto(Int32Array.from(idx as ArrayLike<number>, (k) => indices[k]), out);
    },
    close() {},
  };
  if (ds.images) {
    const images = new Uint8Array(indices.length * bytes);
    indices.forEach((i, k) =>
      images.set(ds.images!.subarray(i * bytes, (i + 1) * bytes), k * bytes)
    );
    return { ...sub, images };
  }
  return sub;
}

/**
 * The held-out split of `n` images: a fixed permutation (seed 0, independent of the run's seed,
 * so `train` and `eval` agree) whose first `ceil(n * HELD_OUT_FRACTION)` are the queries.
 */
export function heldOutSplit(n: number): { train: Int32Array; test: Int32Array } {
  if (n < 2) {
    throw new DataError(`Cannot hold out images for the kNN monitor: the folder has ${n} image`);
  }
  const perm = permutation(foldIn(rngKey(0), nameId("held-out")), n);
  const k = Math.min(n - 1, Math.max(1, Math.ceil(n * HELD_OUT_FRACTION)));
  const sorted = (a: Int32Array) => a.slice().sort();
  return { train: sorted(perm.subarray(k)), test: sorted(perm.subarray(0, k)) };
}

/** The default image size of a folder and the sentence that says where it comes from. */
export function defaultImageSize(files: readonly string[]): { size: number; note: string } {
  const stats = imageSizeStats(files, { sample: 1000, seed: 0 });
  const mc = stats.mostCommon;
  const side = Math.min(mc.width, mc.height);
  const size = Math.min(side, MAX_DEFAULT_IMAGE_SIZE);
  const of = `${mc.count} of ${stats.images}${stats.images < files.length ? " sampled" : ""}`;
  const mixed = stats.sizes.length > 1
    ? `; sizes range ${stats.minWidth}-${stats.maxWidth} x ${stats.minHeight}-${stats.maxHeight}, all resized to ${size}x${size}`
    : "";
  const capped = size < side ? `, capped at ${MAX_DEFAULT_IMAGE_SIZE}` : "";
  return {
    size,
    note: `image size ${size} (the most common size is ${mc.width}x${mc.height}, ${of} images` +
      `${capped}${mixed}; --image-size sets it)`,
  };
}

/** Options of {@link openFolder}. */
export interface OpenFolderOptions {
  /** Side of the square images the network takes (every image is resized to it). */
  size: number;
  /** 3 (RGB) or 1 (luma). */
  channels: 1 | 3;
}

/** An opened image folder. */
export interface FolderData {
  /** Every training image (labels unused by pretraining). */
  pretrain: ImageDataset;
  /** Labelled images that vote in kNN / train the probe (absent: no class folders). */
  train?: ImageDataset;
  /** Labelled held-out images (the `val/` folder, or the held-out split). */
  test?: ImageDataset;
  /** How the test images were chosen. */
  split?: "val folder" | "held out";
  /** Training image files (for size and mean/std statistics). */
  files: string[];
}

function open(root: string, o: OpenFolderOptions, files: number): ImageDataset {
  const lazy = files * o.size * o.size * o.channels > LAZY_BYTES;
  return readImageFolder({ root, size: o.size, channels: o.channels, lazy });
}

/**
 * Opens an image folder of {@link FolderSource}. Class folders give labels; without a `val/` (or
 * `test/`) folder the held-out split of {@link heldOutSplit} supplies the labelled test images.
 */
export function openFolder(source: FolderSource, o: OpenFolderOptions): FolderData {
  const { files } = scanImageFolder(source.trainDir);
  const pretrain = open(source.trainDir, o, files.length);
  if (!pretrain.labels) return { pretrain, files };
  if (source.testDir) {
    const test = open(source.testDir, o, files.length);
    const a = JSON.stringify(pretrain.classes), b = JSON.stringify(test.classes);
    if (!test.labels || a !== b) {
      pretrain.close();
      test.close();
      throw new DataError(
        `Cannot use '${source.testDir}' as the held-out images of '${source.trainDir}': its class folders ${
          test.classes ? b : "(none)"
        } differ from the training ones ${a}`,
        { file: source.testDir },
      );
    }
    return { pretrain, train: pretrain, test, split: "val folder", files };
  }
  const split = heldOutSplit(pretrain.length);
  const name = pretrain.name;
  return {
    pretrain,
    train: indexSubset(pretrain, split.train, `${name}[train]`),
    test: indexSubset(pretrain, split.test, `${name}[held-out]`),
    split: "held out",
    files,
  };
}

/** Normalize mean/std estimated from (at most) 1000 of `files` chosen by `seed`, as trained. */
export function estimateNormalization(
  files: readonly string[],
  o: OpenFolderOptions & { seed: number },
): { mean: number[]; std: number[]; images: number } {
  const r = estimateMeanStd(files, {
    sample: 1000,
    seed: o.seed,
    size: o.size,
    channels: o.channels,
  });
  const round = (v: number[]) => v.map((x) => Math.round(x * 1e4) / 1e4);
  return { mean: round(r.mean), std: round(r.std), images: r.images };
}
