/**
 * Image folders: `root/<class>/<image>.{jpg,jpeg,png}` (ImageNet / Tiny-ImageNet layout; class
 * folders may nest, as Tiny-ImageNet's `train/<wnid>/images/`), or an unlabelled folder of images.
 * Decoded with `jpeg-js` and `pngjs`, optionally resized on load (antialiased bilinear), held in
 * memory or decoded on demand (`lazy`).
 *
 * @module
 */

// Full npm specifiers (not import-map names) so that mod.ts imports by URL without a config.
// @ts-types="npm:@types/pngjs@6.0.5"
// deno-lint-ignore no-import-prefix -- mod.ts must import by URL without the project's import map
import { PNG } from "npm:pngjs@7.0.0";
// deno-lint-ignore no-import-prefix -- as above
import jpeg from "npm:jpeg-js@0.4.4";
import { Buffer } from "node:buffer";
import { DataError } from "../errors.ts";
import { resizeU8 } from "../../image/resize.ts";
import { checkReadArgs, type ImageDataset, memoryDataset } from "./dataset.ts";

const IMAGE_EXT = /\.(jpe?g|png)$/i;

/** Options of {@link readImageFolder}. */
export interface ImageFolderOptions {
  /** The folder: class subfolders of images, or images directly (unlabelled). */
  root: string;
  /** Resize every image to this size on load (a number means square). Without it all images must
   * have the same size. */
  size?: number | { height: number; width: number };
  /** Channels of the result: 3 (default, RGB) or 1 (luma). */
  channels?: 1 | 3;
  /** Decode images when they are read instead of at load time (for folders that do not fit). */
  lazy?: boolean;
}

/** A decoded image, u8 HWC. */
export interface DecodedImage {
  height: number;
  width: number;
  channels: number;
  data: Uint8Array;
}

/**
 * Decodes a JPEG or PNG file (chosen by its magic bytes) to u8 HWC with `channels` channels
 * (alpha dropped; 1 channel = ITU-R 601 luma, as PIL's `convert("L")`).
 */
export function decodeImage(bytes: Uint8Array, file: string, channels: 1 | 3 = 3): DecodedImage {
  let rgba: Uint8Array, width: number, height: number;
  const isJpeg = bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8;
  const isPng = bytes.length > 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e &&
    bytes[3] === 0x47;
  if (!isJpeg && !isPng) {
    throw new DataError(
      `Cannot decode image '${file}': not a JPEG or PNG file (undecodable image; remove it from the folder)`,
      { file },
    );
  }
  try {
    if (isJpeg) {
      const d = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
      rgba = d.data;
      width = d.width;
      height = d.height;
    } else {
      const d = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      rgba = new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength);
      width = d.width;
      height = d.height;
    }
  } catch (err) {
    throw new DataError(
      `Cannot decode image '${file}': ${(err as Error).message} (corrupt or truncated ${
        isJpeg ? "JPEG" : "PNG"
      }; remove or replace it)`,
      { file, cause: err },
    );
  }
  const n = width * height;
  if (!(n > 0) || rgba.length < 4 * n) {
    throw new DataError(`Cannot decode image '${file}': decoder returned no pixels`, { file });
  }
  const data = new Uint8Array(n * channels);
  for (let p = 0; p < n; p++) {
    const r = rgba[4 * p], g = rgba[4 * p + 1], b = rgba[4 * p + 2];
    if (channels === 3) {
      data[3 * p] = r;
      data[3 * p + 1] = g;
      data[3 * p + 2] = b;
    } else {
      data[p] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >>> 16;
    }
  }
  return { height, width, channels, data };
}

/** Image files under `dir`, recursively, sorted by path. */
function listImages(dir: string): string[] {
  const out: string[] = [];
  const entries = [...Deno.readDirSync(dir)].sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of entries) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...listImages(path));
    else if ((e.isFile || e.isSymlink) && IMAGE_EXT.test(e.name)) out.push(path);
  }
  return out;
}

/** The files of a folder and their labels (classes = sorted subfolder names, as torchvision). */
export function scanImageFolder(
  root: string,
): { files: string[]; labels?: Int32Array; classes?: string[] } {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(root)].sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch (err) {
    throw new DataError(`Cannot read image folder '${root}': ${(err as Error).message}`, {
      file: root,
      cause: err,
    });
  }
  const classes: string[] = [];
  const files: string[] = [];
  const labels: number[] = [];
  for (const e of entries) {
    if (!e.isDirectory) continue;
    const inClass = listImages(`${root}/${e.name}`);
    if (inClass.length === 0) continue;
    for (const f of inClass) {
      files.push(f);
      labels.push(classes.length);
    }
    classes.push(e.name);
  }
  if (files.length > 0) return { files, labels: Int32Array.from(labels), classes };
  const flat = entries.filter((e) => !e.isDirectory && IMAGE_EXT.test(e.name))
    .map((e) => `${root}/${e.name}`);
  if (flat.length === 0) {
    throw new DataError(
      `Cannot read image folder '${root}': no .jpg, .jpeg or .png images found (expected root/<class>/<image> or root/<image>)`,
      { file: root },
    );
  }
  return { files: flat };
}

/** Reads an image folder as a dataset of u8 NHWC images of one size. */
export function readImageFolder(options: ImageFolderOptions): ImageDataset {
  const { root, lazy = false } = options;
  const channels = options.channels ?? 3;
  const { files, labels, classes } = scanImageFolder(root);
  const want = typeof options.size === "number"
    ? { height: options.size, width: options.size }
    : options.size;
  const load = (i: number, expect?: { height: number; width: number }): DecodedImage => {
    let bytes: Uint8Array;
    try {
      bytes = Deno.readFileSync(files[i]);
    } catch (err) {
      throw new DataError(`Cannot read image '${files[i]}': ${(err as Error).message}`, {
        file: files[i],
        cause: err,
      });
    }
    const img = decodeImage(bytes, files[i], channels);
    if (want && (img.height !== want.height || img.width !== want.width)) {
      return {
        height: want.height,
        width: want.width,
        channels,
        data: resizeU8(img.data, img.height, img.width, channels, want.height, want.width),
      };
    }
    if (expect && (img.height !== expect.height || img.width !== expect.width)) {
      throw new DataError(
        `Cannot read image '${
          files[i]
        }': it is ${img.width}x${img.height}, the folder's first image is ${expect.width}x${expect.height} (pass a size to resize on load)`,
        { file: files[i] },
      );
    }
    return img;
  };
  const first = load(0);
  const shape = { height: first.height, width: first.width };
  const bytes = first.height * first.width * channels;
  const name = `folder:${root}`;
  if (!lazy) {
    const images = new Uint8Array(files.length * bytes);
    images.set(first.data, 0);
    for (let i = 1; i < files.length; i++) images.set(load(i, shape).data, i * bytes);
    return memoryDataset({ name, images, labels, classes, ...shape, channels });
  }
  const ds: ImageDataset = {
    name,
    length: files.length,
    ...shape,
    channels,
    labels,
    classes,
    readInto(indices, out) {
      checkReadArgs(ds, indices, out);
      for (let k = 0; k < indices.length; k++) out.set(load(indices[k], shape).data, k * bytes);
    },
    close() {},
  };
  return ds;
}
