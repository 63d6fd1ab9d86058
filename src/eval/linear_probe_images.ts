/**
 * The linear-probe protocol on images (RESSL_SPEC §7): the frozen backbone runs in eval mode (BN
 * running statistics) on freshly augmented training views every epoch (RandomResizedCrop + flip,
 * `probeTrainView`), and on the unaugmented test images (`evalView`). Because the test view has no
 * random op and the backbone is frozen, the test features are computed once. The fast variant
 * (`fast: true`) also computes the training features once, through the test view, and trains the
 * probe on them ({@link linearProbeOnFeatures}).
 *
 * @module
 */

import type { ImageDataset } from "../data/datasets/mod.ts";
import { augmentBatch, AugmentWorkspace, type ViewPipeline } from "../data/augment.ts";
import { foldIn, nameId, rngKey } from "../random/philox.ts";
import { resnetForward } from "../nn/mod.ts";
import type { Context, Tensor } from "../tensor/mod.ts";
import type { Backbone } from "./backbone_io.ts";
import { extractFeatures } from "./features.ts";
import {
  linearProbeOnFeatures,
  type LinearProbeResult,
  type ProbeFeatureBatches,
  type ProbeOptions,
  trainLinearProbe,
} from "./linear_probe.ts";

/** Options of {@link linearProbe}. */
export interface LinearProbeOptions extends ProbeOptions {
  /** The frozen backbone. */
  backbone: Backbone;
  /** Max-pool after the stem (as the backbone was trained). */
  maxPool?: boolean;
  /** Labelled training images. */
  train: ImageDataset;
  /** Labelled test images. */
  test: ImageDataset;
  /** Training view: RandomResizedCrop + flip + Normalize (`probeTrainView`). */
  trainView: ViewPipeline;
  /** Test view: resize + Normalize (`evalView`). */
  testView: ViewPipeline;
  /** Train on features cached once through `testView` (no augmentation). Default false. */
  fast?: boolean;
  /** Number of classes (default: the dataset's class names, else the largest label + 1). */
  numClasses?: number;
}

/** The labels of a dataset, checked to exist and be >= 0. */
export function datasetLabels(ds: ImageDataset): Int32Array {
  const labels = ds.labels;
  if (!labels) throw new RangeError(`Cannot evaluate on '${ds.name}': it has no labels`);
  const bad = labels.findIndex((c) => c < 0);
  if (bad >= 0) {
    throw new RangeError(
      `Cannot evaluate on '${ds.name}': image ${bad} has no label (use a labelled split)`,
    );
  }
  return labels;
}

/** Number of classes of labelled datasets: their class names, else the largest label + 1. */
export function datasetClasses(...sets: ImageDataset[]): number {
  let n = 0;
  for (const ds of sets) {
    n = Math.max(n, ds.classes?.length ?? 0);
    for (const c of datasetLabels(ds)) n = Math.max(n, c + 1);
  }
  return n;
}

/** Backbone features (not normalised) of freshly augmented training views, batch by batch. */
function augmentedBatches(
  ctx: Context,
  opts: LinearProbeOptions,
): ProbeFeatureBatches {
  const ds = opts.train;
  const view = opts.trainView;
  const bytes = ds.height * ds.width * ds.channels;
  const key = foldIn(rngKey(opts.seed ?? 0), nameId("probe.augment"));
  const ws = new AugmentWorkspace();
  return function* (order, epoch, batchSize) {
    for (let start = 0; start < order.length; start += batchSize) {
      const indices = order.subarray(start, Math.min(order.length, start + batchSize));
      const images = new Uint8Array(indices.length * bytes);
      ds.readInto(indices, images);
      const [host] = augmentBatch({
        images,
        height: ds.height,
        width: ds.width,
        channels: ds.channels,
        indices,
        epoch,
        key,
        views: [view],
        ws,
      });
      const x: Tensor = ctx.noGrad(() =>
        ctx.scope(() => {
          const input = ctx.fromArray(host, [indices.length, ds.channels, view.size, view.size]);
          return resnetForward(opts.backbone.params, opts.backbone.buffers, input, {
            training: false,
            maxPool: opts.maxPool,
          }).features;
        })
      );
      yield x;
    }
  };
}

/** Runs the linear-probe protocol (or its fast variant); leaves nothing allocated. */
export function linearProbe(ctx: Context, opts: LinearProbeOptions): LinearProbeResult {
  const trainLabels = datasetLabels(opts.train);
  const testLabels = datasetLabels(opts.test);
  const numClasses = opts.numClasses ?? datasetClasses(opts.train, opts.test);
  const common = {
    params: opts.backbone.params,
    buffers: opts.backbone.buffers,
    maxPool: opts.maxPool,
    normalize: false,
  };
  return ctx.scope(() => {
    const testFeatures = extractFeatures(ctx, {
      ...common,
      dataset: opts.test,
      view: opts.testView,
    });
    const test = { features: testFeatures, labels: testLabels };
    if (opts.fast) {
      const train = extractFeatures(ctx, { ...common, dataset: opts.train, view: opts.testView });
      return linearProbeOnFeatures(ctx, {
        ...opts,
        numClasses,
        train: { features: train, labels: trainLabels },
        test,
      });
    }
    return trainLinearProbe(ctx, {
      ...opts,
      numClasses,
      featureDim: testFeatures.shape[1],
      trainLabels,
      trainFeatures: augmentedBatches(ctx, opts),
      test,
    });
  });
}
