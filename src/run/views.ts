/**
 * The two (or more) augmented views of a run's configuration: the dataset's augmentation preset
 * with the configuration's image size, normalisation and crop scale.
 *
 * @module
 */

import type { ViewPipeline } from "../data/augment.ts";
import { augmentationPreset } from "../data/pipelines.ts";
import { augmentationPresetOf, type TrainConfig } from "../ressl/config.ts";

/** The views of a run: the weak (teacher) view, the strong (student) view and extra crops. */
export interface TrainViews {
  /** The teacher's view. */
  weak: ViewPipeline;
  /** The student's view (with multi-crop: the first crop). */
  strong: ViewPipeline;
  /** Further student crops (multi-crop), otherwise empty. */
  extra: ViewPipeline[];
}

/**
 * The views of a configuration: the preset's ops with the config's size, normalisation and crop
 * scale; with `multiCrop`, the strong view is the first crop and `extra` holds the others.
 */
export function trainViews(config: TrainConfig): TrainViews {
  const preset = augmentationPreset(augmentationPresetOf(config));
  const adapt = (v: ViewPipeline, size: number, scale: [number, number]): ViewPipeline => ({
    size,
    mean: [...config.image.mean],
    std: [...config.image.std],
    ops: v.ops.map((op) => op.op === "randomResizedCrop" ? { ...op, scale } : op),
  });
  const base: [number, number] = [config.augment.minScale, 1];
  const weak = adapt(preset.weak, config.image.size, base);
  const mc = config.multiCrop;
  if (!mc) return { weak, strong: adapt(preset.strong, config.image.size, base), extra: [] };
  const crops = mc.sizes.map((size, i) =>
    adapt(preset.strong, size, [mc.minScales[i], mc.maxScales[i]])
  );
  return { weak, strong: crops[0], extra: crops.slice(1) };
}
