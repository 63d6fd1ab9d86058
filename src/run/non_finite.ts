/**
 * The stop of a run whose loss (or a tensor of its state) became NaN or infinite: the command
 * exits with status 3 on it, and no checkpoint is written after it.
 *
 * @module
 */

/** A loss, or a tensor of the training state, that is NaN or infinite. */
export class NonFiniteLossError extends Error {
  /**
   * `what` says what became non-finite and when; `lastCheckpoint` (if any) is named as the one to
   * go back to.
   */
  constructor(what: string, lastCheckpoint?: string) {
    super(
      `Training stopped: ${what}` +
        (lastCheckpoint ? `; the last good checkpoint is '${lastCheckpoint}'` : "") +
        " (try a lower --lr)",
    );
    this.name = "NonFiniteLossError";
  }
}
