/**
 * Streaming extraction of `.tar.gz` archives (ustar, GNU and pax tar: 512-byte headers, GNU long
 * names and pax paths), gunzipped with the built-in `DecompressionStream`. Everything is written
 * under a fresh temporary folder first and moved into place only when the archive ended cleanly,
 * so a corrupt or truncated archive leaves no half-written dataset behind.
 *
 * @module
 */

import { DataError, StoppedError, stopReason } from "./errors.ts";

const BLOCK = 512;

/** Pulls exact byte counts out of a stream of chunks. */
class ByteReader {
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #chunks: Uint8Array[] = [];
  #have = 0;
  #done = false;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.getReader();
  }

  /** Ensures `n` bytes are buffered; false when the stream ended first. */
  async #fill(n: number): Promise<boolean> {
    while (this.#have < n && !this.#done) {
      const { value, done } = await this.#reader.read();
      if (done) this.#done = true;
      else if (value.length > 0) {
        this.#chunks.push(value);
        this.#have += value.length;
      }
    }
    return this.#have >= n;
  }

  /** Exactly `n` bytes, or null at a clean end of stream (or fewer bytes: truncated). */
  async read(n: number): Promise<Uint8Array | null> {
    if (!(await this.#fill(n))) return null;
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0];
      const take = Math.min(c.length, n - at);
      out.set(c.subarray(0, take), at);
      at += take;
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
    }
    this.#have -= n;
    return out;
  }

  /** Calls `sink` with the next `n` bytes in pieces; false when the stream ended first. */
  async pipe(n: number, sink: (piece: Uint8Array) => Promise<void>): Promise<boolean> {
    let left = n;
    while (left > 0) {
      if (this.#have === 0 && !(await this.#fill(1))) return false;
      const c = this.#chunks[0];
      const take = Math.min(c.length, left);
      await sink(c.subarray(0, take));
      if (take === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(take);
      this.#have -= take;
      left -= take;
    }
    return true;
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

function text(b: Uint8Array, from: number, len: number): string {
  const s = b.subarray(from, from + len);
  const end = s.indexOf(0);
  return new TextDecoder().decode(end < 0 ? s : s.subarray(0, end));
}

function octal(b: Uint8Array, from: number, len: number): number {
  if (b[from] & 0x80) {
    let v = b[from] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[from + i];
    return v;
  }
  const s = text(b, from, len).trim();
  return s === "" ? 0 : parseInt(s, 8);
}

function checksumOk(h: Uint8Array): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i];
  return sum === octal(h, 148, 8);
}

/** The `path` record of a pax extended header ("<len> path=<value>\n" records), if any. */
function paxPath(data: Uint8Array): string | undefined {
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(32, at);
    if (space < 0) return undefined;
    const len = parseInt(new TextDecoder().decode(data.subarray(at, space)), 10);
    if (!(len > 0)) return undefined;
    const rec = new TextDecoder().decode(data.subarray(space + 1, at + len - 1));
    if (rec.startsWith("path=")) return rec.slice(5);
    at += len;
  }
  return undefined;
}

/** A relative path that stays inside the extraction folder, or throws. */
function safePath(name: string, archive: string): string {
  const clean = name.replace(/^\.\/+/, "").replace(/\/+$/, "");
  if (clean === "" || clean.startsWith("/") || clean.split("/").includes("..")) {
    throw new DataError(`Cannot extract '${archive}': unsafe entry path '${name}'`, {
      file: archive,
    });
  }
  return clean;
}

