/**
 * File helpers for the dataset readers: reading with errors that name the file and say what to do,
 * and transparent gunzip (built-in `DecompressionStream`).
 *
 * @module
 */

import { DataError } from "../errors.ts";

/** True when `bytes` start with the gzip magic number (1f 8b). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Gunzips `bytes`; a corrupt or truncated stream becomes a {@link DataError} naming `file`. */
export async function gunzip(bytes: Uint8Array, file: string): Promise<Uint8Array> {
  try {
    const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
      .pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  } catch (err) {
    throw new DataError(
      `Cannot read '${file}': gzip data is corrupt or truncated (${
        (err as Error).message
      }); delete it and download it again`,
      { file, cause: err },
    );
  }
}

/**
 * Reads a whole file. A missing file becomes a {@link DataError} that says what was looked for and
 * `hint` (what to do, e.g. "run with --download").
 */
export async function readDataFile(path: string, what: string, hint: string): Promise<Uint8Array> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new DataError(`Cannot read ${what} '${path}': file not found (${hint})`, {
        file: path,
        cause: err,
      });
    }
    throw new DataError(`Cannot read ${what} '${path}': ${(err as Error).message}`, {
      file: path,
      cause: err,
    });
  }
}

/** Like {@link readDataFile}, then gunzips when the content is gzip (whatever the file name). */
export async function readMaybeGzip(path: string, what: string, hint: string): Promise<Uint8Array> {
  const raw = await readDataFile(path, what, hint);
  return isGzip(raw) ? await gunzip(raw, path) : raw;
}

/** Returns the first of `paths` that exists, or undefined. */
export function firstExisting(paths: readonly string[]): string | undefined {
  for (const p of paths) {
    try {
      Deno.statSync(p);
      return p;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** Base name of a path (for messages). */
export function baseName(path: string): string {
  const i = path.lastIndexOf("/");
  return i < 0 ? path : path.slice(i + 1);
}
