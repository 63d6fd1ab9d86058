/**
 * The linear probe of RESSL_SPEC §7: a `Linear(D, C)` classifier (weight N(0, 0.01), bias 0) on
 * frozen backbone features, trained with softmax cross-entropy by SGD (Nesterov momentum 0.9, no
 * weight decay, batch 256) under a cosine learning rate (0.2 for small datasets) stepped per epoch
 * as `torch.optim.lr_scheduler.CosineAnnealingLR(T_max = epochs)`: `lr_e = lr (1 + cos(pi e / E)) / 2`
 * for epoch e = 0..E-1. After every epoch the probe is scored on the test features (top-1 and top-5,
 * in %); the best and the last epoch are reported.
 *
 * {@link trainLinearProbe} is the loop over any source of training features;
 * {@link linearProbeOnFeatures} is the fast protocol on cached features (no augmentation), and
 * `linearProbe` (linear_probe_images.ts) the paper's protocol with augmented images.
 *
 * @module
 */

import { foldIn, nameId, normalArray, permutation, type RngKey, rngKey } from "../random/philox.ts";
import type { LinearTree } from "../nn/head.ts";
import { add, crossEntropy, linear, permuteRows, scale, sliceRows } from "../ops/mod.ts";
import { sgdInit, sgdStep } from "../optim/sgd.ts";
import { type Context, disposeTree, type Tensor, valueAndGrad } from "../tensor/mod.ts";
import { classRank, NonFiniteScoreError, PROBE_DIVERGED } from "./scores.ts";

/** Hyper-parameters of the probe (defaults: the paper's small-dataset recipe, 100 epochs). */
export interface ProbeOptions {
  /** Training epochs (default 100). */
  epochs?: number;
  /** Samples per SGD step (default 256). */
  batchSize?: number;
  /** Initial learning rate of the cosine schedule (default 0.2; ImageNet 0.3). */
  lr?: number;
  /** SGD momentum (default 0.9, Nesterov). */
  momentum?: number;
  /** L2 weight decay (default 0). */
  weightDecay?: number;
  /** Seed of the probe's initialisation and of the epoch shuffles (default 0). */
  seed?: number;
  /** Called after every epoch (progress output). */
  onEpoch?: (r: ProbeEpochResult) => void;
}

/** Features with their class labels. */
export interface LabelledFeatures {
  /** [N, D] features (not normalised for the probe). */
  features: Tensor;
  /** N labels in [0, numClasses). */
  labels: Int32Array;
}

/** One epoch of probe training. */
export interface ProbeEpochResult {
  /** 1-based epoch number. */
  epoch: number;
  /** Learning rate used in the epoch. */
  lr: number;
  /** Mean training cross-entropy of the epoch. */
  trainLoss: number;
  /** Test top-1 accuracy in % after the epoch. */
  top1: number;
  /** Test top-5 accuracy in % after the epoch. */
  top5: number;
}

/** What {@link trainLinearProbe} returns. */
export interface LinearProbeResult {
  /** One entry per epoch. */
  history: ProbeEpochResult[];
  /** The epoch with the highest test top-1 (the earliest on ties). */
  best: ProbeEpochResult;
  /** The final epoch. */
  last: ProbeEpochResult;
  /** Number of classes of the probe. */
  numClasses: number;
  /** Feature dimension (the probe's input). */
  featureDim: number;
  /** Training samples per epoch. */
  trainSize: number;
  /** Test samples scored. */
  testSize: number;
}

/**
 * Yields the training features of one epoch, batch by batch, in the order `order` (dataset
 * indices): batch `b` holds rows `order[b * batchSize ..]`. Each yielded tensor [count, D] is new;
 * the trainer disposes it.
 */
export type ProbeFeatureBatches = (
  order: Int32Array,
  epoch: number,
  batchSize: number,
) => Iterable<Tensor>;

/** Arguments of {@link trainLinearProbe}. */
export interface TrainLinearProbeArgs extends ProbeOptions {
  /** Number of classes (the probe's outputs). */
  numClasses: number;
  /** Feature dimension (the probe's inputs). */
  featureDim: number;
  /** Labels of the training samples (their count is the training-set size). */
  trainLabels: Int32Array;
  /** Source of the training features. */
  trainFeatures: ProbeFeatureBatches;
  /** Test features and labels (fixed: the test set is never augmented). */
  test: LabelledFeatures;
}

