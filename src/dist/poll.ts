/**
 * Waiting without hanging: MPI has no timeout on a collective, so every collective is started
 * nonblocking and its requests are polled against a deadline. Polling spins for a short while
 * (fast completion, lowest latency), then sleeps briefly between polls so that a rank waiting for
 * a slow peer leaves the CPU to that peer's threads.
 *
 * @module
 */

/** How to poll. */
export interface PollOptions {
  /** Give up after this many milliseconds. */
  timeoutMs: number;
  /** Poll without pausing for this many milliseconds first. */
  spinMs: number;
  /** Then pause this many milliseconds between polls (the OS rounds it up to ~0.1 ms). */
  sleepMs: number;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the calling thread for about `ms` milliseconds (`Atomics.wait`, no event loop). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

/**
 * Calls `poll` until it returns true (returns true) or the deadline passes (returns false).
 * `poll` may throw; the error propagates.
 */
export function pollUntil(poll: () => boolean, opts: PollOptions): boolean {
  const start = performance.now();
  const deadline = start + opts.timeoutMs;
  const spinUntil = start + opts.spinMs;
  for (;;) {
    if (poll()) return true;
    const now = performance.now();
    if (now > deadline) return false;
    if (now > spinUntil) sleepSync(opts.sleepMs);
  }
}

/**
 * Splits `length` elements into `[offset, count]` pieces of at most `maxCount` (MPI counts are
 * C ints). Zero elements give no piece.
 */
export function chunkRanges(length: number, maxCount: number): Array<[number, number]> {
  if (!Number.isInteger(maxCount) || maxCount < 1) {
    throw new RangeError(`Cannot split into pieces of ${maxCount} elements: use an integer >= 1`);
  }
  const out: Array<[number, number]> = [];
  for (let off = 0; off < length; off += maxCount) {
    out.push([off, Math.min(maxCount, length - off)]);
  }
  return out;
}
