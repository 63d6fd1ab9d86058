/**
 * Training progress: a one-line bar redrawn in place on a terminal (epoch, step, loss, lr,
 * images/s, ETA), fitted to the terminal's width so that a redraw never wraps (a wrapped line
 * leaves a stale row behind); or plain lines (one per logging step) when the output is a file or a
 * pipe. Between steps, {@link Progress.activity} shows what the run is doing (kNN monitor,
 * checkpoint, plots) with a sub-bar, so a long pause always has a sign of life. The ETA counts the
 * remaining training steps at the measured training speed plus the time still expected for such
 * work ({@link Progress.setPendingSeconds}).
 *
 * @module
 */

/** What the progress display shows. */
export interface ProgressState {
  /** Current epoch (from 0). */
  epoch: number;
  /** Epochs of the run. */
  epochs: number;
  /** Steps done. */
  step: number;
  /** Steps this run stops at. */
  totalSteps: number;
  /** The last logged loss. */
  loss: number;
  /** The current learning rate. */
  lr: number;
  /** Training throughput (training steps only). */
  imagesPerSecond: number;
}

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** Redraw one line in place (a terminal) instead of printing lines. */
  interactive: boolean;
  /** Where text goes (default: standard output). */
  write?: (text: string) => void;
  /** Terminal width in columns (default: the terminal's when interactive, else unlimited). */
  columns?: () => number | undefined;
}

/** Formats seconds as `1h02m`, `3m05s` or `42s`. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(r).padStart(2, "0")}s`;
  return `${r}s`;
}

/** A `[###---]` bar `width` characters wide inside the brackets. */
export function bar(done: number, total: number, width: number): string {
  const filled = Math.max(0, Math.min(width, Math.round(width * done / Math.max(total, 1))));
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}]`;
}

/**
 * The text of one progress line. Without `columns`, the full line with a 24-character bar; with
 * `columns`, a line of at most `columns - 1` characters: the bar shrinks first (down to 10), then
 * the lr, the speed and the epoch are left out, and what still does not fit is cut.
 * `pendingSeconds` (non-training work still to come) is added to the ETA.
 */
export function progressLine(
  p: ProgressState,
  batchSize: number,
  columns?: number,
  pendingSeconds = 0,
): string {
  const steps = (p.totalSteps - p.step) * batchSize / Math.max(p.imagesPerSecond, 1e-9);
  const parts = {
    epoch: `epoch ${p.epoch + 1}/${p.epochs}`,
    step: `step ${p.step}/${p.totalSteps}`,
    loss: `loss ${p.loss.toFixed(4)}`,
    lr: `lr ${p.lr.toExponential(2)}`,
    speed: `${p.imagesPerSecond.toFixed(1)} img/s`,
    eta: `ETA ${formatDuration(steps + pendingSeconds)}`,
  };
  const join = (keys: (keyof typeof parts)[], barWidth: number) => {
    const text = keys.map((k) => parts[k]);
    if (barWidth > 0) {
      text.splice(keys[0] === "epoch" ? 1 : 0, 0, bar(p.step, p.totalSteps, barWidth));
    }
    return text.join(" ");
  };
  const all: (keyof typeof parts)[] = ["epoch", "step", "loss", "lr", "speed", "eta"];
  if (columns === undefined) return join(all, 24);
  const room = Math.max(1, columns - 1);
  const drops: (keyof typeof parts)[][] = [
    all,
    ["epoch", "step", "loss", "speed", "eta"],
    ["epoch", "step", "loss", "eta"],
    ["step", "loss", "eta"],
  ];
  for (const keys of drops) {
    const bare = join(keys, 0).length;
    const width = Math.min(30, room - bare - 3);
    if (width >= 10) return join(keys, width);
  }
  for (const keys of drops) {
    const line = join(keys, 0);
    if (line.length <= room) return line;
  }
  return join(drops[drops.length - 1], 0).slice(0, room);
}

/** The text of an activity line: `label [###---] done/total unit`, fitted like {@link progressLine}. */
export function activityLine(
  label: string,
  done: number | undefined,
  total: number | undefined,
  unit: string,
  columns?: number,
): string {
  if (done === undefined || total === undefined) {
    return columns === undefined ? label : label.slice(0, Math.max(1, columns - 1));
  }
  const count = `${done}/${total}${unit ? ` ${unit}` : ""}`;
  const room = columns === undefined ? Infinity : Math.max(1, columns - 1);
  const width = Math.min(30, room - label.length - count.length - 4);
  const line = width >= 10 ? `${label} ${bar(done, total, width)} ${count}` : `${label} ${count}`;
  return line.slice(0, room === Infinity ? undefined : room);
}

function terminalColumns(): number | undefined {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return undefined;
  }
}

/** Shows training progress; see the module doc. */
export class Progress {
  #interactive: boolean;
  #write: (text: string) => void;
  #columns: () => number | undefined;
  #open = false;
  #pending = 0;
  #activity: string | undefined;

  /** A display writing to `options.write` (default standard output). */
  constructor(options: ProgressOptions) {
    this.#interactive = options.interactive;
    const enc = new TextEncoder();
    this.#write = options.write ?? ((t) => Deno.stdout.writeSync(enc.encode(t)));
    this.#columns = options.columns ??
      (options.interactive ? terminalColumns : () => undefined);
  }

  /** Seconds of non-training work (kNN, checkpoints) still expected: added to the ETA. */
  setPendingSeconds(seconds: number): void {
    this.#pending = Number.isFinite(seconds) && seconds > 0 ? seconds : 0;
  }

  #draw(line: string): void {
    if (this.#interactive) {
      this.#write(`\r\x1b[2K${line}`);
      this.#open = true;
    } else {
      this.#write(`${line}\n`);
    }
  }

  /** Shows the current state (redraws the bar, or prints a line). */
  update(p: ProgressState, batchSize: number): void {
    this.#activity = undefined;
    const columns = this.#interactive ? this.#columns() ?? 80 : this.#columns();
    this.#draw(progressLine(p, batchSize, columns, this.#pending));
  }

  /**
   * Shows work between steps: `label`, with a sub-bar when `done`/`total` are given. On a
   * terminal the line is redrawn in place (the next {@link update} replaces it); off a terminal
   * only a new label is printed (once), so logs stay short.
   */
  activity(label: string, done?: number, total?: number, unit = ""): void {
    if (this.#interactive) {
      this.#draw(activityLine(label, done, total, unit, this.#columns() ?? 80));
    } else if (this.#activity !== label) {
      this.#draw(activityLine(label, undefined, undefined, unit, this.#columns()));
    }
    this.#activity = label;
  }

  /** Prints a message on its own line (below the bar on a terminal). */
  message(text: string): void {
    // An activity line is replaced by the message; the progress bar stays above it.
    if (this.#open) this.#write(this.#activity !== undefined ? "\r\x1b[2K" : "\n");
    this.#open = false;
    this.#activity = undefined;
    this.#write(`${text}\n`);
  }

  /** Ends the bar's line. */
  close(): void {
    if (this.#open) this.#write("\n");
    this.#open = false;
  }
}
