/**
 * The safetensors file format (https://github.com/huggingface/safetensors), host side.
 *
 * dtypes and their host arrays: F32 `Float32Array`; F64 `Float64Array`; BF16 `Uint16Array` of raw
 * bfloat16 bits (convert with `float_convert.ts`); F16 is widened to a `Float32Array` on read
 * (exact: every f16 value is an f32 value) and written from a `Float32Array` whose values must each
 * be exactly an f16 (else the writer throws; round deliberately with `f32ToF16`) or from a
 * `Uint16Array` of raw bits; I64 `BigInt64Array`; I32 `Int32Array`; U8 `Uint8Array`. Reading a
 * tensor as another dtype goes through `safetensors_convert.ts`, exact or explicitly rounded.
 *
 * Layout: an 8-byte little-endian u64 `N`, then `N` bytes of UTF-8 JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { key: value } }`
 * (padded with spaces to a multiple of 8), then the tensor bytes, little-endian, row-major. Offsets
 * are relative to the first byte after the header. The writer lays tensors out contiguously in
 * header order; the reader checks that they are contiguous, non-overlapping and cover the data.
 *
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";
import { f16ToF32, firstInexact } from "./float_convert.ts";
import { findDuplicateKey } from "./json_keys.ts";

/** Element types this implementation reads and writes. */
export type SafetensorsDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "U8";

/** Host arrays matching each {@link SafetensorsDType}. */
export type SafetensorsData =
  | Float32Array
  | Float64Array
  | Uint16Array
  | BigInt64Array
  | Int32Array
  | Uint8Array;

/** One tensor on the host. */
export interface SafetensorsEntry {
  /** Element type. */
  dtype: SafetensorsDType;
  /** Dimensions, outermost first (`[]` for a scalar). */
  shape: number[];
  /** Row-major values; its array type matches `dtype` (see the module's table). */
  data: SafetensorsData;
}

/** Tensors by name; the iteration order is the order in the file. */
export type SafetensorsMap = Record<string, SafetensorsEntry>;

/** A decoded file. */
export interface SafetensorsFile {
  /** The tensors, in header order. */
  tensors: SafetensorsMap;
  /** The `__metadata__` string map (empty when absent). */
  metadata: Record<string, string>;
}

/** Options of {@link encodeSafetensors} and {@link writeSafetensors}. */
export interface EncodeSafetensorsOptions {
  /** String metadata stored under `__metadata__`. */
  metadata?: Record<string, string>;
}

/** Options of {@link decodeSafetensors}. */
export interface DecodeSafetensorsOptions extends ReadSafetensorsOptions {
  /** Name of the source in error messages (a file path); default "<bytes>". */
  source?: string;
}

/** Options of {@link readSafetensors}. */
export interface ReadSafetensorsOptions {
  /** What the file should be, for a message that says it is not: "it is not a safetensors
   * `<kind>`" (default "file"; a checkpoint reader says "checkpoint"). */
  kind?: string;
}

const ITEM_SIZE: Record<SafetensorsDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  U8: 1,
};
/** The dtypes, for messages. */
const DTYPES = Object.keys(ITEM_SIZE).join(", ");
/** The host arrays each dtype is written from. */
const ACCEPTS: Record<SafetensorsDType, string[]> = {
  F64: ["Float64Array"],
  F32: ["Float32Array"],
  F16: ["Float32Array", "Uint16Array"],
  BF16: ["Uint16Array"],
  I64: ["BigInt64Array"],
  I32: ["Int32Array"],
  U8: ["Uint8Array"],
};
const METADATA_KEY = "__metadata__";
/** Same bound as the Rust implementation: a header above 100 MB is rejected as corrupt. */
const MAX_HEADER_BYTES = 100_000_000;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Why the first 8 bytes of a file of `size` bytes cannot start a safetensors file of that size, in
 * a user's terms, or undefined when they can. `headerLength` is the little-endian u64 they hold
 * (undefined when the file is shorter than 8 bytes). A length no header has (above the 100 MB
 * limit, as in the Rust implementation) means that the file is not a safetensors `<kind>` at all
 * (a text file, noise); a plausible length beyond the end, that it is cut short or not one. Shared
 * by every reader (the whole-file one here, the header-only one of `checkpoint.ts`), so that the
 * same file gets the same message from each.
 */
export function safetensorsHeaderLengthProblem(
  size: number,
  headerLength: bigint | undefined,
  kind = "file",
): string | undefined {
  if (headerLength === undefined || size < 8) {
    return `it is not a safetensors ${kind} (the file has only ${size} bytes; one starts with an 8-byte header length)`;
  }
  const given = `its first 8 bytes give a header length of ${headerLength}`;
  const beyond = headerLength > BigInt(size - 8);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) {
    return `it is not a safetensors ${kind} (${given}, ${
      beyond ? `but the file has ${size} bytes` : `above the ${MAX_HEADER_BYTES}-byte limit`
    })`;
  }
  if (beyond) {
    return `it is truncated or not a safetensors ${kind} (${given}, but the file has ${size} bytes)`;
  }
  return undefined;
}

