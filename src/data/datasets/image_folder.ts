/**
 * Image folders: `root/<class>/<image>` (ImageNet / Tiny-ImageNet layout; class folders may nest,
 * as Tiny-ImageNet's `train/<wnid>/images/`), or a flat folder of images (unlabelled). JPEG, PNG and
 * WebP are decoded (see `../image_decode.ts`), optionally resized on load (antialiased bilinear),
 * held in memory or decoded on demand (`lazy`).
 *
 * No image is ever skipped silently: files in other image formats (GIF, BMP, TIFF, HEIC, ...) are
 * refused by name, and only files that are not images (by name and content: `.txt`, `.DS_Store`,
 * hidden files and folders) are skipped, and counted.
 *
 * @module
 */

import { DataError } from "../errors.ts";
import { resizeU8 } from "../../image/resize.ts";
import { type DecodedImage, decodeImage } from "../image_decode.ts";
import {
  extensionOf,
  sniffImageFormat,
  SUPPORTED_IMAGE_EXTENSIONS,
  SUPPORTED_IMAGE_FORMATS,
  UNSUPPORTED_IMAGE_EXTENSIONS,
} from "../image_info.ts";
import { checkReadArgs, type ImageDataset, memoryDataset } from "./dataset.ts";

export { type DecodedImage, decodeImage, type DecodeLimits } from "../image_decode.ts";

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
  /** Refuse images with more pixels than this (default: PIL's limit, about 89 megapixels). */
  maxPixels?: number;
  /** Where the note about skipped non-image files goes (default: stderr). */
  log?: (line: string) => void;
}

/** What a folder holds: its images (sorted by path), their classes, and what was skipped. */
export interface ImageFolderScan {
  /** Image paths (`root/...`), class by class, sorted by path within a class. */
  files: string[];
  /** Class index per image, when the folder has class subfolders. */
  labels?: Int32Array;
  /** Class names (sorted subfolder names, as torchvision's ImageFolder), when labelled. */
  classes?: string[];
  /** Files that are not images (by name and content), and hidden files and folders: skipped. */
  skipped: string[];
}

/** How a directory entry counts in a scan. */
type Kind = { image: true } | { unsupported: string } | { skip: true };

/** First 16 bytes of a file (fewer when it is shorter; none when it cannot be read). */
function head(path: string): Uint8Array {
  try {
    const f = Deno.openSync(path, { read: true });
    try {
      const b = new Uint8Array(16);
      const n = f.readSync(b) ?? 0;
      return b.subarray(0, n);
    } finally {
      f.close();
    }
  } catch {
    return new Uint8Array(0);
  }
}

/** Classifies a file by name, then (for names that say nothing) by its magic bytes. */
function classify(path: string, name: string): Kind {
  if (name.startsWith(".")) return { skip: true }; // .DS_Store, ._x.jpg (AppleDouble), .gitkeep
  const ext = extensionOf(name);
  if (Object.hasOwn(SUPPORTED_IMAGE_EXTENSIONS, ext)) return { image: true };
  if (Object.hasOwn(UNSUPPORTED_IMAGE_EXTENSIONS, ext)) {
    return { unsupported: UNSUPPORTED_IMAGE_EXTENSIONS[ext] };
  }
  const format = sniffImageFormat(head(path));
  if (format === undefined) return { skip: true };
  return (SUPPORTED_IMAGE_FORMATS as readonly string[]).includes(format)
    ? { image: true }
    : { unsupported: format };
}

/** A folder's entries sorted by name, directories resolved through symlinks. */
function entries(dir: string): { name: string; path: string; isDir: boolean }[] {
  let list: Deno.DirEntry[];
  try {
    list = [...Deno.readDirSync(dir)];
  } catch (err) {
    throw new DataError(`Cannot read image folder '${dir}': ${(err as Error).message}`, {
      file: dir,
      cause: err,
    });
  }
  return list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((e) => {
    const path = `${dir}/${e.name}`;
    let isDir = e.isDirectory;
    if (e.isSymlink) {
      try {
        isDir = Deno.statSync(path).isDirectory;
      } catch {
        isDir = false; // a dangling link: classified (and skipped) as a file
      }
    }
    return { name: e.name, path, isDir };
  });
}

interface Found {
  images: string[];
  unsupported: { path: string; format: string }[];
  skipped: string[];
}

