/**
 * Weighted k-nearest-neighbour classification on L2-normalised features, as the MoCo CIFAR demo and
 * InstDisc: the k most similar training features vote for their labels with weight exp(sim / T).
 * Similarities are computed on the backend in chunks of test rows; only the chunk's similarity
 * matrix comes to the host for the top-k selection.
 *
 * @module
 */

import type { Tensor } from "../tensor/mod.ts";
import { matmul, sliceRows } from "../ops/mod.ts";
import { FEATURES_NOT_FINITE, NonFiniteScoreError } from "./scores.ts";

/** Options of {@link knnClassify}. */
export interface KnnOptions {
  /** Training features [N, D], L2-normalised rows. */
  trainFeatures: Tensor;
  /** Labels of the training rows, in [0, numClasses). */
  trainLabels: Int32Array;
  /** Query features [M, D], L2-normalised rows. */
  testFeatures: Tensor;
  /** Number of classes. */
  numClasses: number;
  /** Neighbours (default 200). */
  k?: number;
  /** Temperature of the vote weights exp(sim / T) (default 0.1). */
  temperature?: number;
  /** Test rows per similarity chunk (default 256). */
  chunk?: number;
}

/** Result of {@link knnClassify}. */
export interface KnnResult {
  /** Predicted class per query row (top-1). */
  predictions: Int32Array;
  /** The 5 best classes per query row, [M * 5] (fewer classes: padded with -1). */
  top5: Int32Array;
}

/**
 * Classifies every query row by a weighted vote of its k nearest training rows. Throws a
 * `NonFiniteScoreError` when a similarity is NaN or infinite (features of non-finite weights):
 * such a vote would rank classes arbitrarily.
 */
export function knnClassify(opts: KnnOptions): KnnResult {
  const { trainFeatures, testFeatures, trainLabels, numClasses } = opts;
  const k = Math.min(opts.k ?? 200, trainFeatures.shape[0]);
  const temperature = opts.temperature ?? 0.1;
  const chunk = opts.chunk ?? 256;
  const [n, d] = trainFeatures.shape;
  const [m, d2] = testFeatures.shape;
  if (d !== d2) {
    throw new RangeError(`Cannot run kNN: train features have ${d} dims, test features ${d2}`);
  }
  if (trainLabels.length !== n) {
    throw new RangeError(`Cannot run kNN: ${n} train features but ${trainLabels.length} labels`);
  }
  const ctx = trainFeatures.ctx;
  const predictions = new Int32Array(m);
  const top5 = new Int32Array(m * 5).fill(-1);
  const topIdx = new Int32Array(k);
  const topSim = new Float64Array(k);
  const scores = new Float64Array(numClasses);
  for (let start = 0; start < m; start += chunk) {
    const rows = Math.min(chunk, m - start);
    const sims = ctx.noGrad(() =>
      ctx.scope(() => {
        const q = sliceRows(testFeatures, start, start + rows);
        const s = matmul(q, trainFeatures, { transB: true });
        return s.toFloat32();
      })
    );
    const bad = sims.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new NonFiniteScoreError(
        `the kNN similarity of test sample ${start + Math.floor(bad / n)} to train sample ${
          bad % n
        } is ${sims[bad]}`,
        FEATURES_NOT_FINITE,
      );
    }
    for (let r = 0; r < rows; r++) {
      const row = sims.subarray(r * n, (r + 1) * n);
      const count = selectTopK(row, k, topIdx, topSim);
      scores.fill(0);
      for (let j = 0; j < count; j++) {
        const label = trainLabels[topIdx[j]];
        scores[label] += Math.exp(topSim[j] / temperature);
      }
      const order = rankClasses(scores);
      predictions[start + r] = order[0];
      for (let j = 0; j < Math.min(5, order.length); j++) top5[(start + r) * 5 + j] = order[j];
    }
  }
  return { predictions, top5 };
}

/** Keeps the k largest values of `row` (a min-heap); returns how many were kept. */
function selectTopK(row: Float32Array, k: number, idx: Int32Array, sim: Float64Array): number {
  let size = 0;
  for (let i = 0; i < row.length; i++) {
    const v = row[i];
    if (size < k) {
      let c = size++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (sim[p] <= v) break;
        sim[c] = sim[p];
        idx[c] = idx[p];
        c = p;
      }
      sim[c] = v;
      idx[c] = i;
    } else if (v > sim[0]) {
      let c = 0;
      for (;;) {
        const l = 2 * c + 1;
        if (l >= size) break;
        const rr = l + 1;
        const s = rr < size && sim[rr] < sim[l] ? rr : l;
        if (sim[s] >= v) break;
        sim[c] = sim[s];
        idx[c] = idx[s];
        c = s;
      }
      sim[c] = v;
      idx[c] = i;
    }
  }
  return size;
}

function rankClasses(scores: Float64Array): number[] {
  return Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
}

/** Top-1 and top-5 accuracy (in %) of a kNN result against true labels. */
export function knnAccuracy(result: KnnResult, labels: Int32Array): { top1: number; top5: number } {
  if (result.predictions.length !== labels.length || result.top5.length !== 5 * labels.length) {
    throw new RangeError(
      `Cannot score kNN: ${result.predictions.length} predictions for ${labels.length} labels`,
    );
  }
  if (labels.length === 0) throw new RangeError("Cannot score kNN: there are no test labels");
  let c1 = 0, c5 = 0;
  for (let i = 0; i < labels.length; i++) {
    if (result.predictions[i] === labels[i]) c1++;
    for (let j = 0; j < 5; j++) {
      if (result.top5[i * 5 + j] === labels[i]) {
        c5++;
        break;
      }
    }
  }
  return { top1: (100 * c1) / labels.length, top5: (100 * c5) / labels.length };
}
