/**
 * What `--data` means, the same in every task: a folder holding either a built-in dataset's files
 * (directly in it, or in `<folder>/<name>/`) or one's own images (an image folder: class
 * subfolders optional; or `train/` and `val/` (or `test/`) subfolders of it). Without `--data`,
 * a built-in dataset is looked up in `data/` and `data/<name>/` (Fashion-MNIST also in Debian's
 * copy). A `--data` that does not exist, or holds neither, is an error naming the path: data is
 * never switched behind the user's back.
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  DEBIAN_FASHION_MNIST_DIR,
  type ImageDataset,
  readCifar10,
  readCifar100,
  readIdxDataset,
  readImageFolder,
  readStl10,
  scanImageFolder,
} from "../src/data/datasets/mod.ts";
import { DataError } from "../src/data/errors.ts";
import { UsageError } from "./cli_flags.ts";

/** The default data folder (downloads go there too). */
export const DEFAULT_DATA_DIR = "data";

/** Built-in datasets and the files whose presence says a folder holds them. */
export const BUILTIN_PROBES: Readonly<Record<string, readonly string[]>> = {
  "cifar10": ["data_batch_1.bin", "cifar-10-batches-bin/data_batch_1.bin"],
  "cifar100": ["train.bin", "cifar-100-binary/train.bin"],
  "stl10": [
    "train_X.bin",
    "unlabeled_X.bin",
    "stl10_binary/train_X.bin",
    "stl10_binary/unlabeled_X.bin",
  ],
  "fashion-mnist": [
    "train-images-idx3-ubyte",
    "train-images-idx3-ubyte.gz",
    "raw/train-images-idx3-ubyte",
    "raw/train-images-idx3-ubyte.gz",
  ],
  "mnist": [
    "train-images-idx3-ubyte",
    "train-images-idx3-ubyte.gz",
    "raw/train-images-idx3-ubyte",
    "raw/train-images-idx3-ubyte.gz",
  ],
  "tiny-imagenet": ["tiny-imagenet-200/train", "wnids.txt"],
  "imagenet": ["imagenet/train", "ILSVRC/Data/CLS-LOC/train"],
};

/** Names of the built-in datasets. */
export const BUILTIN_NAMES: readonly string[] = Object.keys(BUILTIN_PROBES);

/** A built-in dataset found in a folder. */
export interface BuiltinSource {
  kind: "builtin";
  /** The dataset (`fashion-mnist`, ...). */
  name: string;
  /** The folder its reader opens. */
  root: string;
  /** Where it was found, for the run header. */
  where: string;
}

/** One's own images. */
export interface FolderSource {
  kind: "folder";
  /** The folder given. */
  root: string;
  /** Its training images' folder (the root, or `root/train`). */
  trainDir: string;
  /** Its held-out images' folder (`root/val` or `root/test`), when it has one. */
  testDir?: string;
}

/** What a `--data` resolves to. */
export type DataSource = BuiltinSource | FolderSource;

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** The folder of `dir` and `dir/<name>` that holds `name`'s files, if any. */
function findBuiltin(name: string, dir: string): string | undefined {
  const probes = BUILTIN_PROBES[name] ?? [];
  for (const root of [dir, join(dir, name)]) {
    if (probes.some((p) => existsSync(join(root, p)))) return root;
  }
  // Tiny-ImageNet / ImageNet extracted as the folder itself: train/ beside val/.
  if ((name === "tiny-imagenet" || name === "imagenet") && isDir(join(dir, "train"))) {
    if (isDir(join(dir, "val"))) return dir;
  }
  return undefined;
}

/** Whether folder `dir` (or `dir/<name>/`) holds the files of any built-in dataset. */
export function holdsBuiltin(dir: string): boolean {
  return BUILTIN_NAMES.some((n) => findBuiltin(n, dir) !== undefined);
}

/** `train/` + `val/` (or `test/`) subfolders of `dir`, when `dir` holds nothing else that counts. */
function splitFolders(dir: string): { trainDir: string; testDir: string } | undefined {
  const train = join(dir, "train");
  const test = ["val", "test"].map((s) => join(dir, s)).find(isDir);
  return isDir(train) && test ? { trainDir: train, testDir: test } : undefined;
}

