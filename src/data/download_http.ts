/**
 * HTTP download of one file with resume (`Range` on a `.part` file), progress reports and an MD5
 * of the result (`node:crypto`; MD5 is not in WebCrypto).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DataError } from "./errors.ts";

/** A progress report of a download. */
export interface DownloadProgress {
  file: string;
  /** Bytes on disk so far (including a resumed part). */
  received: number;
  /** Total size when the server said it, else undefined. */
  total?: number;
  /** Bytes this run received per second. */
  bytesPerSecond: number;
  done: boolean;
}

/** MD5 of a file, hex. */
export async function md5File(path: string): Promise<string> {
  const hash = createHash("md5");
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** Options of {@link fetchResumable}. */
export interface FetchResumableOptions {
  url: string;
  /** Final bytes go to `part` (appended to when it exists and the server honours Range). */
  part: string;
  /** Name for messages and progress. */
  file: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Minimum milliseconds between progress reports (default 200). */
  intervalMs?: number;
}

function sizeOf(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Downloads `url` into `part`, resuming from its current size. On a network failure the part file
 * is kept and the error says to run again to resume.
 */
export async function fetchResumable(options: FetchResumableOptions): Promise<void> {
  const { url, part, file, onProgress, intervalMs = 200 } = options;
  let have = sizeOf(part);
  let response: Response;
  try {
    response = await fetch(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });
  } catch (err) {
    throw new DataError(
      `Cannot download '${file}' from ${url}: ${
        (err as Error).message
      } (check the network, then run --download again)`,
      { file, cause: err },
    );
  }
  if (response.status === 416 && have > 0) {
    await response.body?.cancel();
    return; // the part is already complete; the checksum decides
  }
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel();
    throw new DataError(
      `Cannot download '${file}' from ${url}: HTTP ${response.status} ${response.statusText}`,
      { file },
    );
  }
  if (response.status === 200) have = 0; // the server ignored Range: start over
  const length = Number(response.headers.get("content-length") ?? NaN);
  const total = Number.isFinite(length) ? have + length : undefined;
  const out = await Deno.open(part, {
    write: true,
    create: true,
    truncate: have === 0,
    append: have > 0,
  });
  const start = performance.now();
  let got = 0, last = 0;
  const report = (done: boolean) => {
    const now = performance.now();
    if (!onProgress || (!done && now - last < intervalMs)) return;
    last = now;
    const secs = Math.max((now - start) / 1000, 1e-3);
    onProgress({ file, received: have + got, total, bytesPerSecond: got / secs, done });
  };
  try {
    for await (const chunk of response.body!) {
      let at = 0;
      while (at < chunk.length) at += await out.write(chunk.subarray(at));
      got += chunk.length;
      report(false);
    }
  } catch (err) {
    throw new DataError(
      `Download of '${file}' from ${url} was interrupted after ${have + got}${
        total ? ` of ${total}` : ""
      } bytes (${(err as Error).message}); run --download again to resume`,
      { file, cause: err },
    );
  } finally {
    out.close();
  }
  if (total !== undefined && have + got < total) {
    throw new DataError(
      `Download of '${file}' from ${url} stopped after ${
        have + got
      } of ${total} bytes; run --download again to resume`,
      { file },
    );
  }
  report(true);
}

/** A progress bar on stderr when it is a terminal, otherwise one line per finished file. */
export function consoleProgress(): (p: DownloadProgress) => void {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  const mb = (n: number) => (n / 1e6).toFixed(1);
  return (p) => {
    if (!tty && !p.done) return;
    const frac = p.total ? p.received / p.total : undefined;
    const width = 30;
    const bar = frac === undefined
      ? ""
      : `[${"#".repeat(Math.round(frac * width)).padEnd(width, ".")}] ${(frac * 100).toFixed(1)}% `;
    const line = `${p.file} ${bar}${mb(p.received)}${p.total ? `/${mb(p.total)}` : ""} MB ${
      mb(p.bytesPerSecond)
    } MB/s`;
    Deno.stderr.writeSync(enc.encode(tty ? `\r${line}\x1b[K${p.done ? "\n" : ""}` : `${line}\n`));
  };
}
