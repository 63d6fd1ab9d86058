/**
 * Image formats by content and by file name, and image sizes read from headers alone (JPEG SOF,
 * PNG IHDR, WebP VP8/VP8L/VP8X) — what a folder scan, a size survey and the decoders' checks need
 * before any pixel is decoded.
 *
 * @module
 */

/** Formats the decoders read. */
export const SUPPORTED_IMAGE_FORMATS = ["JPEG", "PNG", "WebP"] as const;

/** A format the decoders read. */
export type SupportedImageFormat = typeof SUPPORTED_IMAGE_FORMATS[number];

/** File extensions (lower case, no dot) of the supported formats. */
export const SUPPORTED_IMAGE_EXTENSIONS: Readonly<Record<string, SupportedImageFormat>> = {
  jpg: "JPEG",
  jpeg: "JPEG",
  jpe: "JPEG",
  jfif: "JPEG",
  png: "PNG",
  webp: "WebP",
};

/** Extensions of image formats that are recognised but not decoded, with the format's name. */
export const UNSUPPORTED_IMAGE_EXTENSIONS: Readonly<Record<string, string>> = {
  gif: "GIF",
  bmp: "BMP",
  dib: "BMP",
  tif: "TIFF",
  tiff: "TIFF",
  heic: "HEIC",
  heif: "HEIF",
  avif: "AVIF",
  jxl: "JPEG XL",
  jp2: "JPEG 2000",
  j2k: "JPEG 2000",
  jpx: "JPEG 2000",
  ico: "ICO",
  psd: "PSD",
  svg: "SVG",
  ppm: "PPM",
  pgm: "PGM",
  pbm: "PBM",
  pnm: "PNM",
  qoi: "QOI",
  tga: "TGA",
  exr: "OpenEXR",
  hdr: "Radiance HDR",
  dng: "DNG (camera raw)",
  cr2: "CR2 (camera raw)",
  cr3: "CR3 (camera raw)",
  nef: "NEF (camera raw)",
  arw: "ARW (camera raw)",
  orf: "ORF (camera raw)",
  rw2: "RW2 (camera raw)",
  raf: "RAF (camera raw)",
};

/** The lower-case extension of a file name ("" when none). */
export function extensionOf(name: string): string {
  const base = name.slice(name.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot <= 0 ? "" : base.slice(dot + 1).toLowerCase();
}

const ascii = (b: Uint8Array, from: number, len: number) =>
  String.fromCharCode(...b.subarray(from, from + len));

/**
 * The image format of `bytes` by its magic number: a supported format, the name of another image
 * format (GIF, BMP, TIFF, HEIC, AVIF, ...), or undefined when the bytes are not a known image.
 * Needs the first 16 bytes.
 */
export function sniffImageFormat(bytes: Uint8Array): string | undefined {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "JPEG";
  if (b.length >= 8 && ascii(b, 1, 3) === "PNG" && b[0] === 0x89) return "PNG";
  if (b.length >= 12 && ascii(b, 0, 4) === "RIFF" && ascii(b, 8, 4) === "WEBP") return "WebP";
  if (b.length >= 6 && (ascii(b, 0, 6) === "GIF87a" || ascii(b, 0, 6) === "GIF89a")) return "GIF";
  if (b.length >= 2 && ascii(b, 0, 2) === "BM") return "BMP";
  if (b.length >= 4 && (ascii(b, 0, 4) === "II*\0" || ascii(b, 0, 4) === "MM\0*")) return "TIFF";
  if (b.length >= 12 && ascii(b, 4, 4) === "ftyp") {
    const brand = ascii(b, 8, 4);
    if (brand.startsWith("avi")) return "AVIF";
    if (["heic", "heix", "heim", "heis", "hevc", "hevx"].includes(brand)) return "HEIC";
    if (["mif1", "msf1"].includes(brand)) return "HEIF";
  }
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0x0a) return "JPEG XL";
  if (b.length >= 12 && ascii(b, 4, 8) === "JXL \r\n\x87\n") return "JPEG XL";
  if (b.length >= 12 && ascii(b, 4, 8) === "jP  \r\n\x87\n") return "JPEG 2000";
  if (b.length >= 4 && ascii(b, 0, 4) === "8BPS") return "PSD";
  if (b.length >= 4 && ascii(b, 0, 4) === "qoif") return "QOI";
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0) return "ICO";
  return undefined;
}

