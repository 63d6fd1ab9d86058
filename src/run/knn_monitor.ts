/**
 * The online kNN monitor of a run: the student backbone (eval-mode BN) encodes the labelled train
 * and test sets through the evaluation view (resize + Normalize), and the weighted kNN classifier
 * of the configuration scores the test set.
 *
 * @module
 */

import type { ImageDataset } from "../data/datasets/mod.ts";
import { extractFeatures } from "../eval/features.ts";
import { knnAccuracy, knnClassify } from "../eval/knn.ts";
import type { TrainConfig } from "../ressl/config.ts";
import type { TrainState } from "../ressl/step.ts";
import type { Context } from "../tensor/mod.ts";

/** The labelled data of the kNN monitor. */
export interface KnnData {
  /** The labelled images whose features vote. */
  train: ImageDataset;
  /** The labelled images classified. */
  test: ImageDataset;
}

/**
 * Top-1 and top-5 kNN accuracy (%) of the student backbone of `state`. Throws when `data` is
 * missing or unlabelled.
 */
export function knnMonitor(
  ctx: Context,
  config: TrainConfig,
  data: KnnData | undefined,
  state: TrainState,
): { top1: number; top5: number } {
  if (!data) throw new Error("Cannot run the kNN monitor: no labelled train/test data given");
  const labels = data.train.labels, testLabels = data.test.labels;
  if (!labels || !testLabels) throw new Error("Cannot run the kNN monitor: data has no labels");
  const view = { size: config.image.size, ops: [], mean: config.image.mean, std: config.image.std };
  return ctx.scope(() => {
    const common = {
      params: state.student.params.backbone,
      buffers: state.student.buffers,
      view,
      maxPool: config.model.maxPool,
    };
    const train = extractFeatures(ctx, { ...common, dataset: data.train });
    const test = extractFeatures(ctx, { ...common, dataset: data.test });
    const res = knnClassify({
      trainFeatures: train,
      trainLabels: labels,
      testFeatures: test,
      numClasses: Math.max(...labels) + 1,
      k: config.knn.k,
      temperature: config.knn.temperature,
    });
    return knnAccuracy(res, testLabels);
  });
}
