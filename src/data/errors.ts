/**
 * The error type of the data layer: bad input files, failed downloads, bad options.
 *
 * @module
 */

/**
 * An error about data the user supplied or asked for: a missing, truncated or malformed file, a
 * failed download or checksum. The message names the file, says what is wrong and what to do, so a
 * command line can print it without a stack trace and exit non-zero.
 */
export class DataError extends Error {
  /** The file the error is about, when there is one. */
  readonly file?: string;

  /** `message` says what is wrong and what to do; `file` names the file, `cause` the underlying error. */
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DataError";
    this.file = options.file;
  }
}

/**
 * The user asked to stop (SIGINT/SIGTERM, through an `AbortSignal`) while data was being fetched or
 * extracted. The message says what was kept (a `.part` to resume) and that nothing half-made was
 * left; a command line exits 130, as a shell does for Ctrl-C.
 */
export class StoppedError extends DataError {
  /** `message` says what stopped and what was kept. */
  constructor(message: string, options: { file?: string; cause?: unknown } = {}) {
    super(message, options);
    this.name = "StoppedError";
  }
}

/** Why `signal` was aborted, in words ("SIGINT", or the reason's message). */
export function stopReason(signal: AbortSignal): string {
  const r = signal.reason;
  return typeof r === "string" ? r : r instanceof Error ? r.message : "stop requested";
}
