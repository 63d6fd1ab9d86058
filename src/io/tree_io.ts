/**
 * Tensor trees to and from safetensors: a tree flattens to "."-joined paths (torchvision names for
 * a ResNet), tensors are downloaded from the device to write them, and loading rebuilds a tree
 * shaped like a given one on a {@link Context}, checking every shape and dtype, and that every
 * floating-point value is finite.
 *
 * @module
 */

import type { DType, HostArray } from "../backend/backend.ts";
import { type Context, flattenTree, mapTree, type Tensor, type TensorTree } from "../tensor/mod.ts";
import {
  type EncodeSafetensorsOptions,
  readSafetensors,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsMap,
  writeSafetensors,
} from "./safetensors.ts";
import { readEntryAs } from "./safetensors_convert.ts";
import { bf16ToF32 } from "../backend/bf16.ts";

const FILE_DTYPE: Record<DType, SafetensorsDType> = {
  f32: "F32",
  bf16: "BF16",
  i32: "I32",
  u8: "U8",
};

/** Options of {@link treeToSafetensors} and {@link writeTree}. */
export interface TreeToSafetensorsOptions {
  /** Prepended to every path (e.g. "backbone." or "head."); default "". */
  prefix?: string;
}

/** Downloads every tensor of `tree` into a host map keyed by flattened path. */
export function treeToSafetensors(
  tree: TensorTree,
  options: TreeToSafetensorsOptions = {},
): SafetensorsMap {
  const out: SafetensorsMap = {};
  for (const [path, t] of flattenTree(tree)) {
    const name = `${options.prefix ?? ""}${path}`;
    if (Object.hasOwn(out, name)) {
      throw new Error(`Cannot export tensor tree: two tensors are named '${name}'`);
    }
    out[name] = { dtype: FILE_DTYPE[t.dtype], shape: [...t.shape], data: t.toArray() };
  }
  return out;
}

/** Writes a tensor tree to a safetensors file (atomically), with optional metadata. */
export async function writeTree(
  path: string,
  tree: TensorTree,
  options: TreeToSafetensorsOptions & EncodeSafetensorsOptions = {},
): Promise<void> {
  await writeSafetensors(path, treeToSafetensors(tree, options), { metadata: options.metadata });
}

/** Options of {@link loadTreeLike} and {@link readTreeLike}. */
export interface LoadTreeOptions {
  /** The file entries are named `prefix + path`; default "". */
  prefix?: string;
  /** Reject file entries under `prefix` that the tree does not use (default true, as PyTorch). */
  strict?: boolean;
  /** Name of the source in error messages; default "<tensors>". */
  source?: string;
}

/**
 * A file entry that cannot become the tensor asked for: missing, of another shape, or of a dtype
 * that does not convert. `tensor` is the entry's name and `why` the reason, so that a caller can
 * say it in its own words (`Cannot load checkpoint '<path>': tensor '<name>' <why>`).
 */
export class TensorEntryError extends Error {
  /** The message reads `Cannot load '<source>': tensor '<tensor>' <why>`. */
  constructor(
    /** Where the entries came from (a file path, or "<tensors>"). */
    readonly source: string,
    /** The entry's name. */
    readonly tensor: string,
    /** What is wrong, as a predicate ("is not in the file", "has shape [2] in the file, ..."). */
    readonly why: string,
  ) {
    super(`Cannot load '${source}': tensor '${tensor}' ${why}`);
  }
}

/** What {@link tensorFromEntry} makes: the shape and dtype expected of an entry. */
export interface TensorLayout {
  /** Dimensions the entry must have. */
  shape: readonly number[];
  /** Element type of the tensor made (the file's F32 / U8 / I32, or I64 read into i32). */
  dtype: DType;
}

function toHost(entry: SafetensorsEntry, dtype: DType, fail: (why: string) => Error): HostArray {
  const { data } = entry;
  if (dtype === "f32" && data instanceof Float32Array) return data;
  if (dtype === "bf16" && entry.dtype === "BF16" && data instanceof Uint16Array) return data;
  if (dtype === "f32" && (entry.dtype === "BF16" || entry.dtype === "F64")) {
    try {
      return readEntryAs(entry, "F32"); // exact: BF16 always, F64 only when every value is an f32
    } catch (e) {
      throw fail((e as Error).message.replace(/^Cannot read tensor \([A-Z0-9]+\) as F32: /, ""));
    }
  }
  if (dtype === "bf16" && entry.dtype === "F32" && data instanceof Float32Array) {
    try {
      return readEntryAs(entry, "BF16"); // only when every value is exactly a bf16
    } catch (e) {
      throw fail((e as Error).message.replace(/^Cannot read tensor \([A-Z0-9]+\) as BF16: /, ""));
    }
  }
  if (dtype === "u8" && data instanceof Uint8Array) return data;
  if (dtype === "i32" && data instanceof Int32Array) return data;
  if (dtype === "i32" && data instanceof BigInt64Array) {
    const out = new Int32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < -2147483648n || v > 2147483647n) {
        throw fail(`holds the I64 value ${v}, which does not fit the expected i32`);
      }
      out[i] = Number(v);
    }
    return out;
  }
  throw fail(`holds ${entry.dtype} in the file, expected ${dtype}`);
}

