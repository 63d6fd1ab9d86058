/**
 * Test helpers that build hostile files cheaply: a gzip "bomb" (a small, valid gzip that inflates to
 * gigabytes) and raw PNG chunks (for PNGs that lie about their size or miss pixel data).
 */
import zlib from "node:zlib";

const MIB = 1 << 20;

function le32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * A valid gzip file of `prefix` followed by `zeroMiB` MiB of zeros, built from one deflated MiB
 * repeated (each ends in a full flush, so the copies are independent): about 1 KB per MiB.
 */
export function gzipBomb(prefix: Uint8Array, zeroMiB: number): Uint8Array {
  const flush = { finishFlush: zlib.constants.Z_FULL_FLUSH, level: 9 };
  const zeros = new Uint8Array(MIB);
  const head = new Uint8Array(zlib.deflateRawSync(prefix, flush));
  const block = new Uint8Array(zlib.deflateRawSync(zeros, flush));
  let crc = zlib.crc32(prefix);
  for (let i = 0; i < zeroMiB; i++) crc = zlib.crc32(zeros, crc);
  const size = (prefix.length + zeroMiB * MIB) % 2 ** 32;
  return concat([
    Uint8Array.of(0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff),
    head,
    ...new Array(zeroMiB).fill(block),
    Uint8Array.of(0x03, 0x00), // final empty block
    le32(crc),
    le32(size),
  ]);
}

/** One PNG chunk: length, type, data, CRC. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const t = new TextEncoder().encode(type);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, data.length, false);
  const crc = new Uint8Array(4);
  new DataView(crc.buffer).setUint32(0, zlib.crc32(concat([t, data])), false);
  return concat([len, t, data, crc]);
}

/**
 * A PNG built by hand: `width` x `height`, 8-bit of `colorType` (2 RGB, 6 RGBA, 0 gray), whose IDAT
 * holds `raw` (filter bytes + pixel rows, zlib-compressed here) — as much or as little as wanted —
 * with `extra` chunks (PLTE, tRNS) before it.
 */
export function rawPng(
  width: number,
  height: number,
  raw: Uint8Array,
  colorType = 2,
  bitDepth = 8,
  extra: [string, Uint8Array][] = [],
): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width, false);
  v.setUint32(4, height, false);
  ihdr.set([bitDepth, colorType, 0, 0, 0], 8);
  return concat([
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    pngChunk("IHDR", ihdr),
    ...extra.map(([type, data]) => pngChunk(type, data)),
    pngChunk("IDAT", new Uint8Array(zlib.deflateSync(raw))),
    pngChunk("IEND", new Uint8Array(0)),
  ]);
}
