import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { permutation, rngKey } from "../../src/random/philox.ts";
import { clusters } from "./clusters.ts";
import { evaluateProbe, linearProbeOnFeatures, probeLr } from "../../src/eval/linear_probe.ts";
import { createContext } from "../../src/tensor/mod.ts";

const D = 12, C = 8;

Deno.test("linear probe on cached features: ~100% on separated clusters, chance with shuffled labels", () => {
  const ctx = createContext(createReferenceBackend());
  const live = ctx.liveTensors;
  const train = clusters(1, 2, { n: 512, classes: C, d: D }, { noise: 0.15 });
  const test = clusters(1, 3, { n: 256, classes: C, d: D }, { noise: 0.15 });
  const trainT = ctx.fromArray(train.x, [512, D]);
  const testT = ctx.fromArray(test.x, [256, D]);
  const seen: number[] = [];
  const res = linearProbeOnFeatures(ctx, {
    train: { features: trainT, labels: train.labels },
    test: { features: testT, labels: test.labels },
    epochs: 8,
    batchSize: 64,
    lr: 0.2,
    onEpoch: (r) => seen.push(r.epoch),
  });
  assert.deepEqual(seen, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.equal(res.numClasses, C);
  assert.equal(res.featureDim, D);
  assert.ok(res.best.top1 >= 99, `best top-1 on separated clusters is ${res.best.top1}%`);
  assert.ok(res.last.top1 >= 99, `last top-1 is ${res.last.top1}%`);
  assert.equal(res.last.top5, 100);
  assert.ok(res.history[7].trainLoss < res.history[0].trainLoss / 4, "loss must fall");
  res.history.forEach((h, e) => assert.ok(Math.abs(h.lr - probeLr(0.2, e, 8)) < 1e-12));
  assert.equal(res.history[0].lr, 0.2);
  assert.ok(res.best.top1 >= Math.max(...res.history.map((h) => h.top1)));

  const shuffled = Int32Array.from(permutation(rngKey(9), 512), (p) => train.labels[p]);
  const chance = linearProbeOnFeatures(ctx, {
    train: { features: trainT, labels: shuffled },
    test: { features: testT, labels: test.labels },
    epochs: 4,
    batchSize: 64,
  });
  assert.ok(chance.last.top1 < 30, `top-1 with shuffled labels is ${chance.last.top1}%`);
  trainT.dispose();
  testT.dispose();
  assert.equal(ctx.liveTensors, live, "the probe leaked tensors");
  assert.equal(ctx.backend.liveAllocations(), 0);
});

Deno.test("evaluateProbe ranks classes by logit (top-1 / top-5 on hand-made logits)", () => {
  const ctx = createContext(createReferenceBackend());
  ctx.scope(() => {
    // identity weights: the logits are the features themselves
    const eye = new Float32Array(36);
    for (let i = 0; i < 6; i++) eye[i * 7] = 1;
    const probe = { weight: ctx.fromArray(eye, [6, 6]), bias: ctx.zeros([6]) };
    const x = ctx.fromArray(
      [
        [0, 9, 1, 2, 3, 4], // label 1: top-1
        [9, 8, 7, 6, 5, 0], // label 4: 5th -> top-5 only
        [9, 8, 7, 6, 5, 0], // label 5: last
      ].flat(),
      [3, 6],
    );
    const acc = evaluateProbe(probe, { features: x, labels: Int32Array.from([1, 4, 5]) }, 2);
    assert.ok(Math.abs(acc.top1 - 100 / 3) < 1e-9);
    assert.ok(Math.abs(acc.top5 - 200 / 3) < 1e-9);
  });
});

Deno.test("linear probe rejects bad labels and shapes with clear messages", () => {
  const ctx = createContext(createReferenceBackend());
  ctx.scope(() => {
    const f = ctx.zeros([4, 3]);
    const labels = Int32Array.from([0, 1, 2, 3]);
    assert.throws(
      () =>
        linearProbeOnFeatures(ctx, {
          train: { features: f, labels },
          test: { features: f, labels },
          numClasses: 3,
        }),
      /training label 3 of sample 3 is outside \[0, 3\)/,
    );
    assert.throws(
      () =>
        linearProbeOnFeatures(ctx, {
          train: { features: f, labels: labels.subarray(0, 3) },
          test: { features: f, labels },
        }),
      /4 training features but 3 labels/,
    );
    assert.throws(
      () =>
        linearProbeOnFeatures(ctx, {
          train: { features: f, labels },
          test: { features: f, labels },
          epochs: 0,
        }),
      /epochs is 0/,
    );
  });
  assert.equal(ctx.liveTensors, 0);
});