/** Extracts the entries of a tar stream into `dest` (which must exist); returns the top names. */
async function extractEntries(
  reader: ByteReader,
  dest: string,
  archive: string,
  signal?: AbortSignal,
): Promise<Set<string>> {
  const top = new Set<string>();
  const truncated = () =>
    new DataError(
      `Cannot extract '${archive}': archive is truncated (incomplete download?); delete it and run --download again`,
      { file: archive },
    );
  let longName: string | undefined;
  /** What each extracted path is, to catch a file and a folder of the same name. */
  const kinds = new Map<string, "file" | "folder">();
  const claim = (rel: string, kind: "file" | "folder") => {
    const parts = rel.split("/");
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join("/");
      const want = i < parts.length ? "folder" : kind;
      const had = kinds.get(p);
      if (had !== undefined && had !== want) {
        throw new DataError(
          `Cannot extract '${archive}': entry '${rel}' needs '${p}' to be a ${want}, but the archive ` +
            `also has a ${had} of that name (a file and a folder with the same path: a corrupt or ` +
            `badly made archive; delete it and run --download again, or extract it by hand)`,
          { file: archive },
        );
      }
      kinds.set(p, want);
    }
  };
  const write = async <T>(rel: string, op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      if (err instanceof DataError) throw err;
      throw new DataError(
        `Cannot extract '${archive}': cannot write entry '${rel}' under '${dest}' (${
          (err as Error).message
        })`,
        { file: archive, cause: err },
      );
    }
  };
  for (;;) {
    if (signal?.aborted) {
      throw new StoppedError(
        `Extraction of '${archive}' stopped (${
          stopReason(signal)
        }): nothing of it was kept; run --download again to extract it`,
        { file: archive },
      );
    }
    const h = await reader.read(BLOCK);
    if (h === null) throw truncated();
    if (h.every((v) => v === 0)) return top;
    if (!checksumOk(h)) {
      throw new DataError(
        `Cannot extract '${archive}': bad tar header checksum (corrupt archive?)`,
        {
          file: archive,
        },
      );
    }
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = text(h, 257, 6).startsWith("ustar") ? text(h, 345, 155) : "";
    const name = longName ?? (prefix ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100));
    longName = undefined;
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === "L" || type === "x") {
      const data = await reader.read(padded);
      if (data === null) throw truncated();
      if (type === "L") longName = text(data, 0, size);
      else longName = paxPath(data.subarray(0, size)) ?? longName;
      continue;
    }
    if (type !== "0" && type !== "5" && type !== "7") {
      // pax headers, links and special files: skip their data.
      if (padded > 0 && (await reader.read(padded)) === null) throw truncated();
      continue;
    }
    const rel = safePath(name, archive);
    top.add(rel.split("/")[0]);
    const path = `${dest}/${rel}`;
    claim(rel, type === "5" ? "folder" : "file");
    if (type === "5") {
      await write(rel, () => Deno.mkdir(path, { recursive: true }));
      continue;
    }
    await write(rel, () => Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true }));
    const file = await write(
      rel,
      () => Deno.open(path, { write: true, create: true, truncate: true }),
    );
    try {
      const ok = await reader.pipe(size, async (piece) => {
        let at = 0;
        while (at < piece.length) at += await write(rel, () => file.write(piece.subarray(at)));
      });
      if (!ok) throw truncated();
    } finally {
      file.close();
    }
    if (padded > size && (await reader.read(padded - size)) === null) throw truncated();
  }
}

/**
 * Extracts `archive` (.tar.gz) into `destDir`: into a temporary sibling folder first, then each
 * top-level entry is renamed into `destDir`. Entries that already exist there are left as they are.
 * Returns the top-level names. A corrupt or truncated archive throws a {@link DataError} and leaves
 * `destDir` unchanged; so does `signal` aborted before the last entry (a {@link StoppedError}).
 */
export async function extractTarGz(
  archive: string,
  destDir: string,
  signal?: AbortSignal,
): Promise<string[]> {
  await Deno.mkdir(destDir, { recursive: true });
  const tmp = await Deno.makeTempDir({ dir: destDir, prefix: ".extract-" });
  const file = await Deno.open(archive, { read: true });
  const reader = new ByteReader(file.readable.pipeThrough(new DecompressionStream("gzip")));
  try {
    let top: Set<string>;
    try {
      top = await extractEntries(reader, tmp, archive, signal);
    } catch (err) {
      if (err instanceof DataError) throw err;
      throw new DataError(
        `Cannot extract '${archive}': ${
          (err as Error).message
        } (corrupt or truncated gzip; delete it and run --download again)`,
        { file: archive, cause: err },
      );
    }
    for (const name of top) {
      try {
        await Deno.stat(`${destDir}/${name}`);
      } catch {
        await Deno.rename(`${tmp}/${name}`, `${destDir}/${name}`);
      }
    }
    return [...top];
  } finally {
    await reader.cancel().catch(() => {});
    await Deno.remove(tmp, { recursive: true });
  }
}
