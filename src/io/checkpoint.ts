/**
 * The checkpoint container: named tensor trees in one safetensors file (tensor `<tree>/<path>`),
 * with JSON metadata under `__metadata__` beside the container's own `format` and `version` keys.
 * Written atomically (temporary file + rename); checkpoint files of a run folder are named by
 * step, listed oldest first and pruned to the last N.
 *
 * What a training checkpoint holds (tree names, metadata fields, the mapping from a train state)
 * is the schema of `src/ressl/checkpoint.ts`; this module knows nothing of it.
 *
 * @module
 */

import { join } from "node:path";
import type { Context, TensorTree } from "../tensor/mod.ts";
import { readSafetensors, type SafetensorsMap, writeSafetensors } from "./safetensors.ts";
import { loadTreeLike, TensorEntryError, treeToSafetensors } from "./tree_io.ts";

const FORMAT = "ressl-deno-checkpoint";
const VERSION = "1";

/** What a checkpoint holds: tensor trees by name, and JSON-serialisable metadata. */
export interface Checkpoint<M> {
  /** Tensor trees by name; a tensor is stored as `<name>/<path in its tree>`. */
  trees: Record<string, TensorTree>;
  /** Metadata, stored as JSON. */
  meta: M;
}

/** A checkpoint refused because a tensor holds NaN or an infinity. */
export class NonFiniteTensorError extends Error {
  /** `tensor` is the name of the tensor holding a NaN or an infinity. */
  constructor(
    /** The tensor's name in the checkpoint. */
    readonly tensor: string,
  ) {
    super(`Cannot write a checkpoint: tensor '${tensor}' holds a NaN or infinite value`);
  }
}

/**
 * Writes a checkpoint atomically to `path`. With `requireFinite` (default true) a tensor holding
 * NaN or an infinity throws {@link NonFiniteTensorError} and nothing is written.
 */
export async function saveCheckpoint<M>(
  path: string,
  ckpt: Checkpoint<M>,
  options: { requireFinite?: boolean } = {},
): Promise<void> {
  const tensors: SafetensorsMap = {};
  for (const [name, tree] of Object.entries(ckpt.trees)) {
    Object.assign(tensors, treeToSafetensors(tree, { prefix: `${name}/` }));
  }
  if (options.requireFinite ?? true) {
    for (const [name, entry] of Object.entries(tensors)) {
      if (entry.data instanceof Float32Array && !entry.data.every(Number.isFinite)) {
        throw new NonFiniteTensorError(name);
      }
    }
  }
  await writeSafetensors(path, tensors, {
    metadata: { format: FORMAT, version: VERSION, meta: JSON.stringify(ckpt.meta) },
  });
}

/** A checkpoint file as read: its tensors by name and its metadata (parsed, not validated). */
export interface CheckpointFile<M> {
  /** Every tensor of the file, keyed `<tree name>/<path>`. */
  tensors: SafetensorsMap;
  /** The JSON metadata the writer stored; the caller validates its fields. */
  meta: M;
}

/**
 * Reads and checks a checkpoint file: a valid safetensors file whose metadata says it is a
 * checkpoint of this trainer, of the version this code reads, with JSON metadata. Errors read
 * `Cannot load checkpoint '<path>': ...`.
 */
export async function readCheckpoint<M>(path: string): Promise<CheckpointFile<M>> {
  const fail = (why: string, cause?: unknown) =>
    new Error(`Cannot load checkpoint '${path}': ${why}`, { cause });
  let file;
  try {
    file = await readSafetensors(path);
  } catch (e) {
    const msg = (e as Error).message.replace(`Cannot read safetensors file '${path}': `, "");
    throw fail(msg, e);
  }
  const { metadata } = file;
  if (metadata.format !== FORMAT) {
    throw fail(
      `it is not a training checkpoint of this trainer (format '${metadata.format ?? "none"}')`,
    );
  }
  if (metadata.version !== VERSION) {
    throw fail(`checkpoint version ${metadata.version}, this program reads ${VERSION}`);
  }
  try {
    return { tensors: file.tensors, meta: JSON.parse(metadata.meta) as M };
  } catch (e) {
    throw fail("its metadata is not valid JSON", e);
  }
}

/** Reads only the metadata of a checkpoint (checking the whole file, see {@link readCheckpoint}). */
export async function readCheckpointMeta<M>(path: string): Promise<M> {
  return (await readCheckpoint<M>(path)).meta;
}

/**
 * Loads a checkpoint into trees shaped like `like` (same names, paths, shapes) on `ctx`.
 * Throws naming the file and the tensor on anything missing, mismatched or unexpected; allocates
 * nothing then.
 */
export async function loadCheckpoint<M, T extends Record<string, TensorTree>>(
  path: string,
  ctx: Context,
  like: T,
): Promise<{ trees: T; meta: M }> {
  const { tensors, meta } = await readCheckpoint<M>(path);
  const trees = ctx.scope(() => {
    const out: Record<string, TensorTree> = {};
    try {
      for (const [name, tree] of Object.entries(like)) {
        out[name] = loadTreeLike(ctx, tree, tensors, { prefix: `${name}/`, source: path });
      }
    } catch (e) {
      if (!(e instanceof TensorEntryError)) throw e;
      throw new Error(`Cannot load checkpoint '${path}': tensor '${e.tensor}' ${e.why}`, {
        cause: e,
      });
    }
    const prefixes = Object.keys(like).map((n) => `${n}/`);
    const extra = Object.keys(tensors).filter((k) => !prefixes.some((p) => k.startsWith(p)));
    if (extra.length > 0) {
      throw new Error(`Cannot load checkpoint '${path}': unexpected tensor '${extra[0]}'`);
    }
    return out;
  });
  return { trees: trees as T, meta };
}

/** File name of the checkpoint taken after `step` steps. */
export function checkpointName(step: number): string {
  return `checkpoint-${String(step).padStart(9, "0")}.safetensors`;
}

/** Checkpoints in `dir`, oldest first (by step in the file name). */
export function listCheckpoints(dir: string): string[] {
  const names: string[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isFile && /^checkpoint-\d{9}\.safetensors$/.test(e.name)) names.push(e.name);
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return names.sort().map((n) => join(dir, n));
}

/** Removes all but the newest `keep` checkpoints of `dir`. */
export function pruneCheckpoints(dir: string, keep: number): void {
  const all = listCheckpoints(dir);
  for (const path of all.slice(0, Math.max(0, all.length - keep))) Deno.removeSync(path);
}
