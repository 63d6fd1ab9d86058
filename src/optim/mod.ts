/**
 * Optimisers (SGD, LARS) as pure functions over parameter trees, and learning-rate schedules.
 *
 * @module
 */
export * from "./params.ts";
export * from "./sgd.ts";
export * from "./lars.ts";
export * from "./schedule.ts";
