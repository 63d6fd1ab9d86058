/**
 * The run's metrics log: one JSON object per line (`metrics.jsonl`), appended and flushed line by
 * line so a killed run keeps every line it logged. On resume, lines past the checkpoint's step are
 * dropped so the log reads as one uninterrupted run.
 *
 * @module
 */

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

/** Reads every record of a metrics log (a truncated last line, from a kill, is ignored). */
export function readMetrics(path: string): MetricsRecord[] {
  const text = Deno.readTextFileSync(path);
  const out: MetricsRecord[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    try {
      out.push(JSON.parse(line));
    } catch (e) {
      if (i === lines.length - 1) break; // partial line written when the process was killed
      throw new SyntaxError(`Cannot read metrics log '${path}': line ${i + 1} is not JSON`, {
        cause: e,
      });
    }
  }
  return out;
}

/**
 * Rewrites the log keeping only records of steps <= `step` (step records) or epochs < `epoch`
 * (epoch records): what was logged after the checkpoint a run resumes from.
 */
export function truncateMetrics(path: string, step: number): void {
  let records: MetricsRecord[];
  try {
    records = readMetrics(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  const kept = records.filter((r) => r.step <= step);
  Deno.writeTextFileSync(path, kept.map((r) => JSON.stringify(r) + "\n").join(""));
}
