/**
 * Tensor trees to and from safetensors: a tree flattens to "."-joined paths (torchvision names for
 * a ResNet), tensors are downloaded from the device to write them, and loading rebuilds a tree
 * shaped like a given one on a {@link Context}, checking every shape and dtype.
 *
 * @module
 */

import type { DType, HostArray } from "../backend/backend.ts";
import { type Context, flattenTree, mapTree, type TensorTree } from "../tensor/mod.ts";
import {
  type EncodeSafetensorsOptions,
  readSafetensors,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsMap,
  writeSafetensors,
} from "./safetensors.ts";

const FILE_DTYPE: Record<DType, SafetensorsDType> = { f32: "F32", i32: "I32", u8: "U8" };

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

function toHost(entry: SafetensorsEntry, dtype: DType, describe: () => string): HostArray {
  const { data } = entry;
  if (dtype === "f32" && data instanceof Float32Array) return data;
  if (dtype === "u8" && data instanceof Uint8Array) return data;
  if (dtype === "i32" && data instanceof Int32Array) return data;
  if (dtype === "i32" && data instanceof BigInt64Array) {
    const out = new Int32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < -2147483648n || v > 2147483647n) {
        throw new RangeError(`${describe()}: I64 value ${v} does not fit the tensor's i32`);
      }
      out[i] = Number(v);
    }
    return out;
  }
  throw new TypeError(`${describe()}: the file holds ${entry.dtype}, the tree expects ${dtype}`);
}

/**
 * Uploads the tensors of `tensors` into a new tree shaped like `like` (same paths, shapes and
 * dtypes) on `ctx`. Throws naming the tensor on a missing entry, a shape or dtype mismatch, and
 * (with `strict`) on entries the tree does not use. Nothing is left allocated when it throws.
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
      const describe = () => `Cannot load tensor '${name}' from '${source}'`;
      if (!Object.hasOwn(tensors, name)) throw new Error(`${describe()}: it is not in the file`);
      const entry = tensors[name];
      const same = entry.shape.length === t.shape.length &&
        entry.shape.every((d, i) => d === t.shape[i]);
      if (!same) {
        throw new RangeError(
          `${describe()}: the file has shape [${entry.shape}], the tree expects [${t.shape}]`,
        );
      }
      used.add(name);
      return ctx.fromArray(toHost(entry, t.dtype, describe), t.shape, t.dtype);
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
