/**
 * NumPy's `.npy` format, version 1.0 (https://numpy.org/doc/stable/reference/generated/
 * numpy.lib.format.html): the magic `\x93NUMPY`, version bytes 1 0, a little-endian u16 header
 * length, an ASCII Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }`
 * padded with spaces and ending in `\n` so the data starts at a multiple of 64 bytes, then the
 * values in C order, little-endian. Written atomically; read back by `numpy.load`.
 *
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";

/** Arrays this module writes: f32 (`<f4`) and i32 (`<i4`). */
export type NpyData = Float32Array | Int32Array;

/** An array with its shape. */
export interface NpyArray {
  /** The values, row-major. */
  data: NpyData;
  /** Dimensions, outermost first. */
  shape: number[];
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ALIGN = 64;

function descr(data: NpyData): string {
  return data instanceof Float32Array ? "<f4" : "<i4";
}

function shapeLiteral(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(", ")})`;
}

/** Encodes an array as `.npy` bytes (version 1.0). */
export function encodeNpy(array: NpyArray): Uint8Array {
  const { data, shape } = array;
  const count = shape.reduce((a, b) => a * b, 1);
  if (!shape.every((d) => Number.isInteger(d) && d >= 0) || count !== data.length) {
    throw new RangeError(
      `Cannot encode .npy: shape [${shape}] does not hold ${data.length} values`,
    );
  }
  const dict = `{'descr': '${descr(data)}', 'fortran_order': False, 'shape': ${
    shapeLiteral(shape)
  }, }`;
  const unpadded = MAGIC.length + 2 + 2 + dict.length + 1;
  const headerLen = dict.length + 1 + ((ALIGN - (unpadded % ALIGN)) % ALIGN);
  if (headerLen > 0xffff) throw new RangeError("Cannot encode .npy: header too long for v1.0");
  const start = MAGIC.length + 4 + headerLen;
  const out = new Uint8Array(start + data.length * 4);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, headerLen, true);
  const header = dict.padEnd(headerLen - 1, " ") + "\n";
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const view = new DataView(out.buffer, start);
  if (data instanceof Float32Array) {
    for (let i = 0; i < data.length; i++) view.setFloat32(4 * i, data[i], true);
  } else {
    for (let i = 0; i < data.length; i++) view.setInt32(4 * i, data[i], true);
  }
  return out;
}

/**
 * Decodes `.npy` bytes of version 1.0 holding `<f4` or `<i4` values in C order (the files
 * {@link encodeNpy} writes). `source` names the file in errors.
 */
export function decodeNpy(bytes: Uint8Array, source = "<bytes>"): NpyArray {
  const fail = (why: string) => new Error(`Cannot read .npy file '${source}': ${why}`);
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw fail("bad magic");
  if (bytes[6] !== 1) throw fail(`version ${bytes[6]}.${bytes[7]}, only 1.0 is read`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset).getUint16(8, true);
  const start = 10 + headerLen;
  if (start > bytes.length) throw fail("truncated header");
  const header = new TextDecoder("latin1").decode(bytes.subarray(10, start));
  const d = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!d || !fortran || shapeText === undefined) throw fail(`unreadable header ${header.trim()}`);
  if (fortran !== "False") throw fail("Fortran order is not supported");
  if (d !== "<f4" && d !== "<i4") throw fail(`dtype '${d}' is not supported (<f4, <i4)`);
  const shape = shapeText.split(",").map((s) => s.trim()).filter((s) => s !== "").map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - start !== count * 4) {
    throw fail(`${bytes.length - start} data bytes for shape (${shape}), expected ${count * 4}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + start);
  const data = d === "<f4" ? new Float32Array(count) : new Int32Array(count);
  for (let i = 0; i < count; i++) {
    data[i] = d === "<f4" ? view.getFloat32(4 * i, true) : view.getInt32(4 * i, true);
  }
  return { data, shape };
}

/** Writes an array to a `.npy` file atomically. */
export async function writeNpy(path: string, array: NpyArray): Promise<void> {
  await writeFileAtomic(path, encodeNpy(array));
}
