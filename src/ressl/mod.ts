/**
 * The ReSSL method: relation loss, queue, EMA teacher, the train step, configuration and presets,
 * state building, and the checkpoint schema.
 *
 * @module
 */
export * from "./config.ts";
export * from "./loss.ts";
export * from "./queue.ts";
export * from "./ema.ts";
export * from "./step.ts";
export * from "./state.ts";
export * from "./checkpoint.ts";