/** Number of bytes per element of `dtype`. */
export function safetensorsItemSize(dtype: SafetensorsDType): number {
  return ITEM_SIZE[dtype];
}

function isDType(v: unknown): v is SafetensorsDType {
  return typeof v === "string" && Object.hasOwn(ITEM_SIZE, v);
}

function product(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => Number.isSafeInteger(d) && d >= 0);
}

/** Serialises tensors (in the map's order) and metadata to the bytes of a safetensors file. */
export function encodeSafetensors(
  tensors: SafetensorsMap,
  options: EncodeSafetensorsOptions = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (options.metadata && Object.keys(options.metadata).length > 0) {
    for (const [k, v] of Object.entries(options.metadata)) {
      if (typeof v !== "string") {
        throw new TypeError(
          `Cannot write safetensors metadata '${k}': values must be strings, got ${typeof v}`,
        );
      }
    }
    header[METADATA_KEY] = options.metadata;
  }
  let offset = 0;
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) {
    if (name === METADATA_KEY || name === "") {
      throw new RangeError(`Cannot write safetensors tensor '${name}': the name is reserved`);
    }
    if (!isDType(t.dtype)) {
      throw new RangeError(
        `Cannot write safetensors tensor '${name}': unknown dtype '${t.dtype}' (supported: ${DTYPES})`,
      );
    }
    if (!isShape(t.shape)) {
      throw new RangeError(
        `Cannot write safetensors tensor '${name}': shape [${t.shape}] must hold integers >= 0`,
      );
    }
    if (!ACCEPTS[t.dtype].includes(t.data.constructor.name)) {
      throw new TypeError(
        `Cannot write safetensors tensor '${name}': dtype ${t.dtype} but data is a ${t.data.constructor.name} (${t.dtype} is written from ${
          ACCEPTS[t.dtype].join(" or ")
        })`,
      );
    }
    if (t.dtype === "F16" && t.data instanceof Float32Array) {
      const i = firstInexact(t.data, Math.f16round);
      if (i >= 0) {
        throw new RangeError(
          `Cannot write safetensors tensor '${name}' as F16: value ${
            t.data[i]
          } at index ${i} is not exactly an f16 (round it deliberately with f32ToF16 and write the Uint16Array bits)`,
        );
      }
    }
    if (t.data.length !== product(t.shape)) {
      throw new RangeError(
        `Cannot write safetensors tensor '${name}': shape [${t.shape}] needs ${
          product(t.shape)
        } values, data has ${t.data.length}`,
      );
    }
    const bytes = t.data.length * ITEM_SIZE[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let pos = 8 + json.length;
  for (const [, t] of entries) {
    writeLE(t, out, pos);
    pos += t.data.length * ITEM_SIZE[t.dtype];
  }
  return out;
}

function writeLE(t: SafetensorsEntry, out: Uint8Array, pos: number): void {
  let data = t.data;
  if (t.dtype === "F16" && data instanceof Float32Array) {
    data = new Uint16Array(new Float16Array(data).buffer);
  }
  if (LITTLE_ENDIAN || data instanceof Uint8Array) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), pos);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset + pos, data.byteLength);
  for (let i = 0; i < data.length; i++) {
    if (data instanceof Float64Array) view.setFloat64(i * 8, data[i], true);
    else if (data instanceof Float32Array) view.setFloat32(i * 4, data[i], true);
    else if (data instanceof Uint16Array) view.setUint16(i * 2, data[i], true);
    else if (data instanceof Int32Array) view.setInt32(i * 4, data[i], true);
    else view.setBigInt64(i * 8, (data as BigInt64Array)[i], true);
  }
}

