/**
 * Decoding of image files to u8 HWC: JPEG (`jpeg-js`), PNG (`pngjs`, after {@link checkPng}) and
 * WebP (libwebp in WebAssembly). The format is chosen by content, not by file name. Every declared
 * size is checked against a pixel limit before anything is allocated; truncated or corrupt files
 * are refused, never decoded as partly black; other image formats are refused by name.
 *
 * Conversions: alpha is dropped (the colour channels are kept as stored, like PIL's
 * `convert("RGB")`); gray and palette images are expanded to RGB; 16-bit PNG samples are scaled to
 * 8 bits (pngjs: `round(v * 255 / 65535)`); 1 channel is ITU-R 601 luma, as PIL's `convert("L")`.
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
import { DataError } from "./errors.ts";
import {
  ImageHeaderError,
  readImageInfo,
  sniffImageFormat,
  SUPPORTED_IMAGE_FORMATS,
} from "./image_info.ts";
import { checkPng, withoutColourKey } from "./image_png.ts";
import { decodeWebpRgba, isAnimatedWebp } from "./image_webp.ts";

/** A decoded image, u8 HWC. */
export interface DecodedImage {
  height: number;
  width: number;
  channels: number;
  data: Uint8Array;
}

/** Limits of {@link decodeImage}. */
export interface DecodeLimits {
  /** Refuse images with more pixels than this (default 89,478,485: PIL's `MAX_IMAGE_PIXELS`). */
  maxPixels?: number;
}

/** PIL's default `Image.MAX_IMAGE_PIXELS`: about 0.25 GiB of 24-bit pixels. */
export const DEFAULT_MAX_PIXELS = 89_478_485;

const SUPPORTED = SUPPORTED_IMAGE_FORMATS.join(", ");

/** The message for a file in an image format that is not decoded. */
export function unsupportedFormatMessage(file: string, format: string): string {
  return `Cannot decode image '${file}': it is a ${format} image, a format that is not supported ` +
    `(supported: ${SUPPORTED}); convert it (e.g. ImageMagick: convert '${file}' out.png) or remove it`;
}

/**
 * Decodes a JPEG, PNG or WebP file (chosen by its content) to u8 HWC with `channels` channels.
 * Throws a {@link DataError} naming `file` for another format, a size above the limit, or a
 * corrupt or truncated file.
 */
export function decodeImage(
  bytes: Uint8Array,
  file: string,
  channels: 1 | 3 = 3,
  limits: DecodeLimits = {},
): DecodedImage {
  const maxPixels = limits.maxPixels ?? DEFAULT_MAX_PIXELS;
  const format = sniffImageFormat(bytes);
  if (format === undefined) {
    throw new DataError(
      `Cannot decode image '${file}': not a JPEG, PNG or WebP file (unrecognised content; ` +
        `remove it from the folder)`,
      { file },
    );
  }
  if (!(SUPPORTED_IMAGE_FORMATS as readonly string[]).includes(format)) {
    throw new DataError(unsupportedFormatMessage(file, format), { file });
  }
  const corrupt = (why: string, cause?: unknown) =>
    new DataError(
      `Cannot decode image '${file}': ${why} (corrupt or truncated ${format}; remove or replace it)`,
      { file, cause },
    );
  let width: number, height: number;
  try {
    ({ width, height } = readImageInfo(bytes));
  } catch (err) {
    if (err instanceof ImageHeaderError) throw corrupt(err.message, err);
    throw err;
  }
  if (!(width > 0 && height > 0)) throw corrupt(`header declares a ${width}x${height} image`);
  if (width * height > maxPixels) {
    throw new DataError(
      `Cannot decode image '${file}': its header declares ${width}x${height} pixels (${
        (width * height / 1e6).toFixed(1)
      } megapixels), above the limit of ${
        (maxPixels / 1e6).toFixed(1)
      } (decompression bomb or corrupt file?)`,
      { file },
    );
  }
  let rgba: Uint8Array;
  if (format === "PNG") {
    let png: Uint8Array;
    try {
      png = withoutColourKey(bytes, checkPng(bytes, maxPixels));
    } catch (err) {
      throw new DataError(`Cannot decode image '${file}': ${(err as Error).message}`, {
        file,
        cause: err,
      });
    }
    try {
      const d = PNG.sync.read(Buffer.from(png.buffer, png.byteOffset, png.byteLength));
      rgba = new Uint8Array(d.data.buffer, d.data.byteOffset, d.data.byteLength);
    } catch (err) {
      throw corrupt((err as Error).message, err);
    }
  } else if (format === "JPEG") {
    try {
      const d = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: true,
        maxResolutionInMP: maxPixels / 1e6,
        maxMemoryUsageInMB: Math.max(512, Math.ceil((maxPixels * 8) / 2 ** 20)),
      });
      rgba = d.data;
    } catch (err) {
      throw corrupt((err as Error).message, err);
    }
  } else {
    if (isAnimatedWebp(bytes)) {
      throw new DataError(unsupportedFormatMessage(file, "animated WebP"), { file });
    }
    const d = decodeWebpRgba(bytes);
    if (!d) throw corrupt("libwebp could not decode it");
    rgba = d.rgba;
  }
  const n = width * height;
  if (rgba.length !== 4 * n) {
    throw corrupt(`decoder returned ${rgba.length / 4} pixels for ${width}x${height}`);
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
