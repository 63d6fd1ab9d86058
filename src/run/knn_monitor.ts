/**
 * The online kNN monitor of a run: the student backbone (eval-mode BN) encodes the labelled train
 * and test sets through the evaluation view (resize + Normalize), and the weighted kNN classifier
 * of the configuration scores the test set. The images are encoded in chunks, and `onProgress`
 * hears after each one (a run shows a sub-bar instead of freezing for the whole monitor).
 *
 * @module
 */

import { checkReadArgs, imageBytes, type ImageDataset } from "../data/datasets/dataset.ts";
import { extractFeatures } from "../eval/features.ts";
import { knnAccuracy, knnClassify } from "../eval/knn.ts";
import { concatRows } from "../ops/mod.ts";
import type { TrainConfig } from "../ressl/config.ts";
import type { TrainState } from "../ressl/step.ts";
import type { Context, Tensor } from "../tensor/mod.ts";

/** The labelled data of the kNN monitor. */
export interface KnnData {
  /** The labelled images whose features vote. */
  train: ImageDataset;
  /** The labelled images classified. */
  test: ImageDataset;
}

/** What the monitor is doing: `phase` and, while encoding, images done of `total`. */
export interface KnnProgress {
  /** Encoding the images, or classifying the test features. */
  phase: "encoding" | "classifying";
  /** Images encoded so far (training and test images; 0 while classifying). */
  done: number;
  /** Images to encode in all (while classifying: the test images classified). */
  total: number;
}

/** Images encoded between two progress reports. */
export const KNN_CHUNK = 4096;

/** Images `start .. start + count - 1` of `ds`, sharing its storage. */
function range(ds: ImageDataset, start: number, count: number): ImageDataset {
  const bytes = imageBytes(ds);
  const sub: ImageDataset = {
    name: `${ds.name}[${start}:${start + count}]`,
    length: count,
    height: ds.height,
    width: ds.width,
    channels: ds.channels,
    images: ds.images?.subarray(start * bytes, (start + count) * bytes),
    readInto(indices, out) {
      checkReadArgs(sub, indices, out);
      ds.readInto(Int32Array.from(indices as ArrayLike<number>, (i) => i + start), out);
    },
    close() {},
  };
  return sub;
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
  onProgress?: (p: KnnProgress) => void,
): { top1: number; top5: number } {
  if (!data) throw new Error("Cannot run the kNN monitor: no labelled train/test data given");
  const labels = data.train.labels, testLabels = data.test.labels;
  if (!labels || !testLabels) throw new Error("Cannot run the kNN monitor: data has no labels");
  const view = { size: config.image.size, ops: [], mean: config.image.mean, std: config.image.std };
  const total = data.train.length + data.test.length;
  let done = 0;
  return ctx.scope(() => {
    const encode = (ds: ImageDataset): Tensor => {
      const chunks: Tensor[] = [];
      try {
        for (let start = 0; start < ds.length; start += KNN_CHUNK) {
          const count = Math.min(KNN_CHUNK, ds.length - start);
          chunks.push(extractFeatures(ctx, {
            params: state.student.params.backbone,
            buffers: state.student.buffers,
            view,
            maxPool: config.model.maxPool,
            dataset: range(ds, start, count),
          }));
          done += count;
          onProgress?.({ phase: "encoding", done, total });
        }
        return chunks.length === 1 ? chunks.pop()! : concatRows(chunks);
      } finally {
        for (const c of chunks) c.dispose();
      }
    };
    const train = encode(data.train);
    const test = encode(data.test);
    onProgress?.({ phase: "classifying", done: 0, total: data.test.length });
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
