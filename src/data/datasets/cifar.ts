/**
 * CIFAR-10 and CIFAR-100, binary versions (https://www.cs.toronto.edu/~kriz/cifar.html).
 *
 * CIFAR-10: `cifar-10-batches-bin/data_batch_{1..5}.bin` and `test_batch.bin`, records of 1 label byte
 * + 3072 pixel bytes (1024 red, 1024 green, 1024 blue, row-major 32x32); class names in
 * `batches.meta.txt`. CIFAR-100: `cifar-100-binary/{train,test}.bin`, records of a coarse and a fine
 * label byte + 3072 pixel bytes; names in `{coarse,fine}_label_names.txt`.
 *
 * @module
 */

import { DataError } from "../errors.ts";
import { type ImageDataset, memoryDataset } from "./dataset.ts";
import { baseName, firstExisting, readDataFile } from "./files.ts";

const PIXELS = 32 * 32;
const IMAGE_BYTES = 3 * PIXELS;

/** CIFAR-10 class names (used when `batches.meta.txt` is absent). */
export const CIFAR10_CLASSES: readonly string[] = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

/** Layout of one CIFAR binary file, for {@link parseCifarRecords}. */
export interface CifarLayout {
  /** "CIFAR-10" or "CIFAR-100", for messages. */
  dataset: string;
  /** Label bytes before the pixels: 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine). */
  labelBytes: number;
  /** Class count of each label byte, for range checks. */
  classCounts: readonly number[];
  /** Which label byte to return (0-based). */
  labelIndex: number;
  /** File name for messages. */
  file: string;
}

/** Decoded records: images u8 NHWC 32x32x3 and one label per image. */
export interface CifarRecords {
  images: Uint8Array;
  labels: Int32Array;
}

/** Parses the records of one CIFAR binary file (pure: bytes in, NHWC images and labels out). */
export function parseCifarRecords(bytes: Uint8Array, layout: CifarLayout): CifarRecords {
  const record = layout.labelBytes + IMAGE_BYTES;
  const what = `${layout.dataset} batch '${layout.file}'`;
  if (bytes.length === 0) {
    throw new DataError(`Cannot read ${what}: file is empty (truncated download?)`, {
      file: layout.file,
    });
  }
  const rem = bytes.length % record;
  if (rem !== 0) {
    throw new DataError(
      `Cannot read ${what}: file is ${record - rem} bytes short (truncated download?)`,
      { file: layout.file },
    );
  }
  const n = bytes.length / record;
  const images = new Uint8Array(n * IMAGE_BYTES);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const base = i * record;
    for (let b = 0; b < layout.labelBytes; b++) {
      const v = bytes[base + b];
      if (v >= layout.classCounts[b]) {
        throw new DataError(
          `Cannot read ${what}: record ${i} has label ${v}, expected 0..${
            layout.classCounts[b] - 1
          } (not a ${layout.dataset} binary file?)`,
          { file: layout.file },
        );
      }
    }
    labels[i] = bytes[base + layout.labelIndex];
    const px = base + layout.labelBytes;
    const out = i * IMAGE_BYTES;
    for (let p = 0; p < PIXELS; p++) {
      images[out + 3 * p] = bytes[px + p];
      images[out + 3 * p + 1] = bytes[px + PIXELS + p];
      images[out + 3 * p + 2] = bytes[px + 2 * PIXELS + p];
    }
  }
  return { images, labels };
}

/** Options of {@link readCifar10} and {@link readCifar100}. */
export interface CifarOptions {
  /** Folder holding `cifar-10-batches-bin/` (or `cifar-100-binary/`), or that folder itself. */
  root: string;
  /** Which split to read. */
  split: "train" | "test";
}

/** Options of {@link readCifar100}. */
export interface Cifar100Options extends CifarOptions {
  /** Which labels to return: the 100 fine classes (default) or the 20 coarse superclasses. */
  labels?: "fine" | "coarse";
}

/** The folder holding the files: `root/sub` when `probe` is there, else `root` when it is there. */
function resolveFolder(root: string, sub: string, probe: string): string {
  if (firstExisting([`${root}/${sub}/${probe}`])) return `${root}/${sub}`;
  if (firstExisting([`${root}/${probe}`])) return root;
  return `${root}/${sub}`;
}

async function readNames(path: string): Promise<string[] | undefined> {
  try {
    const text = new TextDecoder().decode(await Deno.readFile(path));
    return text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
  } catch {
    return undefined;
  }
}

function joinRecords(parts: CifarRecords[]): CifarRecords {
  const n = parts.reduce((s, p) => s + p.labels.length, 0);
  const images = new Uint8Array(n * IMAGE_BYTES);
  const labels = new Int32Array(n);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * IMAGE_BYTES);
    labels.set(p.labels, at);
    at += p.labels.length;
  }
  return { images, labels };
}

/** Reads CIFAR-10 (binary version): train = data_batch_1..5 (50k), test = test_batch (10k). */
export async function readCifar10(options: CifarOptions): Promise<ImageDataset> {
  const files = options.split === "train"
    ? [1, 2, 3, 4, 5].map((k) => `data_batch_${k}.bin`)
    : ["test_batch.bin"];
  const dir = resolveFolder(options.root, "cifar-10-batches-bin", files[0]);
  const hint =
    `run with --download, or point the data folder at the one holding cifar-10-batches-bin`;
  const parts: CifarRecords[] = [];
  for (const f of files) {
    const bytes = await readDataFile(`${dir}/${f}`, "CIFAR-10 batch", hint);
    parts.push(parseCifarRecords(bytes, {
      dataset: "CIFAR-10",
      labelBytes: 1,
      classCounts: [10],
      labelIndex: 0,
      file: baseName(f),
    }));
  }
  const { images, labels } = joinRecords(parts);
  const names = await readNames(`${dir}/batches.meta.txt`);
  return memoryDataset({
    name: `cifar10/${options.split}`,
    images,
    labels,
    classes: names && names.length === 10 ? names : CIFAR10_CLASSES,
    height: 32,
    width: 32,
    channels: 3,
  });
}

/** Reads CIFAR-100 (binary version): train.bin (50k) or test.bin (10k), fine or coarse labels. */
export async function readCifar100(options: Cifar100Options): Promise<ImageDataset> {
  const file = `${options.split}.bin`;
  const dir = resolveFolder(options.root, "cifar-100-binary", file);
  const kind = options.labels ?? "fine";
  const bytes = await readDataFile(
    `${dir}/${file}`,
    "CIFAR-100 batch",
    "run with --download, or point the data folder at the one holding cifar-100-binary",
  );
  const { images, labels } = parseCifarRecords(bytes, {
    dataset: "CIFAR-100",
    labelBytes: 2,
    classCounts: [20, 100],
    labelIndex: kind === "coarse" ? 0 : 1,
    file,
  });
  const names = await readNames(`${dir}/${kind}_label_names.txt`);
  return memoryDataset({
    name: `cifar100/${options.split}`,
    images,
    labels,
    classes: names && names.length === (kind === "coarse" ? 20 : 100) ? names : undefined,
    height: 32,
    width: 32,
    channels: 3,
  });
}
