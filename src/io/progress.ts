/**
 * Training progress: a one-line bar redrawn in place on a terminal (epoch, step, loss, lr,
 * images/s, ETA), or plain lines (one per logging step) when the output is a file or a pipe.
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
  /** Training throughput. */
  imagesPerSecond: number;
}

/** Options of {@link Progress}. */
export interface ProgressOptions {
  /** Redraw one line in place (a terminal) instead of printing lines. */
  interactive: boolean;
  /** Where text goes (default: standard output). */
  write?: (text: string) => void;
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

/** The text of one progress line. */
export function progressLine(p: ProgressState, batchSize: number): string {
  const remaining = (p.totalSteps - p.step) * batchSize / Math.max(p.imagesPerSecond, 1e-9);
  const width = 24;
  const filled = Math.round(width * p.step / Math.max(p.totalSteps, 1));
  const bar = "#".repeat(filled) + "-".repeat(width - filled);
  return `epoch ${p.epoch + 1}/${p.epochs} [${bar}] step ${p.step}/${p.totalSteps} ` +
    `loss ${p.loss.toFixed(4)} lr ${p.lr.toExponential(2)} ` +
    `${p.imagesPerSecond.toFixed(1)} img/s ETA ${formatDuration(remaining)}`;
}

/** Shows training progress. */
export class Progress {
  #interactive: boolean;
  #write: (text: string) => void;
  #open = false;

  /** A display writing to `options.write` (default standard output). */
  constructor(options: ProgressOptions) {
    this.#interactive = options.interactive;
    const enc = new TextEncoder();
    this.#write = options.write ?? ((t) => Deno.stdout.writeSync(enc.encode(t)));
  }

  /** Shows the current state (redraws the bar, or prints a line). */
  update(p: ProgressState, batchSize: number): void {
    const line = progressLine(p, batchSize);
    if (this.#interactive) {
      this.#write(`\r\x1b[2K${line}`);
      this.#open = true;
    } else {
      this.#write(`${line}\n`);
    }
  }

  /** Prints a message on its own line (below the bar on a terminal). */
  message(text: string): void {
    if (this.#open) this.#write("\n");
    this.#open = false;
    this.#write(`${text}\n`);
  }

  /** Ends the bar's line. */
  close(): void {
    if (this.#open) this.#write("\n");
    this.#open = false;
  }
}
