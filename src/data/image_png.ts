/**
 * Checks a PNG before it is decoded: a well-formed IHDR, a size within the limit, and pixel data
 * (the IDAT chunks) that inflates to exactly what the declared size needs — so that a tiny file
 * claiming 20000x20000 pixels is refused before anything is allocated, and a file whose pixel data
 * is missing or cut short is refused instead of decoding as black.
 *
 * @module
 */

import zlib from "node:zlib";

/** The fields of a PNG's IHDR chunk. */
export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 gray, 2 RGB, 3 palette, 4 gray + alpha, 6 RGBA. */
  colorType: number;
  /** 0 none, 1 Adam7. */
  interlace: number;
}

/** Samples per pixel of each colour type. */
const SAMPLES: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Bit depths allowed for each colour type. */
const DEPTHS: Record<number, number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [
  0,
  1,
  1,
  2,
]];
/** The most a deflate stream can expand. */
const MAX_DEFLATE_RATIO = 1032;

/** Bytes of filtered pixel data (filter byte per row included) a PNG of `h` needs. */
export function pngRawBytes(h: PngHeader): number {
  const bits = SAMPLES[h.colorType] * h.bitDepth;
  const rows = (w: number, n: number) => (w > 0 && n > 0 ? n * (1 + Math.ceil((w * bits) / 8)) : 0);
  if (h.interlace === 0) return rows(h.width, h.height);
  let total = 0;
  for (const [x0, y0, dx, dy] of ADAM7) {
    total += rows(Math.ceil((h.width - x0) / dx), Math.ceil((h.height - y0) / dy));
  }
  return total;
}

/**
 * Validates a PNG's header and pixel data size; returns the header, or throws an Error whose
 * message says what is wrong (without the file name).
 */
export function checkPng(bytes: Uint8Array, maxPixels: number): PngHeader {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = (at: number) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 33 || type(12) !== "IHDR" || v.getUint32(8) !== 13) {
    throw new Error("no valid IHDR header (corrupt or truncated PNG)");
  }
  const h: PngHeader = {
    width: v.getUint32(16),
    height: v.getUint32(20),
    bitDepth: bytes[24],
    colorType: bytes[25],
    interlace: bytes[28],
  };
  if (h.width === 0 || h.height === 0 || h.width > 2 ** 31 - 1 || h.height > 2 ** 31 - 1) {
    throw new Error(`header declares an invalid size ${h.width}x${h.height} (corrupt PNG)`);
  }
  if (!DEPTHS[h.colorType]?.includes(h.bitDepth) || h.interlace > 1) {
    throw new Error(
      `header declares colour type ${h.colorType} at ${h.bitDepth} bits` +
        `${
          h.interlace > 1 ? `, interlace ${h.interlace}` : ""
        }, which PNG does not define (corrupt PNG)`,
    );
  }
  if (h.width * h.height > maxPixels) {
    throw new Error(
      `header declares ${h.width}x${h.height} pixels (${
        ((h.width * h.height) / 1e6).toFixed(1)
      } megapixels), above the limit of ${
        (maxPixels / 1e6).toFixed(1)
      } (decompression bomb or corrupt file?)`,
    );
  }
  const parts: Uint8Array[] = [];
  let compressed = 0, at = 8, cut = false, ended = false;
  while (at + 8 <= bytes.length) {
    const len = v.getUint32(at);
    const t = type(at + 4);
    const end = Math.min(at + 8 + len, bytes.length);
    cut = at + 12 + len > bytes.length;
    if (t === "IDAT") {
      parts.push(bytes.subarray(at + 8, end));
      compressed += end - at - 8;
    }
    ended = t === "IEND";
    if (ended || cut) break;
    at += 12 + len;
  }
  const need = pngRawBytes(h);
  const size = `${h.width}x${h.height}`;
  const early = ended ? "" : ", and the file ends before its IEND chunk (truncated PNG?)";
  if (compressed === 0) {
    throw new Error(`no pixel data (no IDAT chunk) for its ${size} pixels${early}`);
  }
  if (need > compressed * MAX_DEFLATE_RATIO + 1024) {
    throw new Error(
      `pixel data is missing: ${size} pixels need ${need} bytes, but its ${compressed} compressed ` +
        `bytes inflate to at most ${compressed * MAX_DEFLATE_RATIO} (truncated or corrupt PNG)`,
    );
  }
  const idat = new Uint8Array(compressed);
  let pos = 0;
  for (const p of parts) {
    idat.set(p, pos);
    pos += p.length;
  }
  let got: number;
  try {
    got = zlib.inflateSync(idat, {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      maxOutputLength: need,
    }).length;
  } catch (err) {
    if ((err as { code?: string }).code !== "ERR_BUFFER_TOO_LARGE") {
      throw new Error(`compressed pixel data is corrupt (${(err as Error).message})`);
    }
    got = need; // more than needed: extra data after the image, ignored as libpng does
  }
  if (got < need) {
    throw new Error(
      `pixel data is ${need - got} of ${need} bytes short for its ${size} pixels` +
        (ended ? " (truncated PNG?)" : early),
    );
  }
  return h;
}

/**
 * `bytes` without its tRNS chunk when the image is gray or RGB (a colour key: pixels of one colour
 * marked transparent). pngjs turns such pixels black; without alpha they keep their colour, as in
 * PIL's `convert("RGB")`. Palette transparency (also tRNS) does not touch colours and is kept.
 */
export function withoutColourKey(bytes: Uint8Array, h: PngHeader): Uint8Array {
  if (h.colorType !== 0 && h.colorType !== 2) return bytes;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keep: Uint8Array[] = [bytes.subarray(0, 8)];
  let at = 8, dropped = false;
  while (at + 12 <= bytes.length) {
    const end = Math.min(at + 12 + v.getUint32(at), bytes.length);
    const isTrns = String.fromCharCode(...bytes.subarray(at + 4, at + 8)) === "tRNS";
    if (isTrns) dropped = true;
    else keep.push(bytes.subarray(at, end));
    at = end;
  }
  if (!dropped) return bytes;
  keep.push(bytes.subarray(at));
  const out = new Uint8Array(keep.reduce((n, k) => n + k.length, 0));
  let pos = 0;
  for (const k of keep) {
    out.set(k, pos);
    pos += k.length;
  }
  return out;
}
