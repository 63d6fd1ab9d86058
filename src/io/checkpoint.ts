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

import { basename, join } from "node:path";
import type { Context, TensorTree } from "../tensor/mod.ts";
import { findDuplicateKey } from "./json_keys.ts";
import {
  readSafetensors,
  safetensorsHeaderLengthProblem,
  type SafetensorsMap,
  writeSafetensors,
} from "./safetensors.ts";
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
    file = await readSafetensors(path, { kind: "checkpoint" });
  } catch (e) {
    const msg = (e as Error).message.replace(`Cannot read safetensors file '${path}': `, "");
    throw fail(msg, e);
  }
  return { tensors: file.tensors, meta: checkContainer(file.metadata, fail) as M };
}

/** The parsed JSON metadata of a checkpoint whose container format and version are ours. */
function checkContainer(
  metadata: Record<string, string>,
  fail: (why: string, cause?: unknown) => Error,
): unknown {
  if (metadata.format !== FORMAT) {
    throw fail(
      `it is not a training checkpoint of this trainer (format '${metadata.format ?? "none"}')`,
    );
  }
  if (metadata.version !== VERSION) {
    throw fail(`checkpoint version ${metadata.version}, this program reads ${VERSION}`);
  }
  if (typeof metadata.meta !== "string") throw fail("its metadata has no 'meta' entry");
  let meta: unknown;
  try {
    meta = JSON.parse(metadata.meta);
  } catch (e) {
    throw fail("its metadata is not valid JSON", e);
  }
  // JSON.parse keeps the last of two equal keys: refused, as in the safetensors header.
  const dup = findDuplicateKey(metadata.meta);
  if (dup) {
    const inside = dup.parents.length ? ` (in '${dup.parents.join(".")}')` : "";
    throw fail(`duplicate key '${dup.key}' in its metadata${inside}`);
  }
  return meta;
}

/** The `__metadata__` of a safetensors header, or the reason it cannot be read. */
function headerMetadata(
  header: Uint8Array,
  fileSize: number,
  headerLength: number,
): Record<string, string> | string {
  let parsed: unknown;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(header);
    parsed = JSON.parse(text);
  } catch (e) {
    return `header is not valid UTF-8 JSON (${e instanceof Error ? e.message : e})`;
  }
  const dup = findDuplicateKey(text);
  if (dup) return `duplicate key '${dup.key}' in the header`;
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    return "header is not a JSON object";
  }
  let end = 0;
  for (const [name, entry] of Object.entries(parsed as Record<string, unknown>)) {
    if (name === "__metadata__") continue;
    const offsets = (entry as { data_offsets?: unknown } | null)?.data_offsets;
    const last = Array.isArray(offsets) ? offsets[1] : undefined;
    if (!Number.isSafeInteger(last) || (last as number) < 0) {
      return `tensor '${name}' has invalid data_offsets ${JSON.stringify(offsets)}`;
    }
    end = Math.max(end, last as number);
  }
  if (8 + headerLength + end !== fileSize) {
    return `the file is ${fileSize} bytes, its header describes ${
      8 + headerLength + end
    } (truncated?)`;
  }
  const meta = (parsed as Record<string, unknown>).__metadata__;
  if (meta === undefined) return "it holds no metadata";
  if (meta === null || typeof meta !== "object" || Array.isArray(meta)) {
    return "__metadata__ is not an object of strings";
  }
  return meta as Record<string, string>;
}

/**
 * Reads only the metadata of a checkpoint: the safetensors header, not the tensors (cheap for a
 * large checkpoint). Checks what the header says: the container's format and version, JSON
 * metadata, and a file size that matches the tensors it lists (a truncated file is refused);
 * the tensors themselves are checked when loaded. Errors read `Cannot load checkpoint '<path>': ...`.
 */
export async function readCheckpointMeta<M>(path: string): Promise<M> {
  const fail = (why: string, cause?: unknown) =>
    new Error(`Cannot load checkpoint '${path}': ${why}`, { cause });
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (e) {
    throw fail(e instanceof Error ? e.message : String(e), e);
  }
  let metadata: Record<string, string> | string;
  try {
    const size = (await file.stat()).size;
    const prefix = await readExactly(file, 8);
    const n = prefix && new DataView(prefix.buffer).getBigUint64(0, true);
    // As the whole-file reader says it: the same file gets the same message from both.
    const problem = safetensorsHeaderLengthProblem(size, n, "checkpoint");
    if (problem !== undefined) throw fail(problem);
    const header = await readExactly(file, Number(n));
    if (header === undefined) throw fail("the file ends inside its header (truncated?)");
    metadata = headerMetadata(header, size, Number(n));
  } finally {
    file.close();
  }
  if (typeof metadata === "string") throw fail(metadata);
  return checkContainer(metadata, fail) as M;
}

/** Reads `n` bytes from the current position, or undefined when the file ends first. */
async function readExactly(file: Deno.FsFile, n: number): Promise<Uint8Array | undefined> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await file.read(out.subarray(got));
    if (r === null) return undefined;
    got += r;
  }
  return out;
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

/** File name of the checkpoint taken after `step` steps (at least 9 digits, zero-padded). */
export function checkpointName(step: number): string {
  if (!Number.isSafeInteger(step) || step < 0) {
    throw new RangeError(`Cannot name a checkpoint of step ${step}: expected an integer >= 0`);
  }
  return `checkpoint-${String(step).padStart(9, "0")}.safetensors`;
}

const CHECKPOINT_NAME = /^checkpoint-(\d{9,})\.safetensors$/;

/** Whether `name` (a file name, no folder) is a checkpoint name of {@link checkpointName}. */
export function isCheckpointName(name: string): boolean {
  return CHECKPOINT_NAME.test(name);
}

/** The step in a checkpoint's file name (`.../checkpoint-000000012.safetensors` -> 12), if any. */
export function checkpointStep(path: string): number | undefined {
  const m = CHECKPOINT_NAME.exec(basename(path));
  return m ? Number(m[1]) : undefined;
}

/** Checkpoints in `dir`, oldest first (by the step in the file name). */
export function listCheckpoints(dir: string): string[] {
  const found: { name: string; step: number }[] = [];
  try {
    for (const e of Deno.readDirSync(dir)) {
      const step = e.isFile ? checkpointStep(e.name) : undefined;
      if (step !== undefined) found.push({ name: e.name, step });
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return [];
    throw e;
  }
  return found.sort((a, b) => a.step - b.step || (a.name < b.name ? -1 : 1))
    .map((f) => join(dir, f.name));
}

/** Options of {@link pruneCheckpoints}. */
export interface PruneCheckpointsOptions {
  /** A checkpoint never removed (the one just written), whatever its step. */
  protect?: string;
}

/**
 * Removes all but the newest `keep` checkpoints of `dir` (by step), never `options.protect`;
 * returns the paths removed.
 */
export function pruneCheckpoints(
  dir: string,
  keep: number,
  options: PruneCheckpointsOptions = {},
): string[] {
  const all = listCheckpoints(dir);
  const protect = options.protect === undefined ? undefined : basename(options.protect);
  const old = all.slice(0, Math.max(0, all.length - keep)).filter((p) => basename(p) !== protect);
  for (const path of old) Deno.removeSync(path);
  return old;
}
