/**
 * Honest accuracies: the rank of the true class among scores, counted so that NaN can never make
 * a sample correct, and the error an evaluation stops with when its scores or loss are not finite
 * (an accuracy computed from them would be meaningless; NaN compares false with everything).
 *
 * @module
 */

/**
 * Scores or a loss that are NaN or infinite, where an accuracy or a loss is to be reported: the
 * result would be meaningless (NaN compares false, so a NaN score never ranks below the true
 * class), so the evaluation stops instead.
 */
export class NonFiniteScoreError extends Error {
  /** `what` says which value is not finite and where; `hint` what probably caused it. */
  constructor(what: string, hint: string) {
    super(`Cannot evaluate: ${what}; an accuracy from it would be meaningless (${hint})`);
    this.name = "NonFiniteScoreError";
  }
}

/** The hint of a probe that diverged. */
export const PROBE_DIVERGED = "the probe diverged: use a lower --lr";
/** The hint of non-finite features. */
export const FEATURES_NOT_FINITE =
  "the backbone's features are not finite: its weights or the images hold NaN or infinity";

/**
 * The rank of class `label` in `scores`: how many classes do not score below it (ties counted
 * against it when they come first). A NaN anywhere counts against the true class, so a NaN can
 * never make a sample correct.
 */
export function classRank(scores: ArrayLike<number>, label: number): number {
  const own = scores[label];
  if (Number.isNaN(own)) return scores.length;
  let rank = 0;
  for (let j = 0; j < scores.length; j++) {
    if (j === label) continue;
    const v = scores[j];
    if (!(v < own) && !(v === own && j > label)) rank++; // v > own, a tie before, or NaN
  }
  return rank;
}
