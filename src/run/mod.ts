/**
 * The training run: the loop over the loader with metrics, progress, the online kNN monitor,
 * checkpoints, exact resume and stop handling. It sits above the method (src/ressl) and evaluation
 * (src/eval), which it composes.
 *
 * @module
 */
export * from "./trainer.ts";
export * from "./collapse.ts";
