/**
 * The data layer: dataset readers, downloads, augmentations, presets and the batch loader.
 * Host-side (pure TypeScript on u8 / f32 arrays); the training step uploads the batches.
 *
 * @module
 */

export * from "./errors.ts";
export * from "./datasets/mod.ts";
export * from "./augment.ts";
export * from "./augment_params.ts";
export { bilinearCoeffs, type CropBox, resizeU8 } from "../image/resize.ts";
export * from "./pipelines.ts";
export * from "./loader.ts";
export * from "./download.ts";
export * from "./stop_signals.ts";