/** Width and height of an image from its header. */
export interface ImageInfo {
  format: SupportedImageFormat;
  width: number;
  height: number;
}

/** Why a header could not give a size: more bytes are needed, or the header is malformed. */
export class ImageHeaderError extends Error {
  constructor(message: string, readonly needMore = false) {
    super(message);
    this.name = "ImageHeaderError";
  }
}

function jpegInfo(b: Uint8Array): ImageInfo {
  let at = 2;
  for (;;) {
    if (at + 4 > b.length) throw new ImageHeaderError("no frame header (SOF) found", true);
    if (b[at] !== 0xff) throw new ImageHeaderError(`bad marker at byte ${at}`);
    const marker = b[at + 1];
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      at += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) {
      throw new ImageHeaderError("image data starts before any frame header (SOF)");
    }
    const len = (b[at + 2] << 8) | b[at + 3];
    if (len < 2) throw new ImageHeaderError(`segment at byte ${at} has length ${len}`);
    const sof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 &&
      marker !== 0xcc;
    if (sof) {
      if (at + 9 > b.length) throw new ImageHeaderError("frame header is cut short", true);
      const height = (b[at + 5] << 8) | b[at + 6];
      const width = (b[at + 7] << 8) | b[at + 8];
      return { format: "JPEG", width, height };
    }
    at += 2 + len;
  }
}

function pngInfo(b: Uint8Array): ImageInfo {
  if (b.length < 24) throw new ImageHeaderError("header is cut short", true);
  if (ascii(b, 12, 4) !== "IHDR") throw new ImageHeaderError("first chunk is not IHDR");
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { format: "PNG", width: v.getUint32(16, false), height: v.getUint32(20, false) };
}

function webpInfo(b: Uint8Array): ImageInfo {
  if (b.length < 30) throw new ImageHeaderError("header is cut short", true);
  const kind = ascii(b, 12, 4);
  const u16 = (at: number) => b[at] | (b[at + 1] << 8);
  const u24 = (at: number) => b[at] | (b[at + 1] << 8) | (b[at + 2] << 16);
  if (kind === "VP8 ") {
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) {
      throw new ImageHeaderError("VP8 frame has no start code");
    }
    return { format: "WebP", width: u16(26) & 0x3fff, height: u16(28) & 0x3fff };
  }
  if (kind === "VP8L") {
    if (b[20] !== 0x2f) throw new ImageHeaderError("VP8L signature missing");
    const bits = b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24);
    return { format: "WebP", width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (kind === "VP8X") return { format: "WebP", width: u24(24) + 1, height: u24(27) + 1 };
  throw new ImageHeaderError(`unknown WebP chunk '${kind}'`);
}

/**
 * Format, width and height of a JPEG, PNG or WebP from its first bytes (a JPEG's frame header can
 * come after large metadata: read more when {@link ImageHeaderError.needMore} is set). Throws an
 * {@link ImageHeaderError} for other content or a malformed header.
 */
export function readImageInfo(bytes: Uint8Array): ImageInfo {
  const format = sniffImageFormat(bytes);
  if (format === "JPEG") return jpegInfo(bytes);
  if (format === "PNG") return pngInfo(bytes);
  if (format === "WebP") return webpInfo(bytes);
  throw new ImageHeaderError(
    format ? `${format} is not a supported format` : "not a JPEG, PNG or WebP file",
    bytes.length < 16,
  );
}

/**
 * {@link readImageInfo} of a file, reading only as much as its header needs (64 KiB, more for a
 * JPEG with large metadata). Throws an {@link ImageHeaderError} or a file system error.
 */
export function readImageInfoFile(path: string): ImageInfo {
  const file = Deno.openSync(path, { read: true });
  try {
    let buf = new Uint8Array(0);
    let chunk = 1 << 16;
    for (;;) {
      const more = new Uint8Array(chunk);
      let got = 0;
      while (got < chunk) {
        const n = file.readSync(more.subarray(got));
        if (n === null) break;
        got += n;
      }
      const next = new Uint8Array(buf.length + got);
      next.set(buf);
      next.set(more.subarray(0, got), buf.length);
      buf = next;
      try {
        return readImageInfo(buf);
      } catch (err) {
        if (!(err instanceof ImageHeaderError && err.needMore) || got < chunk) throw err;
      }
      chunk *= 4;
    }
  } finally {
    file.close();
  }
}
