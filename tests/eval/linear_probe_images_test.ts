/**
 * The image linear-probe protocol (`linearProbe`) on a tiny in-memory dataset and a tiny ResNet:
 * shapes and bookkeeping of the result, determinism in the seed, no leaks, and a known answer
 * (classes of distinct brightness are learned; shuffled labels are not).
 */
import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import type { ViewPipeline } from "../../src/data/augment.ts";
import { memoryDataset } from "../../src/data/datasets/dataset.ts";
import { permutation, RandomStream, rngKey } from "../../src/random/philox.ts";
import { linearProbe } from "../../src/eval/linear_probe_images.ts";
import { initResNet } from "../../src/nn/mod.ts";
import { createContext, disposeTree, type TensorTree } from "../../src/tensor/mod.ts";

const S = 8;

/** `n` 8x8 grey images; class c has brightness 30 + 100 c (+-12 noise). */
function images(n: number, seed: number, classes = 3) {
  const rng = new RandomStream(rngKey(seed));
  const labels = Int32Array.from({ length: n }, (_, i) => i % classes);
  const data = new Uint8Array(n * S * S);
  for (let i = 0; i < n; i++) {
    for (let p = 0; p < S * S; p++) data[i * S * S + p] = 18 + 100 * labels[i] + rng.int(25);
  }
  return { data, labels };
}

function dataset(name: string, n: number, seed: number, labels?: Int32Array) {
  const d = images(n, seed);
  return memoryDataset({
    name,
    images: d.data,
    labels: labels ?? d.labels,
    classes: ["dark", "mid", "bright"],
    height: S,
    width: S,
    channels: 1,
  });
}

const testView: ViewPipeline = { size: S, ops: [], mean: [0.5], std: [0.25] };
const trainView: ViewPipeline = {
  ...testView,
  ops: [
    { op: "randomResizedCrop", scale: [0.2, 1], ratio: [3 / 4, 4 / 3] },
    { op: "horizontalFlip", p: 0.5 },
  ],
};

Deno.test("linearProbe (images): result shapes, best/last, seed determinism, fast variant, no leaks", () => {
  const ctx = createContext(createReferenceBackend());
  const backbone = initResNet(ctx, {
    depth: 18,
    stem: "cifar",
    inChannels: 1,
    width: 2,
    key: rngKey(1),
  });
  const live = ctx.liveTensors;
  const train = dataset("train", 40, 1), test = dataset("test", 18, 2);
  const opts = { backbone, train, test, trainView, testView, epochs: 2, batchSize: 16 };
  const a = linearProbe(ctx, { ...opts, seed: 4 });
  assert.equal(a.history.length, 2);
  assert.equal(a.featureDim, 16);
  assert.equal(a.numClasses, 3);
  assert.equal(a.trainSize, 40);
  assert.equal(a.testSize, 18);
  assert.deepEqual(a.last, a.history[1]);
  assert.ok(a.best.top1 >= a.history[0].top1 && a.best.top1 >= a.history[1].top1);
  for (const h of a.history) {
    const correct = (h.top1 * 18) / 100;
    assert.ok(Math.abs(correct - Math.round(correct)) < 1e-9, `top-1 ${h.top1} of 18 images`);
    assert.ok(h.top5 === 100, "3 classes: top-5 is always 100%");
    assert.ok(Number.isFinite(h.trainLoss) && h.trainLoss > 0);
  }
  assert.deepEqual(
    linearProbe(ctx, { ...opts, seed: 4 }).history,
    a.history,
    "same seed, same run",
  );
  const b = linearProbe(ctx, { ...opts, seed: 5 });
  assert.notEqual(b.history[0].trainLoss, a.history[0].trainLoss, "the seed changes the run");
  const fast = linearProbe(ctx, { ...opts, seed: 4, fast: true });
  assert.equal(fast.history.length, 2);
  assert.notEqual(fast.history[0].trainLoss, a.history[0].trainLoss, "fast skips augmentation");
  assert.equal(ctx.liveTensors, live, "linearProbe leaked tensors");
  disposeTree(backbone as unknown as TensorTree);
});

Deno.test("linearProbe (images): brightness classes are learned; shuffled labels are not", () => {
  const ctx = createContext(createReferenceBackend());
  const backbone = initResNet(ctx, {
    depth: 18,
    stem: "cifar",
    inChannels: 1,
    width: 2,
    key: rngKey(2),
  });
  const train = dataset("train", 60, 3), test = dataset("test", 30, 4);
  const opts = { backbone, test, trainView, testView, epochs: 40, batchSize: 20, lr: 1 };
  const good = linearProbe(ctx, { ...opts, train });
  assert.ok(good.best.top1 >= 90, `top-1 on brightness classes is ${good.best.top1}%`);
  const shuffled = Int32Array.from(permutation(rngKey(8), 60), (p) => train.labels![p]);
  const bad = linearProbe(ctx, { ...opts, train: dataset("shuffled", 60, 3, shuffled) });
  assert.ok(bad.last.top1 <= 70, `top-1 with shuffled labels is ${bad.last.top1}%`);
  disposeTree(backbone as unknown as TensorTree);
});

Deno.test("linearProbe (images): unlabelled data is refused", () => {
  const ctx = createContext(createReferenceBackend());
  const backbone = initResNet(ctx, {
    depth: 18,
    stem: "cifar",
    inChannels: 1,
    width: 2,
    key: rngKey(2),
  });
  const unlabelled = memoryDataset({
    name: "u",
    images: new Uint8Array(2 * S * S),
    height: S,
    width: S,
    channels: 1,
  });
  const test = dataset("test", 6, 4);
  assert.throws(
    () => linearProbe(ctx, { backbone, train: unlabelled, test, trainView, testView, epochs: 1 }),
    /Cannot evaluate on 'u': it has no labels/,
  );
  disposeTree(backbone as unknown as TensorTree);
});
