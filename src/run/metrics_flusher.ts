/**
 * The metrics side of a run: the losses of the steps since the last flush stay on the device, and
 * one flush per logging interval downloads them (one synchronisation), stops the run on a
 * non-finite loss, watches for a collapse, and writes the step record and the progress line.
 * It also sums the epoch's losses for the epoch record.
 *
 * All of its state is here, explicit: the pending losses, the last loss, the epoch sums.
 *
 * @module
 */

import type { MetricsRecord } from "../io/metrics.ts";
import type { Progress } from "../io/progress.ts";
import type { Tensor } from "../tensor/mod.ts";
import { CollapseWatch } from "./collapse.ts";
import { NonFiniteLossError } from "./non_finite.ts";

/** Where records go: the run's `metrics.jsonl` (`MetricsLog`), or nowhere on a non-writing rank. */
export interface MetricsSink {
  /** Appends one record. */
  write(record: MetricsRecord): void;
}

/** Options of {@link MetricsFlusher}. */
export interface MetricsFlusherOptions {
  /** Where step, epoch and event records go. */
  sink: MetricsSink;
  /** The progress display (updated on every flush). */
  progress?: Progress;
  /** Images per step. */
  batchSize: number;
  /** Epochs of the run (shown in the progress). */
  epochs: number;
  /** The step this call of the run stops at (shown in the progress). */
  totalSteps: number;
  /** The step the run (re)started from: images/s count the steps since. */
  startStep: number;
  /** Queue size K, for the collapse watch (loss pinned at ln K). */
  queueSize: number;
  /** Seconds since the run (re)started. */
  elapsed: () => number;
  /** The newest checkpoint written, named when a non-finite loss stops the run. */
  lastCheckpoint: () => string | undefined;
}

/** Collects step losses on the device and logs them once per interval; see the module doc. */
export class MetricsFlusher {
  #opts: MetricsFlusherOptions;
  #pending: { step: number; loss: Tensor; lr: number }[] = [];
  #collapse: CollapseWatch;
  #lastLoss = NaN;
  #epochSum = 0;
  #epochCount = 0;

  /** A flusher with nothing pending. */
  constructor(options: MetricsFlusherOptions) {
    this.#opts = options;
    this.#collapse = new CollapseWatch({ queueSize: options.queueSize });
  }

  /** The last logged loss (NaN before the first flush). */
  get lastLoss(): number {
    return this.#lastLoss;
  }

  /** Takes ownership of the loss tensor of `step` (disposed at the next flush). */
  push(step: number, loss: Tensor, lr: number): void {
    this.#pending.push({ step, loss, lr });
  }

  /** Starts the loss sums of a new epoch. */
  beginEpoch(): void {
    this.#epochSum = 0;
    this.#epochCount = 0;
  }

  /** The mean loss of the epoch's logged steps (the last loss if none was logged). */
  epochLoss(): number {
    return this.#epochCount ? this.#epochSum / this.#epochCount : this.#lastLoss;
  }

  /**
   * Downloads the pending losses and logs them (nothing to do when none is pending). Throws a
   * {@link NonFiniteLossError} when one is NaN or infinite.
   */
  flush(epoch: number): void {
    const pending = this.#pending;
    if (pending.length === 0) return;
    this.#pending = [];
    let losses: number[];
    try {
      losses = pending.map((p) => p.loss.item());
    } finally {
      for (const p of pending) p.loss.dispose();
    }
    const bad = losses.findIndex((l) => !Number.isFinite(l));
    if (bad >= 0) {
      throw new NonFiniteLossError(
        `the loss became ${losses[bad]} at step ${pending[bad].step}`,
        this.#opts.lastCheckpoint(),
      );
    }
    const { sink, progress } = this.#opts;
    const last = pending[pending.length - 1];
    const lastLoss = losses[losses.length - 1];
    const mean = losses.reduce((a, b) => a + b, 0) / losses.length;
    const warning = this.#collapse.observe(last.step, lastLoss);
    if (warning) {
      progress?.message(warning);
      sink.write({ kind: "event", step: last.step, epoch, event: "collapse", message: warning });
    }
    this.#epochSum += mean * losses.length;
    this.#epochCount += losses.length;
    this.#lastLoss = lastLoss;
    const seconds = this.#opts.elapsed();
    const ips = (last.step - this.#opts.startStep) * this.#opts.batchSize /
      Math.max(seconds, 1e-9);
    sink.write({
      kind: "step",
      step: last.step,
      epoch,
      loss: lastLoss,
      lossMean: mean,
      lr: last.lr,
      imagesPerSecond: ips,
      seconds,
    });
    progress?.update({
      epoch,
      epochs: this.#opts.epochs,
      step: last.step,
      totalSteps: this.#opts.totalSteps,
      loss: lastLoss,
      lr: last.lr,
      imagesPerSecond: ips,
    }, this.#opts.batchSize);
  }

  /** Disposes the losses not yet flushed (a run that stops on an error). */
  dispose(): void {
    for (const p of this.#pending) p.loss.dispose();
    this.#pending = [];
  }
}
