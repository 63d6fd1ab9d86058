/**
 * Training checkpoints: named tensor trees (student, teacher, queue, optimiser state, ...) in one
 * safetensors file, with the run's JSON metadata (epoch, step, seed, config, queue pointer) under
 * `__metadata__`. Written atomically (temporary file + rename); old checkpoints pruned to the last N.
 *
 * @module
 */

import { join } from "node:path";
import type { Context, TensorTree } from "../tensor/mod.ts";
import { readSafetensors, type SafetensorsMap, writeSafetensors } from "./safetensors.ts";
import { loadTreeLike, treeToSafetensors } from "./tree_io.ts";

const FORMAT = "ressl-deno-checkpoint";
const VERSION = "1";

/** What a checkpoint holds: tensor trees by name, and JSON-serialisable metadata. */
export interface Checkpoint<M> {
  trees: Record<string, TensorTree>;
  meta: M;
}

/** A checkpoint refused because a tensor holds NaN or an infinity. */
export class NonFiniteTensorError extends Error {
  constructor(readonly tensor: string) {
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

/** Reads only the metadata of a checkpoint (validating the whole file). */
export async function readCheckpointMeta<M>(path: string): Promise<M> {
  return parseMeta<M>(path, (await readSafetensors(path)).metadata);
}

function parseMeta<M>(path: string, metadata: Record<string, string>): M {
  if (metadata.format !== FORMAT) {
    throw new Error(
      `Cannot resume from '${path}': it is not a checkpoint of this trainer (format '${
        metadata.format ?? "none"
      }')`,
    );
  }
  if (metadata.version !== VERSION) {
    throw new Error(
      `Cannot resume from '${path}': checkpoint version ${metadata.version}, this trainer reads ${VERSION}`,
    );
  }
  try {
    return JSON.parse(metadata.meta) as M;
  } catch (e) {
    throw new SyntaxError(`Cannot resume from '${path}': its metadata is not valid JSON`, {
      cause: e,
    });
  }
}

/**
 * Loads a checkpoint into trees shaped like `like` (same names, paths, shapes) on `ctx`.
 * Throws naming the file and the tensor on anything missing or mismatched; allocates nothing then.
 */
export async function loadCheckpoint<M, T extends Record<string, TensorTree>>(
  path: string,
  ctx: Context,
  like: T,
): Promise<{ trees: T; meta: M }> {
  const file = await readSafetensors(path);
  const meta = parseMeta<M>(path, file.metadata);
  const trees = ctx.scope(() => {
    const out: Record<string, TensorTree> = {};
    for (const [name, tree] of Object.entries(like)) {
      out[name] = loadTreeLike(ctx, tree, file.tensors, { prefix: `${name}/`, source: path });
    }
    const known = new Set(Object.keys(like).map((n) => `${n}/`));
    const extra = Object.keys(file.tensors).filter((k) => ![...known].some((p) => k.startsWith(p)));
    if (extra.length > 0) {
      throw new Error(`Cannot resume from '${path}': unexpected tensor '${extra[0]}'`);
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