function readLE(dtype: SafetensorsDType, bytes: Uint8Array): SafetensorsData {
  const n = bytes.length / ITEM_SIZE[dtype];
  if (dtype === "U8") return bytes.slice();
  if (LITTLE_ENDIAN) {
    const copy = bytes.slice().buffer; // fresh, aligned
    if (dtype === "F32") return new Float32Array(copy);
    if (dtype === "F64") return new Float64Array(copy);
    if (dtype === "BF16") return new Uint16Array(copy);
    if (dtype === "F16") return f16ToF32(new Uint16Array(copy));
    if (dtype === "I32") return new Int32Array(copy);
    return new BigInt64Array(copy);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const each = <T>(f: (i: number) => T) => Array.from({ length: n }, (_, i) => f(i));
  if (dtype === "F32") return Float32Array.from(each((i) => view.getFloat32(4 * i, true)));
  if (dtype === "F64") return Float64Array.from(each((i) => view.getFloat64(8 * i, true)));
  if (dtype === "BF16") return Uint16Array.from(each((i) => view.getUint16(2 * i, true)));
  if (dtype === "F16") return f16ToF32(Uint16Array.from(each((i) => view.getUint16(2 * i, true))));
  if (dtype === "I32") return Int32Array.from(each((i) => view.getInt32(4 * i, true)));
  return BigInt64Array.from(each((i) => view.getBigInt64(8 * i, true)));
}

interface HeaderEntry {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

/** Parses and validates the bytes of a safetensors file. */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: DecodeSafetensorsOptions = {},
): SafetensorsFile {
  const source = options.source ?? "<bytes>";
  const fail = (why: string): never => {
    throw new Error(`Cannot read safetensors file '${source}': ${why}`);
  };
  const n64 = bytes.length < 8
    ? undefined
    : new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  const problem = safetensorsHeaderLengthProblem(bytes.length, n64, options.kind);
  if (problem !== undefined) fail(problem);
  const n = Number(n64);
  let header: unknown, text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + n));
    header = JSON.parse(text);
  } catch (e) {
    fail(`header is not valid UTF-8 JSON (${e instanceof Error ? e.message : e})`);
  }
  const dup = findDuplicateKey(text);
  if (dup) {
    const where = dup.parents.length === 0
      ? "the header (tensor names must be unique)"
      : dup.parents[0] === METADATA_KEY
      ? "__metadata__"
      : `tensor '${dup.parents[0]}'`;
    fail(`duplicate key '${dup.key}' in ${where}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    fail("header is not a JSON object");
  }
  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
        fail("__metadata__ is not an object of strings");
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") fail(`__metadata__ '${k}' is not a string`);
        metadata[k] = v as string;
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (e === null || typeof e !== "object" || Array.isArray(e)) {
      fail(`tensor '${name}' is not an object with dtype, shape and data_offsets`);
    }
    const { dtype, shape, data_offsets: offs } = e!;
    if (!isDType(dtype)) {
      fail(
        `tensor '${name}' has unknown dtype ${JSON.stringify(dtype)} (supported: ${DTYPES})`,
      );
    }
    if (!isShape(shape)) fail(`tensor '${name}' has invalid shape ${JSON.stringify(shape)}`);
    if (
      !Array.isArray(offs) || offs.length !== 2 ||
      !offs.every((o) => Number.isSafeInteger(o) && o >= 0) || offs[0] > offs[1]
    ) {
      fail(`tensor '${name}' has invalid data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as number[];
    const expected = product(shape as number[]) * ITEM_SIZE[dtype as SafetensorsDType];
    if (end - begin !== expected) {
      fail(
        `tensor '${name}' has data_offsets [${begin}, ${end}] (${
          end - begin
        } bytes) but ${dtype} [${shape as number[]}] needs ${expected} bytes`,
      );
    }
    entries.push({ name, dtype: dtype as SafetensorsDType, shape: shape as number[], begin, end });
  }
  const dataStart = 8 + n;
  const dataLength = bytes.length - dataStart;
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (let i = 0; i < sorted.length; i++) {
    const e = sorted[i];
    if (e.begin < pos) {
      const prev = sorted[i - 1];
      fail(
        `tensor '${e.name}' (bytes ${e.begin}..${e.end}) overlaps tensor '${prev.name}' (bytes ${prev.begin}..${prev.end})`,
      );
    }
    if (e.begin > pos) {
      fail(`tensor '${e.name}' starts at byte ${e.begin}, leaving a gap after byte ${pos}`);
    }
    if (e.end > dataLength) {
      fail(
        `tensor '${e.name}' ends at data byte ${e.end} but the file holds only ${dataLength} data bytes (truncated?)`,
      );
    }
    pos = e.end;
  }
  if (pos < dataLength) fail(`${dataLength - pos} unexpected bytes after the last tensor`);
  const tensors: SafetensorsMap = {};
  for (const e of entries) {
    const slice = bytes.subarray(dataStart + e.begin, dataStart + e.end);
    tensors[e.name] = { dtype: e.dtype, shape: e.shape, data: readLE(e.dtype, slice) };
  }
  return { tensors, metadata };
}

/** Reads and validates a safetensors file. */
export async function readSafetensors(
  path: string,
  options: ReadSafetensorsOptions = {},
): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    throw new Error(
      `Cannot read safetensors file '${path}': ${e instanceof Error ? e.message : e}`,
      { cause: e },
    );
  }
  return decodeSafetensors(bytes, { ...options, source: path });
}

/** Writes tensors to a safetensors file atomically (temporary file + rename). */
export async function writeSafetensors(
  path: string,
  tensors: SafetensorsMap,
  options: EncodeSafetensorsOptions = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, options));
}
