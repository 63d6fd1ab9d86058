/**
 * Learning-rate schedules: linear warm-up from 0 followed by a per-iteration cosine decay to 0
 * (RESSL_SPEC §6), the project's short-run warm-up rule, and linear batch-size scaling.
 *
 * With `W` warm-up steps out of `N` (step `t` counted from 0, updated every iteration):
 * `lr(t) = base * t / W` for `t < W`, then `lr(t) = base * (1 + cos(pi * (t - W) / (N - W))) / 2`,
 * as the official code's `adjust_learning_rate` (which starts at 0 and reaches 0 at `t = N`).
 *
 * @module
 */

/** How long the warm-up lasts. */
export interface WarmupOptions {
  /** Optimiser steps per epoch. */
  stepsPerEpoch: number;
  /** Total optimiser steps of the run (epochs * stepsPerEpoch). */
  totalSteps: number;
  /** Warm-up length in epochs. Default 5. */
  warmupEpochs?: number;
  /** Upper bound on the warm-up as a fraction of all steps. Default 0.025 (5 of 200 epochs). */
  maxWarmupFraction?: number;
}

/** A warm-up + cosine schedule. */
export interface WarmupCosineOptions extends WarmupOptions {
  /** Peak learning rate, reached at the end of the warm-up (already batch-scaled). */
  baseLr: number;
}

function checkCount(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(
      `Cannot build the schedule: ${name} is ${v} but must be an integer >= ${min}`,
    );
  }
}

function checkRange(name: string, v: number, lo: number, hi: number): void {
  if (!(Number.isFinite(v) && v >= lo && v <= hi)) {
    throw new RangeError(
      `Cannot build the schedule: ${name} is ${v} but must be in [${lo}, ${hi}]`,
    );
  }
}

/**
 * Number of warm-up steps: `warmupEpochs` epochs, but never more than `maxWarmupFraction` of all
 * steps (so a 10-epoch run warms up for a quarter of an epoch).
 */
export function warmupSteps(opts: WarmupOptions): number {
  const epochs = opts.warmupEpochs ?? 5;
  const fraction = opts.maxWarmupFraction ?? 0.025;
  checkCount("stepsPerEpoch", opts.stepsPerEpoch, 1);
  checkCount("totalSteps", opts.totalSteps, 1);
  checkRange("warmupEpochs", epochs, 0, Number.MAX_SAFE_INTEGER);
  checkRange("maxWarmupFraction", fraction, 0, 1);
  const byEpochs = Math.floor(epochs * opts.stepsPerEpoch);
  // The epsilon absorbs binary rounding: 2.5 % of 78000 steps is 1950, not 1949.
  const byFraction = Math.floor(opts.totalSteps * fraction + 1e-9);
  return Math.min(byEpochs, byFraction, opts.totalSteps);
}

/** The learning rate of step `step` (0-based) under linear warm-up from 0 then cosine to 0. */
export function warmupCosineLr(step: number, opts: WarmupCosineOptions): number {
  checkCount("step", step, 0);
  checkRange("baseLr", opts.baseLr, 0, Number.MAX_VALUE);
  const warm = warmupSteps(opts);
  const total = opts.totalSteps;
  if (step < warm) return opts.baseLr * step / warm;
  if (step >= total) return 0;
  return 0.5 * opts.baseLr * (1 + Math.cos(Math.PI * (step - warm) / (total - warm)));
}

/** Options of {@link scaleLr}. */
export interface ScaleLrOptions {
  /** Apply the linear scaling rule. Default true (`false` returns `lr` unchanged). */
  enabled?: boolean;
  /** The batch size `lr` was tuned for. Default 256. */
  referenceBatch?: number;
}

/** Linear scaling rule: `lr * batchSize / 256` (Goyal et al.), unless disabled. */
export function scaleLr(lr: number, batchSize: number, opts: ScaleLrOptions = {}): number {
  checkRange("lr", lr, 0, Number.MAX_VALUE);
  checkCount("batchSize", batchSize, 1);
  const ref = opts.referenceBatch ?? 256;
  checkCount("referenceBatch", ref, 1);
  return opts.enabled === false ? lr : lr * batchSize / ref;
}
