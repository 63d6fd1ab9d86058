/**
 * Counter-based randomness (Philox4x32-10) shared by every layer that draws random numbers:
 * parameter initialisation (`nn`), the queue's initial keys and batch shuffles (`ressl`), and the
 * augmentation parameters (`data`). A value is a pure function of a key and a counter, so runs are
 * reproducible, resumable mid-epoch and parallel without changing results.
 *
 * @module
 */

export * from "./philox.ts";
