/**
 * Files: safetensors, tensor trees to and from files, checkpoints, the metrics log, atomic writes,
 * progress display.
 *
 * @module
 */
export * from "./atomic.ts";
export * from "./safetensors.ts";
export * from "./npy.ts";
export * from "./tree_io.ts";
export * from "./checkpoint.ts";
export * from "./metrics.ts";
export * from "./progress.ts";