/**
 * Uploads the entry `name` of `tensors` as a new tensor of `layout` on `ctx`. Throws a
 * {@link TensorEntryError} when the entry is missing, its shape or dtype differ, or a
 * floating-point entry holds NaN or an infinity (weights that would only spread NaN, blamed later
 * on something else); nothing is allocated then.
 */
export function tensorFromEntry(
  ctx: Context,
  tensors: SafetensorsMap,
  name: string,
  layout: TensorLayout,
  source = "<tensors>",
): Tensor {
  const fail = (why: string) => new TensorEntryError(source, name, why);
  if (!Object.hasOwn(tensors, name)) throw fail("is not in the file");
  const entry = tensors[name];
  const same = entry.shape.length === layout.shape.length &&
    entry.shape.every((d, i) => d === layout.shape[i]);
  if (!same) {
    throw fail(`has shape [${entry.shape}] in the file, expected [${layout.shape}]`);
  }
  const host = toHost(entry, layout.dtype, fail);
  if (host instanceof Float32Array || host instanceof Uint16Array) {
    const bad = nonFinite(host);
    if (bad) throw fail(bad);
  }
  return ctx.fromArray(host, layout.shape, layout.dtype);
}

/**
 * Why `values` cannot be weights (`holds NaN at element 3 (2 of 10 values are not finite)`), or
 * undefined when every value is finite.
 */
export function nonFinite(
  values: Float32Array | Float64Array | Uint16Array,
): string | undefined {
  const bf16 = values instanceof Uint16Array;
  const at = (i: number) => (bf16 ? bf16ToF32(values[i]) : values[i]);
  let count = 0, first = -1;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(at(i))) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (count === 0) return undefined;
  const v = at(first);
  const what = Number.isNaN(v) ? "NaN" : v > 0 ? "+Infinity" : "-Infinity";
  return `holds ${what} at element ${first} (${count} of ${values.length} values are not finite)`;
}

/**
 * Uploads the tensors of `tensors` into a new tree shaped like `like` (same paths, shapes and
 * dtypes) on `ctx`. Throws a {@link TensorEntryError} on a missing entry, a shape or dtype
 * mismatch or a non-finite value, and (with `strict`) an error naming the entries the tree does not use. Nothing is left
 * allocated when it throws.
 */
export function loadTreeLike<T extends TensorTree>(
  ctx: Context,
  like: T,
  tensors: SafetensorsMap,
  options: LoadTreeOptions = {},
): T {
  const prefix = options.prefix ?? "";
  const source = options.source ?? "<tensors>";
  const used = new Set<string>();
  const tree = ctx.scope(() =>
    mapTree(like, (t, path) => {
      const name = prefix + path;
      used.add(name);
      return tensorFromEntry(ctx, tensors, name, t, source);
    })
  );
  if (options.strict ?? true) {
    const extra = Object.keys(tensors).filter((k) => k.startsWith(prefix) && !used.has(k));
    if (extra.length > 0) {
      for (const [, t] of flattenTree(tree)) t.dispose();
      const shown = extra.slice(0, 5).map((k) => `'${k}'`).join(", ");
      throw new Error(
        `Cannot load tensors from '${source}': ${extra.length} unexpected entr${
          extra.length === 1 ? "y" : "ies"
        } (${shown}${extra.length > 5 ? ", ..." : ""}); pass strict: false to ignore them`,
      );
    }
  }
  return tree;
}

/** Reads a safetensors file into a new tree shaped like `like` (see {@link loadTreeLike}). */
export async function readTreeLike<T extends TensorTree>(
  path: string,
  ctx: Context,
  like: T,
  options: Omit<LoadTreeOptions, "source"> = {},
): Promise<T> {
  const file = await readSafetensors(path);
  return loadTreeLike(ctx, like, file.tensors, { ...options, source: path });
}
