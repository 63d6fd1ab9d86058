/**
 * IDX files (MNIST, Fashion-MNIST): `{train,t10k}-images-idx3-ubyte` and `-labels-idx1-ubyte`, raw
 * or gzip-compressed (`.gz`, decompressed with the built-in `DecompressionStream`).
 *
 * Format: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then each
 * dimension as a big-endian u32, then the data row-major.
 *
 * @module
 */

import { DataError } from "../errors.ts";
import { type ImageDataset, memoryDataset } from "./dataset.ts";
import { baseName, firstExisting, readDeclaredSize } from "./files.ts";

/** Where Debian's `dataset-fashion-mnist` package puts the real Fashion-MNIST files. */
export const DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist";

/** Fashion-MNIST class names. */
export const FASHION_MNIST_CLASSES: readonly string[] = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];

/** MNIST class names. */
export const MNIST_CLASSES: readonly string[] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/** A decoded IDX array of unsigned bytes. */
export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Validates the start of an IDX file: more bytes needed, or its dims and header length. */
function idxHeader(
  bytes: Uint8Array,
  file: string,
): { need: number } | { dims: number[]; header: number } {
  const bad = (what: string) => new DataError(`Cannot read IDX file '${file}': ${what}`, { file });
  if (bytes.length < 4) return { need: 4 };
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join("");
    throw bad(`bad magic 0x${magic}, expected 0x000008NN (not an IDX file?)`);
  }
  if (bytes[2] !== 0x08) {
    throw bad(
      `element type 0x${bytes[2].toString(16)} is not supported, expected 0x08 (unsigned byte)`,
    );
  }
  const ndim = bytes[3];
  if (ndim < 1 || ndim > 4) throw bad(`${ndim} dimensions, expected 1 to 4`);
  const header = 4 + 4 * ndim;
  if (bytes.length < header) return { need: header };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  for (let d = 0; d < ndim; d++) dims.push(view.getUint32(4 + 4 * d, false));
  return { dims, header };
}

/** Parses an (already gunzipped) IDX file of unsigned bytes; `file` names it in errors. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const bad = (what: string) => new DataError(`Cannot read IDX file '${file}': ${what}`, { file });
  const h = idxHeader(bytes, file);
  if ("need" in h) {
    throw bad(
      h.need === 4
        ? `file is ${bytes.length} bytes, too short for the 4-byte magic`
        : `file is ${h.need - bytes.length} bytes short of its header (truncated?)`,
    );
  }
  const { dims, header } = h;
  const count = dims.reduce((a, b) => a * b, 1);
  const have = bytes.length - header;
  if (have < count) {
    throw bad(
      `file is ${count - have} bytes short of its ${dims.join("x")} data (truncated download?)`,
    );
  }
  if (have > count) throw bad(`file has ${have - count} bytes after its ${dims.join("x")} data`);
  return { dims, data: bytes.subarray(header) };
}

/** Options of {@link readIdxFile}. */
export interface ReadIdxOptions {
  /** Refuse a file whose header declares more bytes than this (default 4 GiB). */
  maxBytes?: number;
}

/**
 * Reads an IDX file, raw or gzipped. The header is checked before the data is read: its declared
 * size must fit the file (for gzip: what its compressed bytes can inflate to) and `maxBytes`, and
 * inflation stops at the declared size, so a corrupt or hostile file cannot exhaust memory.
 */
export async function readIdxFile(path: string, options: ReadIdxOptions = {}): Promise<IdxArray> {
  const bytes = await readDeclaredSize(path, {
    what: "IDX file",
    hint: "run with --download, or point the data folder at the IDX files",
    maxBytes: options.maxBytes,
    sizeFromHeader: (prefix) => {
      const h = idxHeader(prefix, path);
      if ("need" in h) return h;
      return {
        total: h.header + h.dims.reduce((a, b) => a * b, 1),
        describe: `${h.dims.join("x")} data`,
      };
    },
  });
  return parseIdx(bytes, path);
}

/** Options of {@link readIdxDataset}. */
export interface IdxDatasetOptions {
  /** Folder with the IDX files (also searched: `root/raw`). */
  root: string;
  split: "train" | "test";
  /** Which dataset, for names and classes (default fashion-mnist). */
  flavor?: "fashion-mnist" | "mnist";
}

/** Finds `name` or `name.gz` under `root` or `root/raw`. */
function findIdx(root: string, name: string): string {
  return firstExisting([
    `${root}/${name}`,
    `${root}/${name}.gz`,
    `${root}/raw/${name}`,
    `${root}/raw/${name}.gz`,
  ]) ?? `${root}/${name}.gz`;
}

/** Reads an MNIST-style dataset: images N x 28 x 28 (1 channel) and labels 0..9. */
export async function readIdxDataset(options: IdxDatasetOptions): Promise<ImageDataset> {
  const flavor = options.flavor ?? "fashion-mnist";
  const prefix = options.split === "train" ? "train" : "t10k";
  const imagesPath = findIdx(options.root, `${prefix}-images-idx3-ubyte`);
  const labelsPath = findIdx(options.root, `${prefix}-labels-idx1-ubyte`);
  const images = await readIdxFile(imagesPath);
  const labels = await readIdxFile(labelsPath);
  if (images.dims.length !== 3) {
    throw new DataError(
      `Cannot read IDX images '${imagesPath}': ${images.dims.length} dimensions, expected 3 (count, rows, columns)`,
      { file: imagesPath },
    );
  }
  if (labels.dims.length !== 1) {
    throw new DataError(
      `Cannot read IDX labels '${labelsPath}': ${labels.dims.length} dimensions, expected 1`,
      { file: labelsPath },
    );
  }
  const [n, h, w] = images.dims;
  if (labels.dims[0] !== n) {
    throw new DataError(
      `Cannot read ${flavor} ${options.split}: '${baseName(labelsPath)}' has ${
        labels.dims[0]
      } labels for the ${n} images of '${baseName(imagesPath)}'`,
      { file: labelsPath },
    );
  }
  const lab = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    if (labels.data[i] > 9) {
      throw new DataError(
        `Cannot read IDX labels '${labelsPath}': label ${i} is ${labels.data[i]}, expected 0..9`,
        { file: labelsPath },
      );
    }
    lab[i] = labels.data[i];
  }
  return memoryDataset({
    name: `${flavor}/${options.split}`,
    images: images.data,
    labels: lab,
    classes: flavor === "mnist" ? MNIST_CLASSES : FASHION_MNIST_CLASSES,
    height: h,
    width: w,
    channels: 1,
  });
}
