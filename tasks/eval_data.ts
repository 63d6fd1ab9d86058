/**
 * The images `eval`, `embed` and `plot --map` read for a checkpoint, with `--data` and `--preset`
 * meaning what they mean in `train`: the evaluation views (the checkpoint's size and
 * normalisation, or a preset's), and the labelled train/test splits of a built-in dataset or of
 * an image folder (`train/` + `val/`, or the held-out split train uses for its kNN monitor).
 *
 * @module
 */

import type { ViewPipeline } from "../src/data/augment.ts";
import type { ImageDataset } from "../src/data/datasets/dataset.ts";
import { augmentationPreset, evalView, probeTrainView } from "../src/data/pipelines.ts";
import { augmentationPresetOf, canonicalName, type TrainConfig } from "../src/ressl/config.ts";
import { UsageError } from "./cli_flags.ts";
import { type DataSource, openBuiltin, resolveData } from "./data_source.ts";
import { openFolder } from "./folder_data.ts";

/** The evaluation views and the dataset they are for. */
export interface EvalViews {
  /** The dataset name (`image-folder` for own images). */
  name: string;
  /** No augmentation: the image resized and normalised. */
  test: ViewPipeline;
  /** The linear probe's training view (RandomResizedCrop + flip). */
  train: ViewPipeline;
}

/**
 * Checks `--preset` of an evaluation task (old names accepted with a note on stderr); throws a
 * {@link UsageError} naming it when unknown.
 */
export function checkEvalPreset(preset: string | undefined): string | undefined {
  if (preset === undefined) return undefined;
  const { name, note } = canonicalName(preset);
  if (note) console.error(note);
  try {
    augmentationPreset(name);
  } catch (e) {
    throw new UsageError(`Invalid flag --preset: ${(e as Error).message}`);
  }
  return name;
}

/** The views: the preset's when `--preset` is given, else the checkpoint's own settings. */
export function evalViews(config: TrainConfig, preset: string | undefined): EvalViews {
  if (preset !== undefined) {
    const p = augmentationPreset(preset);
    return { name: p.name, test: evalView(p), train: probeTrainView(p) };
  }
  const p = augmentationPreset(augmentationPresetOf(config));
  const own = (v: ViewPipeline): ViewPipeline => ({
    size: config.image.size,
    ops: v.ops,
    mean: [...config.image.mean],
    std: [...config.image.std],
  });
  return {
    name: canonicalName(config.dataset).name,
    test: own(evalView(p)),
    train: own(probeTrainView(p)),
  };
}

/** Resolves `--data` for the checkpoint's (or `--preset`'s) dataset `name`. */
export function evalSource(name: string, data: string | undefined): DataSource {
  if (name === "image-folder" && data === undefined) {
    throw new UsageError(
      "Missing flag --data <dir>: the checkpoint was trained on an image folder; give the folder " +
        "to evaluate on (or --preset <dataset>)",
    );
  }
  return resolveData(name, data);
}

/** Opens the labelled train and test images of `source` at the view's size and `channels`. */
export async function openLabelled(
  source: DataSource,
  size: number,
  channels: number,
): Promise<{ train: ImageDataset; test: ImageDataset; close: () => void; where: string }> {
  if (source.kind === "builtin") {
    const train = await openBuiltin(source, { split: "train", imageSize: size });
    let test: ImageDataset;
    try {
      test = await openBuiltin(source, { split: "test", imageSize: size });
    } catch (e) {
      train.close();
      throw e;
    }
    return {
      train,
      test,
      where: source.where,
      close: () => {
        train.close();
        test.close();
      },
    };
  }
  if (channels !== 1 && channels !== 3) {
    throw new Error(`Cannot read '${source.root}' for a backbone of ${channels} channels`);
  }
  const fd = openFolder(source, { size, channels });
  if (!fd.train || !fd.test) {
    fd.pretrain.close();
    throw new UsageError(
      `Invalid flag --data: evaluating needs labelled images, and '${source.trainDir}' has no class subfolders (embed works on unlabelled folders)`,
    );
  }
  const test = fd.test;
  return {
    train: fd.train,
    test,
    where: `${source.root} (test: ${fd.split === "val folder" ? source.testDir : "10 % held out"})`,
    close: () => {
      fd.pretrain.close();
      if (test !== fd.pretrain) test.close();
    },
  };
}
