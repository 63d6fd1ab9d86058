/**
 * HTTP download of one file with resume (`Range` on a `.part` file), progress reports and an MD5
 * of the result (`node:crypto`; MD5 is not in WebCrypto).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { DataError, StoppedError, stopReason } from "./errors.ts";

/** A progress report of a download. */
export interface DownloadProgress {
  /** The file being fetched. */
  file: string;
  /** Bytes on disk so far (including a resumed part). */
  received: number;
  /** Total size when the server said it, else undefined. */
  total?: number;
  /** Bytes this run received per second. */
  bytesPerSecond: number;
  /** Whether this is the file's last report (complete). */
  done: boolean;
}

/** MD5 of a file, hex. */
export async function md5File(path: string): Promise<string> {
  const hash = createHash("md5");
  const file = await Deno.open(path, { read: true });
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * How long to wait and how often to try again. Each field falls back to an environment variable
 * (seconds for the timeouts), then to a default: `connectTimeoutMs` to
 * `RESSL_DOWNLOAD_CONNECT_TIMEOUT` (30 s), `idleTimeoutMs` to `RESSL_DOWNLOAD_IDLE_TIMEOUT` (60 s),
 * `retries` to `RESSL_DOWNLOAD_RETRIES` (3), `retryDelayMs` to 1000.
 */
export interface DownloadPolicy {
  /** Milliseconds to wait for the response headers (connecting and the server's answer). */
  connectTimeoutMs?: number;
  /** Milliseconds the body may go without a byte before the attempt is given up. */
  idleTimeoutMs?: number;
  /** Further attempts after a timeout, a dropped connection or an HTTP 5xx/429, each resuming
   * from the part file. */
  retries?: number;
  /** Wait before the first retry, doubled before each further one. */
  retryDelayMs?: number;
}

/** Options of {@link fetchResumable}. */
export interface FetchResumableOptions extends DownloadPolicy {
  url: string;
  /** Final bytes go to `part` (appended to when it exists and the server honours Range). */
  part: string;
  /** Name for messages and progress. */
  file: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Minimum milliseconds between progress reports (default 200). */
  intervalMs?: number;
  /**
   * Stops the download when aborted (the command lines abort it on SIGINT/SIGTERM): the attempt
   * ends at once, nothing is retried, the `.part` is kept for a later resume, and a
   * {@link StoppedError} says so.
   */
  signal?: AbortSignal;
}

function sizeOf(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch {
    return 0;
  }
}

/** A number from the environment (NaN when unset, unreadable or not a number >= 0). */
function envNumber(name: string): number {
  let v: string | undefined;
  try {
    v = Deno.env.get(name);
  } catch {
    return NaN; // no --allow-env: use the default
  }
  const n = v === undefined || v.trim() === "" ? NaN : Number(v);
  return n >= 0 ? n : NaN;
}

/** The policy of `options`, completed from the environment and the defaults. */
export function resolveDownloadPolicy(options: DownloadPolicy = {}): Required<DownloadPolicy> {
  const pick = (own: number | undefined, env: number, fallback: number) =>
    own ?? (Number.isNaN(env) ? fallback : env);
  return {
    connectTimeoutMs: pick(
      options.connectTimeoutMs,
      envNumber("RESSL_DOWNLOAD_CONNECT_TIMEOUT") * 1000,
      30_000,
    ),
    idleTimeoutMs: pick(
      options.idleTimeoutMs,
      envNumber("RESSL_DOWNLOAD_IDLE_TIMEOUT") * 1000,
      60_000,
    ),
    retries: Math.floor(pick(options.retries, envNumber("RESSL_DOWNLOAD_RETRIES"), 3)),
    retryDelayMs: options.retryDelayMs ?? 1000,
  };
}

/** A failed attempt; `retry` says whether another attempt may succeed. */
class AttemptError extends Error {
  constructor(message: string, readonly retry: boolean, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const seconds = (ms: number) => `${+(ms / 1000).toFixed(3)} s`;

/**
 * One request: appends what the server sends to `part` (from its current size). Throws an
 * {@link AttemptError} on a timeout, a dropped connection or an HTTP error.
 */
async function attempt(o: FetchResumableOptions, policy: Required<DownloadPolicy>): Promise<void> {
  const { url, part, file, onProgress, intervalMs = 200, signal } = o;
  let have = sizeOf(part);
  const control = new AbortController();
  signal?.throwIfAborted();
  const stop = () => control.abort(signal!.reason);
  signal?.addEventListener("abort", stop, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const arm = (ms: number, why: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => control.abort(new AttemptError(why, true)), ms);
  };
  arm(policy.connectTimeoutMs, `no response within ${seconds(policy.connectTimeoutMs)}`);
  try {
    let response: Response;
    try {
      // identity: the file's own bytes (a server that gzips a .gz again would break its MD5).
      const headers: Record<string, string> = { "accept-encoding": "identity" };
      if (have > 0) headers.range = `bytes=${have}-`;
      response = await fetch(url, { headers, signal: control.signal });
    } catch (err) {
      if (err instanceof AttemptError) throw err;
      throw new AttemptError((err as Error).message, true, { cause: err });
    }
    if (response.status === 416 && have > 0) {
      await response.body?.cancel();
      return; // the part is already complete; the checksum decides
    }
    if (response.status !== 200 && response.status !== 206) {
      await response.body?.cancel();
      const transient = response.status >= 500 || response.status === 429;
      throw new AttemptError(`HTTP ${response.status} ${response.statusText}`, transient);
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
    const idle = `no data for ${seconds(policy.idleTimeoutMs)}`;
    let discard = false;
    try {
      arm(policy.idleTimeoutMs, idle);
      for await (const chunk of response.body!) {
        arm(policy.idleTimeoutMs, idle);
        if (total !== undefined && have + got + chunk.length > total) {
          await out.truncate(have); // nothing of this answer can be trusted
          discard = have === 0;
          throw new AttemptError(
            `the server sent more than it announced (more than its Content-Length of ${length} bytes` +
              `${
                have > 0 ? ` from byte ${have}` : ""
              }), so its answer was discarded. The server or ` +
              `a proxy on the way is faulty: try again later or fetch ${url} by hand`,
            false,
          );
        }
        let at = 0;
        while (at < chunk.length) at += await out.write(chunk.subarray(at));
        got += chunk.length;
        report(false);
      }
    } catch (err) {
      if (err instanceof AttemptError && err !== control.signal.reason) throw err;
      const reason = control.signal.reason instanceof AttemptError
        ? control.signal.reason.message
        : (err as Error).message;
      throw new AttemptError(
        `interrupted after ${have + got}${total ? ` of ${total}` : ""} bytes (${reason})`,
        true,
        { cause: err },
      );
    } finally {
      out.close();
      if (discard) await Deno.remove(part);
    }
    if (total !== undefined && have + got < total) {
      throw new AttemptError(`stopped after ${have + got} of ${total} bytes`, true);
    }
    report(true);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", stop);
  }
}

/** Resolves after `ms`, or at once when `signal` is aborted. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Downloads `url` into `part`, resuming from its current size. A timeout (no response, or a body
 * that stalls), a dropped connection or an HTTP 5xx/429 is retried up to `retries` times, each
 * attempt resuming where the last stopped; then a {@link DataError} says what happened, and the part
 * file is kept so that running again resumes. A server that sends more than its Content-Length, and
 * other HTTP errors, are not retried.
 */
export async function fetchResumable(options: FetchResumableOptions): Promise<void> {
  const { url, part, file } = options;
  const policy = resolveDownloadPolicy(options);
  for (let k = 0;; k++) {
    try {
      return await attempt(options, policy);
    } catch (err) {
      const kept = sizeOf(part);
      if (options.signal?.aborted) {
        throw new StoppedError(
          `Download of '${file}' from ${url} stopped (${stopReason(options.signal)}); ${
            kept > 0
              ? `the ${kept} bytes received are kept in '${part}': run --download again to resume`
              : "nothing was received: run --download again"
          }`,
          { file: kept > 0 ? part : file, cause: err },
        );
      }
      if (!(err instanceof AttemptError)) throw err;
      if (err.retry && k < policy.retries) {
        await pause(policy.retryDelayMs * 2 ** k, options.signal);
        continue;
      }
      const tries = k + 1;
      const next = kept > 0
        ? `; the ${kept} bytes received are kept in '${part}': run --download again to resume`
        : err.retry
        ? "; run --download again"
        : "";
      const hint = err.retry
        ? " (check the network; the timeouts and retries are set by RESSL_DOWNLOAD_CONNECT_TIMEOUT, " +
          "RESSL_DOWNLOAD_IDLE_TIMEOUT (seconds) and RESSL_DOWNLOAD_RETRIES)"
        : "";
      const what = `failed${tries > 1 ? ` ${tries} times` : ""}: ${err.message}`;
      throw new DataError(`Download of '${file}' from ${url} ${what}${next}${hint}`, {
        file,
        cause: err.cause ?? err,
      });
    }
  }
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
