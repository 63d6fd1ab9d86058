/**
 * Detects the collapse of a ReSSL run: when every queue row is the same embedding, the student's
 * logits over the queue are all equal, its distribution is uniform, and the relation loss is exactly
 * ln K whatever the teacher says. A loss pinned to ln K for `patience` logged steps is reported once.
 *
 * @module
 */

/** Options of {@link CollapseWatch}. */
export interface CollapseWatchOptions {
  /** Queue size K. */
  queueSize: number;
  /** How close to ln K counts as pinned (default 1e-3). */
  tolerance?: number;
  /** Consecutive pinned observations before the warning (default 10). */
  patience?: number;
}

/** Watches logged losses for a collapse; see the module doc. */
export class CollapseWatch {
  /** ln K, the loss of a collapsed run. */
  readonly lnK: number;
  #tolerance: number;
  #patience: number;
  #since = -1;
  #count = 0;
  #reported = false;

  /** A watch for a queue of `options.queueSize` keys. */
  constructor(options: CollapseWatchOptions) {
    this.lnK = Math.log(options.queueSize);
    this.#tolerance = options.tolerance ?? 1e-3;
    this.#patience = options.patience ?? 10;
  }

  /** Records the loss of `step`; returns a warning the first time the loss has stayed at ln K. */
  observe(step: number, loss: number): string | undefined {
    if (Math.abs(loss - this.lnK) > this.#tolerance) {
      this.#count = 0;
      return undefined;
    }
    if (this.#count++ === 0) this.#since = step;
    if (this.#reported || this.#count < this.#patience) return undefined;
    this.#reported = true;
    return `warning: the loss has stayed at ln K = ${
      this.lnK.toFixed(4)
    } since step ${this.#since}: ` +
      "the embeddings have collapsed (the queue holds one repeated key). A longer warm-up " +
      "(config optim.warmupEpochs, and more epochs: warm-up is capped at 2.5 % of all steps) or a " +
      "lower --lr usually avoids it";
  }
}
