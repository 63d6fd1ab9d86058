/**
 * The training run: the loop over the loader ({@link runTraining}) with its metrics flusher,
 * checkpointer, online kNN monitor and collapse watch, exact resume and stop handling, and the
 * `--init` weights of a fresh run. It sits above the method (src/ressl) and evaluation
 * (src/eval), which it composes.
 *
 * @module
 */
export * from "./trainer.ts";
export * from "./views.ts";
export * from "./checkpointer.ts";
export * from "./metrics_flusher.ts";
export * from "./knn_monitor.ts";
export * from "./non_finite.ts";
export * from "./collapse.ts";
export * from "./init_weights.ts";
