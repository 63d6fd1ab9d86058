import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { createContext } from "../../src/tensor/mod.ts";
import { permutation, rngKey } from "../../src/random/philox.ts";
import { clusters } from "./clusters.ts";
import { knnAccuracy, knnClassify } from "../../src/eval/knn.ts";

Deno.test("knnClassify() is ~100% on separated clusters and at chance with shuffled labels", () => {
  const ctx = createContext(createReferenceBackend());
  const d = 16, classes = 10;
  const train = clusters(1, 2, { n: 600, classes, d }, { noise: 0.1, normalize: true });
  const testSet = clusters(1, 3, { n: 300, classes, d }, { noise: 0.1, normalize: true });
  const trainT = ctx.fromArray(train.x, [600, d]);
  const testT = ctx.fromArray(testSet.x, [300, d]);
  const res = knnClassify({
    trainFeatures: trainT,
    trainLabels: train.labels,
    testFeatures: testT,
    numClasses: classes,
    k: 20,
    chunk: 64,
  });
  const acc = knnAccuracy(res, testSet.labels);
  assert.ok(acc.top1 >= 99, `top-1 on separated clusters is ${acc.top1}%`);
  assert.equal(acc.top5, 100);

  const perm = permutation(rngKey(7), 600);
  const shuffled = Int32Array.from(perm, (p) => train.labels[p]);
  const chance = knnAccuracy(
    knnClassify({
      trainFeatures: trainT,
      trainLabels: shuffled,
      testFeatures: testT,
      numClasses: classes,
      k: 20,
    }),
    testSet.labels,
  );
  assert.ok(chance.top1 > 2 && chance.top1 < 25, `top-1 with shuffled labels is ${chance.top1}%`);
  trainT.dispose();
  testT.dispose();
  assert.equal(ctx.liveTensors, 0);
});

Deno.test("knnClassify() with k=1 returns the label of the most similar row", () => {
  const ctx = createContext(createReferenceBackend());
  const train = ctx.fromArray([1, 0, 0, 1, -1, 0], [3, 2]);
  const test = ctx.fromArray([0.6, 0.8, -0.8, -0.6], [2, 2]);
  const res = knnClassify({
    trainFeatures: train,
    trainLabels: Int32Array.from([0, 1, 2]),
    testFeatures: test,
    numClasses: 3,
    k: 1,
  });
  assert.deepEqual([...res.predictions], [1, 2]);
});
