/**
 * The run's metrics log: one JSON object per line (`metrics.jsonl`), appended and flushed line by
 * line so a killed run keeps every line it logged. On resume, lines past the checkpoint's step are
 * dropped so the log reads as one uninterrupted run; that rewrite is atomic.
 *
 * Damage: a process killed while writing a line leaves a torn last line (no newline, not JSON).
 * Readers drop it and say so ({@link readMetricsFile} returns it); the next rewrite removes it. A
 * damaged line elsewhere is not a crash's trace: it is refused, naming the file and the line, so
 * that nothing is silently lost (fix or delete the line, then read again).
 *
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";

/** One logged record: a step record (`kind: "step"`) or an epoch summary (`kind: "epoch"`). */
export interface MetricsRecord {
  /** What the record is: a logged step, an epoch summary, a kNN result, or an event (a warning). */
  kind: "step" | "epoch" | "knn" | "event";
  /** Steps done when the record was written. */
  step: number;
  /** The epoch (from 0) the record belongs to. */
  epoch: number;
  /** The record's values (`loss`, `lr`, `knnTop1`, `message`, ...). */
  [key: string]: unknown;
}

/** Appends records to a JSONL file. */
export class MetricsLog {
  /** The log file. */
  readonly path: string;
  #file: Deno.FsFile;
  #encoder = new TextEncoder();

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /** Opens (creating if needed) the log at `path` for appending. */
  static open(path: string): MetricsLog {
    return new MetricsLog(path, Deno.openSync(path, { append: true, create: true }));
  }

  /** Appends one record as a line. */
  write(record: MetricsRecord): void {
    const bytes = this.#encoder.encode(JSON.stringify(record) + "\n");
    let written = 0;
    while (written < bytes.length) written += this.#file.writeSync(bytes.subarray(written));
  }

  /** Closes the file. */
  close(): void {
    this.#file.close();
  }
}

/** A metrics log as read: its records, and the torn last line dropped (if there was one). */
export interface MetricsFile {
  /** Every complete record, in file order. */
  records: MetricsRecord[];
  /** The last line, unterminated and unreadable (a write cut by a kill), which was dropped. */
  torn?: { line: number; text: string };
  /** The file does not end with a newline (an append would join the last line). */
  unterminated: boolean;
}

/** Why a parsed line is not a record, or undefined when it is one. */
function recordProblem(v: unknown): string | undefined {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return "is not a JSON object";
  const r = v as Record<string, unknown>;
  if (typeof r.kind !== "string") return "has no 'kind'";
  if (!Number.isSafeInteger(r.step) || (r.step as number) < 0) {
    return `has 'step' ${JSON.stringify(r.step)}, expected an integer >= 0`;
  }
  return undefined;
}

/**
 * Reads a metrics log. An unterminated, unreadable last line (a kill during a write) is dropped
 * and returned as `torn`; any other line that is not a record throws a `SyntaxError` naming the
 * file and the line.
 */
export function readMetricsFile(path: string): MetricsFile {
  const text = Deno.readTextFileSync(path);
  const records: MetricsRecord[] = [];
  const unterminated = text.length > 0 && !text.endsWith("\n");
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    let problem: string | undefined, cause: unknown;
    try {
      const v = JSON.parse(line);
      problem = recordProblem(v);
      if (!problem) records.push(v as MetricsRecord);
    } catch (e) {
      problem = "is not JSON";
      cause = e;
    }
    if (!problem) continue;
    // The last element of the split is the unterminated tail: what a killed write leaves.
    if (i === lines.length - 1) {
      return { records, torn: { line: i + 1, text: line }, unterminated };
    }
    throw new SyntaxError(
      `Cannot read metrics log '${path}': line ${i + 1} ${problem} (${
        JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}...` : line)
      }); fix or delete that line`,
      { cause },
    );
  }
  return { records, unterminated };
}

/** Reads every record of a metrics log (a torn last line, from a kill, is dropped). */
export function readMetrics(path: string): MetricsRecord[] {
  return readMetricsFile(path).records;
}

/** Writes `records` as a metrics log, atomically (readers see the old or the new file). */
export async function writeMetrics(path: string, records: readonly MetricsRecord[]): Promise<void> {
  await writeFileAtomic(path, records.map((r) => JSON.stringify(r) + "\n").join(""));
}

/** What {@link truncateMetrics} did. */
export interface TruncateMetricsResult {
  /** Records kept (step <= the step given). */
  kept: number;
  /** Records dropped (logged after it). */
  dropped: number;
  /** The torn last line dropped, if there was one. */
  torn?: { line: number; text: string };
}

/**
 * Rewrites the log (atomically) keeping only the records of steps <= `step`: what was logged
 * after the checkpoint a run resumes from. A missing log is left missing. Throws on a damaged
 * line other than a torn last one (see {@link readMetricsFile}); the file is untouched then.
 */
export async function truncateMetrics(path: string, step: number): Promise<TruncateMetricsResult> {
  let file: MetricsFile;
  try {
    file = readMetricsFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { kept: 0, dropped: 0 };
    throw e;
  }
  const kept = file.records.filter((r) => r.step <= step);
  if (kept.length < file.records.length || file.unterminated) await writeMetrics(path, kept);
  return { kept: kept.length, dropped: file.records.length - kept.length, torn: file.torn };
}