/** The learning rate of `epoch` (0-based) of `epochs` under per-epoch cosine annealing. */
export function probeLr(lr: number, epoch: number, epochs: number): number {
  return 0.5 * lr * (1 + Math.cos(Math.PI * epoch / epochs));
}

/** A probe `Linear(featureDim, numClasses)` with weight N(0, 0.01) and zero bias. */
export function initProbe(
  ctx: Context,
  opts: { featureDim: number; numClasses: number; key: RngKey },
): LinearTree {
  const { featureDim, numClasses, key } = opts;
  return ctx.scope(() => ({
    weight: ctx.fromArray(
      normalArray(foldIn(key, nameId("probe.weight")), numClasses * featureDim, 0, 0.01),
      [numClasses, featureDim],
    ),
    bias: ctx.zeros([numClasses]),
  }));
}

/**
 * Top-1 and top-5 accuracy (%) of a probe on test features, in chunks of `chunk` rows. Throws a
 * {@link NonFiniteScoreError} when a score is NaN or infinite.
 */
export function evaluateProbe(
  probe: LinearTree,
  test: LabelledFeatures,
  chunk = 1024,
): { top1: number; top5: number } {
  const ctx = probe.weight.ctx;
  const m = test.features.shape[0];
  const classes = probe.weight.shape[0];
  let c1 = 0, c5 = 0;
  for (let start = 0; start < m; start += chunk) {
    const rows = Math.min(chunk, m - start);
    const logits = ctx.noGrad(() =>
      ctx.scope(() => {
        const x = sliceRows(test.features, start, start + rows);
        return linear(x, probe.weight, probe.bias).toFloat32();
      })
    );
    const bad = logits.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new NonFiniteScoreError(
        `the probe's score of class ${bad % classes} for test sample ${
          start + Math.floor(bad / classes)
        } is ${logits[bad]}`,
        PROBE_DIVERGED,
      );
    }
    for (let r = 0; r < rows; r++) {
      const row = logits.subarray(r * classes, (r + 1) * classes);
      const rank = classRank(row, test.labels[start + r]);
      if (rank === 0) c1++;
      if (rank < 5) c5++;
    }
  }
  return { top1: (100 * c1) / m, top5: (100 * c5) / m };
}

function checkLabels(what: string, labels: Int32Array, numClasses: number): void {
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (c < 0 || c >= numClasses) {
      throw new RangeError(
        `Cannot train the linear probe: ${what} label ${c} of sample ${i} is outside [0, ${numClasses})`,
      );
    }
  }
}

function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(
      `Cannot train the linear probe: ${name} is ${v}, expected an integer >= 1`,
    );
  }
  return v;
}

