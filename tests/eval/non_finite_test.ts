/**
 * Issue 14 case 1: an evaluation whose scores are NaN or infinite must fail, never report an
 * accuracy. Before the fix, a probe trained with lr 1e308 scored NaN for every class and every
 * test sample counted as correct (no class scored higher than the true one: NaN compares false),
 * giving top-1 100 %; kNN ranked NaN votes arbitrarily.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { knnClassify } from "../../src/eval/knn.ts";
import { evaluateProbe, linearProbeOnFeatures } from "../../src/eval/linear_probe.ts";
import { classRank, NonFiniteScoreError } from "../../src/eval/scores.ts";
import { createContext } from "../../src/tensor/mod.ts";
import { clusters } from "./clusters.ts";

const ctx = createContext(createReferenceBackend());
const D = 6, C = 4;

Deno.test("classRank: NaN never makes a sample correct; finite scores rank as a sort does", () => {
  assert.equal(classRank([NaN, NaN, NaN], 1), 3, "all NaN: the true class ranks last");
  assert.equal(classRank([0.5, NaN, 0.1], 1), 3, "the true class NaN");
  assert.equal(classRank([NaN, 0.2, 0.1], 1), 1, "another class NaN counts against it");
  assert.equal(classRank([0.3, 0.3, 0.3], 0), 0, "ties go to the lower index");
  assert.equal(classRank([0.3, 0.3, 0.3], 2), 2);
  assert.equal(classRank([Infinity, 1, -Infinity], 0), 0);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: -3, max: 3 }), { minLength: 1, maxLength: 8 }),
      fc.nat(),
      (scores, pick) => {
        const label = pick % scores.length;
        const order = [...scores.keys()].sort((a, b) => scores[b] - scores[a] || a - b);
        assert.equal(classRank(scores, label), order.indexOf(label));
      },
    ),
  );
});

Deno.test("a probe trained with lr 1e308 stops with NonFiniteScoreError instead of reporting 100 %", () => {
  const live = ctx.liveTensors;
  const train = clusters(1, 2, { n: 64, classes: C, d: D }, { noise: 0.3 });
  const test = clusters(1, 3, { n: 32, classes: C, d: D }, { noise: 0.3 });
  const trainT = ctx.fromArray(train.x, [64, D]);
  const testT = ctx.fromArray(test.x, [32, D]);
  const epochs: number[] = [];
  try {
    assert.throws(
      () =>
        linearProbeOnFeatures(ctx, {
          train: { features: trainT, labels: train.labels },
          test: { features: testT, labels: test.labels },
          epochs: 3,
          batchSize: 16,
          lr: 1e308,
          onEpoch: (r) => epochs.push(r.top1),
        }),
      (e: Error) =>
        e instanceof NonFiniteScoreError && /training loss is (NaN|-?Infinity)/.test(e.message) &&
        /lower --lr/.test(e.message),
    );
    assert.deepEqual(epochs, [], "no epoch was reported");
  } finally {
    trainT.dispose();
    testT.dispose();
  }
  assert.equal(ctx.liveTensors, live, "the failed probe leaked tensors");
});

Deno.test("evaluateProbe refuses NaN scores (it counted every sample correct before)", () => {
  const test = clusters(1, 3, { n: 8, classes: C, d: D }, { noise: 0.3 });
  const features = ctx.fromArray(test.x, [8, D]);
  const probe = { weight: ctx.full([C, D], NaN), bias: ctx.zeros([C]) };
  try {
    assert.throws(
      () => evaluateProbe(probe, { features, labels: test.labels }),
      /Cannot evaluate: the probe's score of class 0 for test sample 0 is NaN/,
    );
    const inf = { weight: ctx.zeros([C, D]), bias: ctx.full([C], Infinity) };
    assert.throws(() => evaluateProbe(inf, { features, labels: test.labels }), /is Infinity/);
    inf.weight.dispose();
    inf.bias.dispose();
  } finally {
    features.dispose();
    probe.weight.dispose();
    probe.bias.dispose();
  }
});

Deno.test("knnClassify refuses NaN similarities (features of NaN weights)", () => {
  const train = clusters(1, 2, { n: 16, classes: C, d: D }, { noise: 0.3, normalize: true });
  const trainF = ctx.fromArray(train.x, [16, D]);
  const bad = new Float32Array(4 * D).fill(0.5);
  bad[D + 2] = NaN; // test sample 1
  const testF = ctx.fromArray(bad, [4, D]);
  try {
    assert.throws(
      () =>
        knnClassify({
          trainFeatures: trainF,
          trainLabels: train.labels,
          testFeatures: testF,
          numClasses: C,
          k: 5,
        }),
      (e: Error) =>
        e instanceof NonFiniteScoreError &&
        /similarity of test sample 1 to train sample 0 is NaN/.test(e.message) &&
        /features are not finite/.test(e.message),
    );
  } finally {
    trainF.dispose();
    testF.dispose();
  }
});
