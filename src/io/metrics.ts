/**
 * The run's metrics log: one JSON object per line (`metrics.jsonl`), appended and flushed line by
 * line so a killed run keeps every line it logged. On resume, lines past the checkpoint's step are
 * dropped so the log reads as one uninterrupted run; that rewrite is atomic.
 *
 * Damage: a process killed while writing a line leaves a torn last line (no newline, not JSON).
 * Readers drop it and say so ({@link readMetricsFile} returns it); the next rewrite removes it. A
 * damaged line elsewhere is not a crash's trace: readers refuse it, naming the file and the line,
 * so that nothing is silently skipped. A resume's truncation instead moves such lines, verbatim,
 * to a side file ({@link TruncateMetricsOptions.setAsideDamaged}) and goes on: one bad log line
 * never blocks a run, and nothing is lost.
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
  /** Damaged lines before the last (only with `damaged: "collect"`; else they throw). */
  damaged: DamagedLine[];
}

/** A line of a metrics log that is not a record. */
export interface DamagedLine {
  /** Its number (from 1). */
  line: number;
  /** What is wrong with it ("is not JSON", "has no 'kind'", ...). */
  problem: string;
  /** The line as it was. */
  text: string;
}

/** Options of {@link readMetricsFile}. */
export interface ReadMetricsOptions {
  /** A damaged line before the last: throw naming it (default), or collect it in `damaged`. */
  damaged?: "throw" | "collect";
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
 * file and the line (or, with `damaged: "collect"`, is returned in `damaged`).
 */
export function readMetricsFile(path: string, options: ReadMetricsOptions = {}): MetricsFile {
  const text = Deno.readTextFileSync(path);
  const records: MetricsRecord[] = [];
  const damaged: DamagedLine[] = [];
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
      return { records, torn: { line: i + 1, text: line }, unterminated, damaged };
    }
    if (options.damaged === "collect") {
      damaged.push({ line: i + 1, problem, text: lines[i] });
      continue;
    }
    throw new SyntaxError(
      `Cannot read metrics log '${path}': line ${i + 1} ${problem} (${
        JSON.stringify(line.length > 60 ? `${line.slice(0, 60)}...` : line)
      }); fix or delete that line`,
      { cause },
    );
  }
  return { records, unterminated, damaged };
}

/** Reads every record of a metrics log (a torn last line, from a kill, is dropped). */
export function readMetrics(path: string): MetricsRecord[] {
  return readMetricsFile(path).records;
}

/** Writes `records` as a metrics log, atomically (readers see the old or the new file). */
export async function writeMetrics(path: string, records: readonly MetricsRecord[]): Promise<void> {
  await writeFileAtomic(path, records.map((r) => JSON.stringify(r) + "\n").join(""));
}

/** Options of {@link truncateMetrics}. */
export interface TruncateMetricsOptions {
  /**
   * Move damaged lines (other than a torn last one) to this file, appended verbatim as JSON
   * records `{ "line": n, "problem": "...", "text": "..." }`, instead of refusing the log.
   */
  setAsideDamaged?: string;
}

/** What {@link truncateMetrics} did. */
export interface TruncateMetricsResult {
  /** Records kept (step <= the step given). */
  kept: number;
  /** Records dropped (logged after it). */
  dropped: number;
  /** The torn last line dropped, if there was one. */
  torn?: { line: number; text: string };
  /** Damaged lines moved to `setAsideDamaged`. */
  setAside: DamagedLine[];
}

/**
 * Rewrites the log (atomically) keeping only the records of steps <= `step`: what was logged
 * after the checkpoint a run resumes from. A missing log is left missing. A damaged line other
 * than a torn last one throws (see {@link readMetricsFile}; the file is untouched then), or with
 * `setAsideDamaged` is moved there first (the side file is written before the log is rewritten,
 * so a crash in between duplicates a line at worst, never loses one).
 */
export async function truncateMetrics(
  path: string,
  step: number,
  options: TruncateMetricsOptions = {},
): Promise<TruncateMetricsResult> {
  let file: MetricsFile;
  try {
    file = readMetricsFile(path, { damaged: options.setAsideDamaged ? "collect" : "throw" });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { kept: 0, dropped: 0, setAside: [] };
    throw e;
  }
  if (options.setAsideDamaged && file.damaged.length > 0) {
    let before = "";
    try {
      before = await Deno.readTextFile(options.setAsideDamaged);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
    }
    if (before !== "" && !before.endsWith("\n")) before += "\n";
    const added = file.damaged.map((d) => JSON.stringify(d) + "\n").join("");
    await writeFileAtomic(options.setAsideDamaged, before + added);
  }
  const kept = file.records.filter((r) => r.step <= step);
  const rewrite = kept.length < file.records.length || file.unterminated ||
    file.damaged.length > 0;
  if (rewrite) await writeMetrics(path, kept);
  return {
    kept: kept.length,
    dropped: file.records.length - kept.length,
    torn: file.torn,
    setAside: file.damaged,
  };
}