function walk(dir: string, found: Found, depth: number): void {
  if (depth > 32) {
    throw new DataError(
      `Cannot read image folder '${dir}': folders nest deeper than 32 levels (a symlink loop?)`,
      { file: dir },
    );
  }
  for (const e of entries(dir)) {
    if (e.isDir) {
      if (e.name.startsWith(".")) found.skipped.push(`${e.path}/`);
      else walk(e.path, found, depth + 1);
      continue;
    }
    const k = classify(e.path, e.name);
    if ("image" in k) found.images.push(e.path);
    else if ("unsupported" in k) {
      found.unsupported.push({ path: e.path, format: k.unsupported });
    } else found.skipped.push(e.path);
  }
}

const examples = (paths: string[]) =>
  paths.slice(0, 3).map((p) => `'${p}'`).join(", ") + (paths.length > 3 ? ", ..." : "");

/**
 * The images of a folder and their labels (classes = sorted subfolder names, as torchvision).
 * Throws a {@link DataError} when the folder cannot be read, holds no image, holds images in
 * unsupported formats (naming them and the supported formats), or mixes images directly inside
 * with class subfolders.
 */
export function scanImageFolder(root: string): ImageFolderScan {
  const top = entries(root);
  const flat: Found = { images: [], unsupported: [], skipped: [] };
  const classes: string[] = [];
  const files: string[] = [];
  const labels: number[] = [];
  const all: Found = { images: [], unsupported: [], skipped: [] };
  for (const e of top) {
    if (!e.isDir) {
      const k = classify(e.path, e.name);
      if ("image" in k) flat.images.push(e.path);
      else if ("unsupported" in k) all.unsupported.push({ path: e.path, format: k.unsupported });
      else all.skipped.push(e.path);
      continue;
    }
    if (e.name.startsWith(".")) {
      all.skipped.push(`${e.path}/`);
      continue;
    }
    const inClass: Found = { images: [], unsupported: all.unsupported, skipped: all.skipped };
    walk(e.path, inClass, 1);
    if (inClass.images.length === 0) continue;
    for (const f of inClass.images) {
      files.push(f);
      labels.push(classes.length);
    }
    classes.push(e.name);
  }
  const where = `Cannot read image folder '${root}'`;
  if (all.unsupported.length > 0) {
    const n = all.unsupported.length;
    const list = all.unsupported.slice(0, 3).map((u) => `'${u.path}' (${u.format})`).join(", ");
    throw new DataError(
      `${where}: ${n} image${n > 1 ? "s are" : " is"} in a format that is not supported: ${list}${
        n > 3 ? ", ..." : ""
      }. Supported formats: ${SUPPORTED_IMAGE_FORMATS.join(", ")}; convert ${
        n > 1 ? "them" : "it"
      } (e.g. ImageMagick: mogrify -format png <files>) or move ${
        n > 1 ? "them" : "it"
      } out of the folder`,
      { file: all.unsupported[0].path },
    );
  }
  if (files.length > 0 && flat.images.length > 0) {
    throw new DataError(
      `${where}: it holds ${flat.images.length} image(s) directly (${examples(flat.images)}) ` +
        `beside class subfolders (${classes.slice(0, 3).join(", ")}${
          classes.length > 3 ? ", ..." : ""
        }); ` +
        `move every image into a class folder, or use a folder without subfolders for unlabelled images`,
      { file: root },
    );
  }
  if (files.length > 0) {
    return { files, labels: Int32Array.from(labels), classes, skipped: all.skipped };
  }
  if (flat.images.length === 0) {
    throw new DataError(
      `${where}: no JPEG, PNG or WebP images found (expected root/<class>/<image> or root/<image>)` +
        (all.skipped.length > 0
          ? `; ${all.skipped.length} other file(s) skipped (${examples(all.skipped)})`
          : ""),
      { file: root },
    );
  }
  return { files: flat.images, skipped: all.skipped };
}

/** Reads an image folder as a dataset of u8 NHWC images of one size. */
export function readImageFolder(options: ImageFolderOptions): ImageDataset {
  const { root, lazy = false } = options;
  const channels = options.channels ?? 3;
  const { files, labels, classes, skipped } = scanImageFolder(root);
  if (skipped.length > 0) {
    (options.log ?? ((line: string) => console.error(line)))(
      `image folder '${root}': skipped ${skipped.length} file(s) that are not images (${
        examples(skipped)
      })`,
    );
  }
  const limits = { maxPixels: options.maxPixels };
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
    const img = decodeImage(bytes, files[i], channels, limits);
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
