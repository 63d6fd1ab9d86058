/**
 * STL-10, binary version (https://cs.stanford.edu/~acoates/stl10/): `stl10_binary/{train,test,
 * unlabeled}_X.bin` (96x96x3 images, each stored channel by channel, every channel column-major) and
 * `{train,test}_y.bin` (one label byte 1..10 per image). The unlabeled split (100k images, 2.8 GB)
 * is read lazily from disk; `train+unlabeled` (105k) is the pretraining split.
 *
 * @module
 */

import { DataError } from "../errors.ts";
import { checkReadArgs, concatDatasets, type ImageDataset, memoryDataset } from "./dataset.ts";
import { firstExisting, readDataFile } from "./files.ts";

const SIDE = 96;
const PLANE = SIDE * SIDE;
/** Bytes of one STL-10 image. */
export const STL10_IMAGE_BYTES = 3 * PLANE;

/** STL-10 class names (used when `class_names.txt` is absent). */
export const STL10_CLASSES: readonly string[] = [
  "airplane",
  "bird",
  "car",
  "cat",
  "deer",
  "dog",
  "horse",
  "monkey",
  "ship",
  "truck",
];

/** STL-10 splits; `train+unlabeled` is the 105k-image pretraining split. */
export type Stl10Split = "train" | "test" | "unlabeled" | "train+unlabeled";

/** Options of {@link readStl10}. */
export interface Stl10Options {
  /** Folder holding `stl10_binary/`, or that folder itself. */
  root: string;
  split: Stl10Split;
  /** Read images from disk on demand instead of loading them (default: only for unlabeled). */
  lazy?: boolean;
}

/**
 * Converts STL-10 images from the file layout (channel planes, column-major) to u8 NHWC.
 * `src` holds whole images; `dst` receives as many.
 */
export function stl10ToNhwc(src: Uint8Array, dst: Uint8Array): void {
  const n = src.length / STL10_IMAGE_BYTES;
  for (let i = 0; i < n; i++) {
    const s = i * STL10_IMAGE_BYTES;
    for (let c = 0; c < 3; c++) {
      const plane = s + c * PLANE;
      for (let col = 0; col < SIDE; col++) {
        const colBase = plane + col * SIDE;
        for (let row = 0; row < SIDE; row++) {
          dst[s + (row * SIDE + col) * 3 + c] = src[colBase + row];
        }
      }
    }
  }
}

function checkImageFileSize(size: number, file: string): number {
  if (size === 0) {
    throw new DataError(
      `Cannot read STL-10 images '${file}': file is empty (truncated download?)`,
      {
        file,
      },
    );
  }
  const rem = size % STL10_IMAGE_BYTES;
  if (rem !== 0) {
    throw new DataError(
      `Cannot read STL-10 images '${file}': file is ${
        STL10_IMAGE_BYTES - rem
      } bytes short of a whole number of 96x96x3 images (truncated download?)`,
      { file },
    );
  }
  return size / STL10_IMAGE_BYTES;
}

async function readLabels(path: string, count: number, hint: string): Promise<Int32Array> {
  const bytes = await readDataFile(path, "STL-10 labels", hint);
  if (bytes.length !== count) {
    throw new DataError(
      `Cannot read STL-10 labels '${path}': ${bytes.length} labels for ${count} images (truncated download?)`,
      { file: path },
    );
  }
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const v = bytes[i];
    if (v < 1 || v > 10) {
      throw new DataError(
        `Cannot read STL-10 labels '${path}': label ${i} is ${v}, expected 1..10 (not an STL-10 label file?)`,
        { file: path },
      );
    }
    labels[i] = v - 1;
  }
  return labels;
}

/** A lazy dataset over an STL-10 `*_X.bin` file: each read seeks to the image and transposes it. */
function lazyStl10Images(
  path: string,
  name: string,
  labels: Int32Array | undefined,
  classes: readonly string[],
): ImageDataset {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (err) {
    throw new DataError(
      `Cannot read STL-10 images '${path}': ${
        err instanceof Deno.errors.NotFound ? "file not found (run with --download)" : err
      }`,
      { file: path, cause: err },
    );
  }
  let length: number;
  try {
    length = checkImageFileSize(file.statSync().size, path);
  } catch (err) {
    file.close();
    throw err;
  }
  const raw = new Uint8Array(STL10_IMAGE_BYTES);
  let open = true;
  const ds: ImageDataset = {
    name,
    length,
    height: SIDE,
    width: SIDE,
    channels: 3,
    labels,
    classes,
    readInto(indices, out) {
      if (!open) throw new DataError(`Cannot read ${name}: the dataset was closed`, { file: path });
      checkReadArgs(ds, indices, out);
      for (let k = 0; k < indices.length; k++) {
        file.seekSync(indices[k] * STL10_IMAGE_BYTES, Deno.SeekMode.Start);
        let got = 0;
        while (got < raw.length) {
          const r = file.readSync(raw.subarray(got));
          if (r === null || r === 0) {
            throw new DataError(`Cannot read STL-10 images '${path}': file shrank while reading`, {
              file: path,
            });
          }
          got += r;
        }
        stl10ToNhwc(raw, out.subarray(k * STL10_IMAGE_BYTES, (k + 1) * STL10_IMAGE_BYTES));
      }
    },
    close() {
      if (open) file.close();
      open = false;
    },
  };
  return ds;
}

async function readPart(
  dir: string,
  part: "train" | "test" | "unlabeled",
  lazy: boolean,
  classes: readonly string[],
): Promise<ImageDataset> {
  const hint = "run with --download, or point the data folder at the one holding stl10_binary";
  const xPath = `${dir}/${part}_X.bin`;
  const name = `stl10/${part}`;
  let labels: Int32Array | undefined;
  if (part !== "unlabeled") {
    const size = (() => {
      try {
        return Deno.statSync(xPath).size;
      } catch {
        return -1;
      }
    })();
    if (size >= 0) {
      labels = await readLabels(`${dir}/${part}_y.bin`, checkImageFileSize(size, xPath), hint);
    }
  }
  if (lazy) return lazyStl10Images(xPath, name, labels, classes);
  const raw = await readDataFile(xPath, "STL-10 images", hint);
  const n = checkImageFileSize(raw.length, xPath);
  const images = new Uint8Array(n * STL10_IMAGE_BYTES);
  stl10ToNhwc(raw, images);
  return memoryDataset({ name, images, labels, classes, height: SIDE, width: SIDE, channels: 3 });
}

/** Reads an STL-10 split; labels are 0..9 (`-1` for the unlabeled images of `train+unlabeled`). */
export async function readStl10(options: Stl10Options): Promise<ImageDataset> {
  const { root, split } = options;
  const dir = firstExisting([`${root}/stl10_binary`]) ??
    (firstExisting([`${root}/train_X.bin`, `${root}/unlabeled_X.bin`])
      ? root
      : `${root}/stl10_binary`);
  let classes = STL10_CLASSES;
  try {
    const text = new TextDecoder().decode(await Deno.readFile(`${dir}/class_names.txt`));
    const names = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s.length > 0);
    if (names.length === 10) classes = names;
  } catch {
    // keep the built-in names
  }
  if (split === "train+unlabeled") {
    const train = await readPart(dir, "train", options.lazy ?? false, classes);
    try {
      const unlabeled = await readPart(dir, "unlabeled", options.lazy ?? true, classes);
      return concatDatasets("stl10/train+unlabeled", [train, unlabeled]);
    } catch (err) {
      train.close();
      throw err;
    }
  }
  return await readPart(dir, split, options.lazy ?? split === "unlabeled", classes);
}