/** Where a built-in dataset is looked up without `--data`. */
export function defaultRoots(name: string): string[] {
  const roots = [DEFAULT_DATA_DIR];
  if (name === "fashion-mnist") roots.push(DEBIAN_FASHION_MNIST_DIR);
  return roots;
}

/**
 * Resolves `--data` (`data`, undefined when absent) for a run whose preset names the dataset
 * `name` (`image-folder` for one's own images). Throws a {@link UsageError} naming the path when
 * it does not exist or is not a folder, and a {@link DataError} when it holds neither the
 * dataset's files nor images (with what was looked for).
 */
export function resolveData(name: string, data: string | undefined): DataSource {
  if (data === undefined) {
    if (name === "image-folder") {
      throw new UsageError(
        "Missing flag --data <dir>: the image-folder preset trains on a folder of your images",
      );
    }
    for (const dir of defaultRoots(name)) {
      const root = findBuiltin(name, dir);
      if (root) return { kind: "builtin", name, root, where: root };
    }
    const probes = BUILTIN_PROBES[name];
    if (!probes) throw new UsageError(`Cannot find dataset '${name}': it is not a built-in one`);
    throw new DataError(
      `Cannot find dataset '${name}': none of ${probes.map((p) => `'${p}'`).join(", ")} is in ${
        defaultRoots(name).flatMap((d) => [`'${d}'`, `'${join(d, name)}'`]).join(", ")
      }; give --data <dir> or fetch it with --download`,
    );
  }
  let info;
  try {
    info = statSync(data);
  } catch {
    throw new UsageError(`Invalid flag --data: '${data}' does not exist`);
  }
  if (!info.isDirectory()) {
    throw new UsageError(`Invalid flag --data: '${data}' is a file, expected a folder`);
  }
  if (name !== "image-folder") {
    const root = findBuiltin(name, data);
    if (root) return { kind: "builtin", name, root, where: root };
  }
  const split = splitFolders(data);
  const trainDir = split?.trainDir ?? data;
  try {
    scanImageFolder(trainDir);
  } catch (e) {
    if (!(e instanceof DataError)) throw e;
    const probes = BUILTIN_PROBES[name];
    const builtin = probes
      ? `neither the ${name} files (${probes.map((p) => `'${p}'`).join(", ")} in '${data}' or '${
        join(data, name)
      }') nor images: `
      : "";
    throw new DataError(`Cannot use --data '${data}': it holds ${builtin}${e.message}`, {
      file: data,
      cause: e,
    });
  }
  return { kind: "folder", root: data, trainDir, testDir: split?.testDir };
}

/** Options of {@link openBuiltin}. */
export interface OpenBuiltinOptions {
  /** `pretrain` (STL-10: train+unlabeled), `train` or `test`. */
  split: "pretrain" | "train" | "test";
  /** Image folders (Tiny-ImageNet, ImageNet): resize to this size on load. */
  imageSize?: number;
}

/** Opens a split of a built-in dataset found by {@link resolveData}. */
export async function openBuiltin(
  source: BuiltinSource,
  options: OpenBuiltinOptions,
): Promise<ImageDataset> {
  const { root } = source;
  const train = options.split !== "test";
  switch (source.name) {
    case "cifar10":
      return await readCifar10({ root, split: train ? "train" : "test" });
    case "cifar100":
      return await readCifar100({ root, split: train ? "train" : "test" });
    case "stl10":
      return await readStl10({
        root,
        split: options.split === "pretrain" ? "train+unlabeled" : options.split,
      });
    case "fashion-mnist":
    case "mnist":
      return await readIdxDataset({ root, split: train ? "train" : "test", flavor: source.name });
    case "tiny-imagenet":
    case "imagenet": {
      const sub = source.name === "imagenet" ? "imagenet" : "tiny-imagenet-200";
      const base = isDir(join(root, sub)) ? join(root, sub) : root;
      return readImageFolder({
        root: join(base, train ? "train" : "val"),
        size: options.imageSize,
        lazy: source.name === "imagenet",
      });
    }
    default:
      throw new DataError(`Cannot open dataset '${source.name}': it is not a built-in one`);
  }
}