/** Trains and scores a linear probe; see the module documentation. Leaves nothing allocated. */
export function trainLinearProbe(ctx: Context, args: TrainLinearProbeArgs): LinearProbeResult {
  const epochs = positiveInt("epochs", args.epochs ?? 100);
  const batchSize = positiveInt("batchSize", args.batchSize ?? 256);
  const numClasses = positiveInt("numClasses", args.numClasses);
  const featureDim = positiveInt("featureDim", args.featureDim);
  const baseLr = args.lr ?? 0.2;
  if (!(baseLr > 0 && Number.isFinite(baseLr))) {
    throw new RangeError(`Cannot train the linear probe: lr is ${baseLr}, expected a number > 0`);
  }
  const n = args.trainLabels.length;
  if (n === 0) throw new RangeError("Cannot train the linear probe: the training set is empty");
  const [m, testDim] = args.test.features.shape;
  if (testDim !== featureDim || m !== args.test.labels.length || m === 0) {
    throw new RangeError(
      `Cannot train the linear probe: test features [${args.test.features.shape}] for ${args.test.labels.length} labels of dimension ${featureDim}`,
    );
  }
  checkLabels("training", args.trainLabels, numClasses);
  checkLabels("test", args.test.labels, numClasses);
  const root = rngKey(args.seed ?? 0);
  let probe = initProbe(ctx, { featureDim, numClasses, key: root });
  let state = sgdInit(probe);
  const lossAndGrad = valueAndGrad((p: LinearTree, x: Tensor, labels: Int32Array) =>
    crossEntropy(linear(x, p.weight, p.bias), labels)
  );
  const history: ProbeEpochResult[] = [];
  try {
    for (let epoch = 0; epoch < epochs; epoch++) {
      const lr = probeLr(baseLr, epoch, epochs);
      const order = permutation(foldIn(root, nameId("probe.shuffle"), epoch), n);
      let total = ctx.zeros([]);
      let start = 0;
      for (const x of args.trainFeatures(order, epoch, batchSize)) {
        const count = x.shape[0];
        if (x.shape[1] !== featureDim || count < 1 || start + count > n) {
          x.dispose();
          throw new RangeError(
            `Cannot train the linear probe: a feature batch has shape [${x.shape}] at sample ${start} of ${n} (dimension ${featureDim})`,
          );
        }
        const batchLabels = Int32Array.from(
          order.subarray(start, start + count),
          (i) => args.trainLabels[i],
        );
        const { value, grads } = lossAndGrad(probe, x, batchLabels);
        x.dispose();
        const next = sgdStep(probe, grads, state, {
          lr,
          momentum: args.momentum ?? 0.9,
          weightDecay: args.weightDecay ?? 0,
          nesterov: true,
        });
        disposeTree(grads);
        disposeTree(probe);
        disposeTree(state.momentum);
        probe = next.params;
        state = next.state;
        // The loss sum stays on the device: one read per epoch.
        const sum = accumulate(total, value, count);
        total.dispose();
        value.dispose();
        total = sum;
        start += count;
      }
      if (start !== n) {
        total.dispose();
        throw new RangeError(
          `Cannot train the linear probe: epoch ${
            epoch + 1
          } produced ${start} of ${n} training features`,
        );
      }
      const trainLoss = total.item() / n;
      total.dispose();
      if (!Number.isFinite(trainLoss)) {
        throw new NonFiniteScoreError(
          `the probe's training loss is ${trainLoss} in epoch ${epoch + 1} (lr ${lr})`,
          PROBE_DIVERGED,
        );
      }
      const acc = evaluateProbe(probe, args.test);
      const r: ProbeEpochResult = { epoch: epoch + 1, lr, trainLoss, ...acc };
      history.push(r);
      args.onEpoch?.(r);
    }
  } finally {
    disposeTree(probe);
    disposeTree(state.momentum);
  }
  const best = history.reduce((a, b) => (b.top1 > a.top1 ? b : a));
  return {
    history,
    best,
    last: history[history.length - 1],
    numClasses,
    featureDim,
    trainSize: n,
    testSize: m,
  };
}

function maxLabel(labels: Int32Array): number {
  let m = 0;
  for (const c of labels) m = Math.max(m, c);
  return m;
}

/** total + weight * value for scalar tensors, as a new tensor. */
function accumulate(total: Tensor, value: Tensor, weight: number): Tensor {
  return total.ctx.scope(() => add(total, scale(value, weight)));
}

/**
 * Yields batches of `features` [N, D] in `order` (a permutation of 0..N-1): the rows are permuted
 * once per epoch on the device, then sliced batch by batch.
 */
export function cachedFeatureBatches(features: Tensor): ProbeFeatureBatches {
  const n = features.shape[0];
  return function* (order, _epoch, batchSize) {
    const shuffled = permuteRows(features, order);
    try {
      for (let start = 0; start < n; start += batchSize) {
        yield sliceRows(shuffled, start, Math.min(n, start + batchSize));
      }
    } finally {
      shuffled.dispose();
    }
  };
}

/** Options of {@link linearProbeOnFeatures}. */
export interface LinearProbeOnFeaturesOptions extends ProbeOptions {
  /** Training features and labels. */
  train: LabelledFeatures;
  /** Test features and labels. */
  test: LabelledFeatures;
  /** Number of classes (default: the largest label + 1). */
  numClasses?: number;
}

/** The fast protocol: the probe trained on fixed (cached, unaugmented) training features. */
export function linearProbeOnFeatures(
  ctx: Context,
  opts: LinearProbeOnFeaturesOptions,
): LinearProbeResult {
  const { train, test } = opts;
  if (train.features.shape[0] !== train.labels.length) {
    throw new RangeError(
      `Cannot train the linear probe: ${
        train.features.shape[0]
      } training features but ${train.labels.length} labels`,
    );
  }
  const numClasses = opts.numClasses ?? Math.max(maxLabel(train.labels), maxLabel(test.labels)) + 1;
  return trainLinearProbe(ctx, {
    ...opts,
    numClasses,
    featureDim: train.features.shape[1],
    trainLabels: train.labels,
    trainFeatures: cachedFeatureBatches(train.features),
    test,
  });
}
