/**
 * Dataset readers and {@link openDataset}, which opens a dataset by its preset name.
 *
 * @module
 */

import { DataError } from "../errors.ts";
import { readCifar10, readCifar100 } from "./cifar.ts";
import type { ImageDataset } from "./dataset.ts";
import { firstExisting } from "./files.ts";
import { DEBIAN_FASHION_MNIST_DIR, readIdxDataset } from "./idx.ts";
import { readImageFolder } from "./image_folder.ts";
import { readStl10 } from "./stl10.ts";

export * from "./dataset.ts";
export * from "./cifar.ts";
export * from "./stl10.ts";
export * from "./idx.ts";
export * from "./image_folder.ts";
export * from "./image_stats.ts";
export {
  type ImageInfo,
  readImageInfo,
  readImageInfoFile,
  sniffImageFormat,
  SUPPORTED_IMAGE_FORMATS,
} from "../image_info.ts";

/** Dataset names understood by {@link openDataset}. */
export const DATASET_NAMES = [
  "cifar10",
  "cifar100",
  "stl10",
  "fashion-mnist",
  "mnist",
  "tiny-imagenet",
  "imagenet",
] as const;

/** A dataset name of {@link DATASET_NAMES}. */
export type DatasetName = typeof DATASET_NAMES[number];

/** Which part of a dataset: `pretrain` is what self-supervised training uses (STL-10:
 * train+unlabeled; others: train). */
export type DatasetSplit = "pretrain" | "train" | "test";

/** Options of {@link openDataset}. */
export interface OpenDatasetOptions {
  /** Folder holding the datasets (the download cache), default `data`. */
  dataDir?: string;
  /** Which images (default `pretrain`: STL-10 train+unlabeled, others train). */
  split?: DatasetSplit;
  /** Image folders only: resize every image to this size on load. */
  imageSize?: number;
  /** Read lazily where supported (STL-10, image folders). */
  lazy?: boolean;
}

/** The default folder for datasets and downloads. */
export const DEFAULT_DATA_DIR = "data";

/**
 * Opens a dataset by name. Fashion-MNIST is looked up in `dataDir/fashion-mnist`, then in Debian's
 * `/usr/share/datasets/fashion-mnist`. Tiny-ImageNet and ImageNet are image folders under
 * `dataDir/tiny-imagenet-200/{train,val}` and `dataDir/imagenet/{train,val}` (val in class folders).
 */
export async function openDataset(
  name: string,
  options: OpenDatasetOptions = {},
): Promise<ImageDataset> {
  const dataDir = options.dataDir ?? DEFAULT_DATA_DIR;
  const split = options.split ?? "pretrain";
  const train = split !== "test";
  switch (name) {
    case "cifar10":
      return await readCifar10({ root: dataDir, split: train ? "train" : "test" });
    case "cifar100":
      return await readCifar100({ root: dataDir, split: train ? "train" : "test" });
    case "stl10":
      return await readStl10({
        root: dataDir,
        split: split === "pretrain" ? "train+unlabeled" : split,
        lazy: options.lazy,
      });
    case "fashion-mnist":
    case "mnist": {
      const own = `${dataDir}/${name}`;
      const probe = `${own}/train-images-idx3-ubyte`;
      const root = name === "mnist" || firstExisting([probe, `${probe}.gz`])
        ? own
        : DEBIAN_FASHION_MNIST_DIR;
      return await readIdxDataset({ root, split: train ? "train" : "test", flavor: name });
    }
    case "tiny-imagenet":
    case "imagenet": {
      const base = `${dataDir}/${name === "imagenet" ? "imagenet" : "tiny-imagenet-200"}`;
      return readImageFolder({
        root: `${base}/${train ? "train" : "val"}`,
        size: options.imageSize,
        lazy: options.lazy ?? name === "imagenet",
      });
    }
    default:
      throw new DataError(
        `Cannot open dataset '${name}': unknown name (expected one of ${DATASET_NAMES.join(", ")})`,
      );
  }
}
