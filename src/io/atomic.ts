/**
 * Atomic file writes: the bytes go to a temporary file in the target's directory, which is then
 * renamed over the target. A reader sees either the old file or the complete new one, never a
 * partial write; the temporary file is removed when anything fails.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";

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
  const temp = join(dirname(path), `.${basename(path)}.${suffix}.tmp`);
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
