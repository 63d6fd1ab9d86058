/**
 * File helpers for the dataset readers: reading with errors that name the file and say what to do,
 * and reading of files whose header declares their size, raw or gzipped (built-in
 * `DecompressionStream`), bounded by that size.
 *
 * @module
 */

import { DataError } from "../errors.ts";

/** True when `bytes` start with the gzip magic number (1f 8b). */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** What a file's first bytes say about its size: read `need` bytes first, or the whole file is
 * `total` bytes (`describe` names what they hold in messages, e.g. "60000x28x28 data"). */
export type DeclaredSize = { need: number } | { total: number; describe: string };

/** Options of {@link readDeclaredSize}. */
export interface ReadDeclaredSizeOptions {
  /** What the file is, for messages ("IDX file"). */
  what: string;
  /** What to do when the file is missing. */
  hint: string;
  /** Reads the size from the first bytes (throws a {@link DataError} on a bad header). */
  sizeFromHeader: (prefix: Uint8Array) => DeclaredSize;
  /** Refuse a declared size above this many bytes (default 4 GiB). */
  maxBytes?: number;
}

/** The most a deflate stream can expand (258 bytes from every 2 bits, plus the block headers). */
const MAX_DEFLATE_RATIO = 1032;

function fileError(path: string, what: string, err: unknown, hint: string): DataError {
  const why = err instanceof Deno.errors.NotFound
    ? `file not found (${hint})`
    : (err as Error).message;
  return new DataError(`Cannot read ${what} '${path}': ${why}`, { file: path, cause: err });
}

/**
 * Reads a file whose header declares its size, raw or gzipped, never holding more than that size:
 * the header is read first (from the first decompressed bytes of a gzip), the declared size is
 * checked against `maxBytes` and against what the file can hold (its size, or for gzip the most
 * its compressed bytes can inflate to), and inflation stops as soon as it goes beyond the declared
 * size. Returns the bytes read, which are fewer than declared when the file is short (the caller's
 * parser says what is missing).
 */
export async function readDeclaredSize(
  path: string,
  options: ReadDeclaredSizeOptions,
): Promise<Uint8Array> {
  const { what, hint, sizeFromHeader, maxBytes = 2 ** 32 } = options;
  const bad = (why: string) =>
    new DataError(`Cannot read ${what} '${path}': ${why}`, { file: path });
  let file: Deno.FsFile, size: number;
  try {
    file = await Deno.open(path, { read: true });
    size = (await file.stat()).size;
  } catch (err) {
    throw fileError(path, what, err, hint);
  }
  const magic = new Uint8Array(2);
  const gz = (await file.read(magic)) === 2 && isGzip(magic);
  await file.seek(0, Deno.SeekMode.Start);
  const reader = gz
    ? file.readable.pipeThrough(new DecompressionStream("gzip")).getReader()
    : file.readable.getReader();
  let buf = new Uint8Array(0), have = 0, total = -1;
  try {
    for (;;) {
      let chunk: Uint8Array | undefined;
      try {
        const r = await reader.read();
        chunk = r.done ? undefined : r.value;
      } catch (err) {
        throw new DataError(
          `Cannot read '${path}': gzip data is corrupt or truncated (${(err as Error).message}); ` +
            `delete it and download it again`,
          { file: path, cause: err },
        );
      }
      if (chunk === undefined) return buf.subarray(0, have);
      if (total >= 0 && have + chunk.length > total) {
        throw bad(
          `${gz ? "gzip data inflates" : "file goes on"} beyond the ${total} bytes its header ` +
            `declares (corrupt file, or not a ${what}?)`,
        );
      }
      if (have + chunk.length > buf.length) {
        const grown = new Uint8Array(Math.max(2 * buf.length, have + chunk.length, 64));
        grown.set(buf.subarray(0, have));
        buf = grown;
      }
      buf.set(chunk, have);
      have += chunk.length;
      while (total < 0) {
        const d = sizeFromHeader(buf.subarray(0, have));
        if ("need" in d) {
          if (d.need <= have) {
            throw new Error(`sizeFromHeader asked for ${d.need} bytes, has ${have}`);
          }
          break;
        }
        total = d.total;
        if (total > maxBytes) {
          throw bad(
            `its header declares ${d.describe} (${total} bytes), above the limit of ${maxBytes} bytes`,
          );
        }
        const room = gz ? size * MAX_DEFLATE_RATIO : size;
        if (total > room) {
          throw bad(
            gz
              ? `its header declares ${d.describe} (${total} bytes) but ${size} bytes of gzip can hold ` +
                `at most ${room} (corrupt header or truncated file)`
              : `file is ${total - size} bytes short of its ${d.describe} (truncated download?)`,
          );
        }
        if (!gz && size > total) {
          throw bad(`file has ${size - total} bytes after its ${d.describe}`);
        }
        if (have > total) {
          throw bad(
            `${
              gz ? "gzip data inflates" : "file goes on"
            } beyond the ${total} bytes its header declares`,
          );
        }
        const exact = new Uint8Array(total);
        exact.set(buf.subarray(0, have));
        buf = exact;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
    try {
      file.close();
    } catch {
      // closed with its stream
    }
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
    throw fileError(path, what, err, hint);
  }
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
