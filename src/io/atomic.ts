/**
 * Atomic file writes: the bytes go to a temporary file in the target's directory, which is then
 * renamed over the target. A reader sees either the old file or the complete new one, never a
 * partial write; the temporary file is removed when anything fails. A process killed mid-write
 * (kill -9, power loss) leaves its temporary behind: {@link atomicTempTarget} recognises one and
 * {@link removeStaleTemporaries} removes them (a run folder does it on start, under its lock).
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

const TEMP_SUFFIX = ".tmp";
/** `.<target name>.<random digits>.tmp`, as {@link writeFileAtomic} names its temporaries. */
const TEMP_NAME = /^\.(.+)\.\d+\.tmp$/;

/**
 * The name of the file a temporary of {@link writeFileAtomic} was to become
 * (`.checkpoint-000000002.safetensors.1234.tmp` -> `checkpoint-000000002.safetensors`), or
 * undefined when `name` (a file name, no folder) is not such a temporary.
 */
export function atomicTempTarget(name: string): string | undefined {
  return TEMP_NAME.exec(name)?.[1];
}

/**
 * Removes the temporaries that {@link writeFileAtomic} left in `dir` (not below it) for targets
 * `isTarget` accepts; returns the names removed. Only call it when no live writer can be writing
 * them (a run folder calls it under its lock, for the files only its trainer writes).
 */
export function removeStaleTemporaries(dir: string, isTarget: (name: string) => boolean): string[] {
  const removed: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const target = e.isFile ? atomicTempTarget(e.name) : undefined;
    if (target === undefined || !isTarget(target)) continue;
    try {
      Deno.removeSync(join(dir, e.name));
      removed.push(e.name);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return removed.sort();
}

/** Options of {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** Flush the data to disk before the rename (default true). */
  sync?: boolean;
}

/**
 * Writes `data` to `path` atomically (temporary file in the same directory + rename).
 * Strings are written as UTF-8.
 */
export async function writeFileAtomic(
  path: string,
  data: Uint8Array | string,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  const temp = join(dirname(path), `.${basename(path)}.${suffix}${TEMP_SUFFIX}`);
  try {
    const file = await Deno.open(temp, { write: true, createNew: true });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      if (options.sync ?? true) await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(temp, path);
  } catch (e) {
    await Deno.remove(temp).catch(() => {});
    throw new Error(`Cannot write file '${path}': ${e instanceof Error ? e.message : e}`, {
      cause: e,
    });
  }
}
