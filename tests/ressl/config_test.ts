import assert from "node:assert/strict";
import {
  augmentationPresetOf,
  canonicalName,
  effectiveLr,
  featureDim,
  mergeConfig,
  presetConfig,
  TRAIN_PRESET_NAMES,
  type TrainConfig,
  validateConfig,
  warmupScheduleOf,
  warmupStepsOf,
} from "../../src/ressl/config.ts";
import { warmupCosineLr, type WarmupCosineOptions, warmupSteps } from "../../src/optim/schedule.ts";
import { trainStepConfig } from "../../src/ressl/state.ts";

Deno.test("presets carry the values of RESSL_SPEC.md", () => {
  const c10 = presetConfig("cifar10");
  assert.equal(c10.ressl.queueSize, 4096);
  assert.equal(c10.ressl.emaMomentum, 0.99);
  assert.equal(c10.ressl.tauStudent, 0.1);
  assert.equal(c10.ressl.tauTeacher, 0.04);
  assert.equal(c10.model.maxPool, false);
  assert.equal(c10.optim.lr, 0.06);
  assert.equal(c10.optim.weightDecay, 5e-4);
  assert.deepEqual(c10.image.mean, [0.4914, 0.4822, 0.4465]);
  const stl = presetConfig("stl10");
  assert.equal(stl.ressl.queueSize, 16384);
  assert.equal(stl.ressl.emaMomentum, 0.996);
  assert.equal(stl.model.maxPool, true);
  assert.equal(stl.image.size, 64);
  const im = presetConfig("imagenet");
  assert.equal(im.model.depth, 50);
  assert.equal(im.ressl.queueSize, 131072);
  assert.equal(im.ressl.emaMomentum, 0.999);
  assert.equal(im.optim.lr, 0.05);
  assert.equal(im.optim.weightDecay, 1e-4);
  assert.equal(im.optim.excludeBnBias, true);
  assert.equal(featureDim(im), 2048);
  assert.deepEqual(im.head, { hidden: 4096, out: 512 });
  const fm = presetConfig("fashion-mnist");
  assert.equal(fm.model.inChannels, 1);
  assert.equal(fm.image.size, 28);
  assert.equal(fm.ressl.bnSplits, 1);
  assert.deepEqual(fm.image.mean, [0.286]);
  assert.equal(presetConfig("imagenet-multicrop").multiCrop?.sizes.length, 5);
  for (const name of TRAIN_PRESET_NAMES) validateConfig(presetConfig(name));
});

Deno.test("mergeConfig() overrides nested keys and rejects unknown keys and wrong types", () => {
  const base = presetConfig("cifar10");
  const c = mergeConfig(base, { optim: { lr: 0.1 }, batchSize: 128 }, "config 'x.json'");
  assert.equal(c.optim.lr, 0.1);
  assert.equal(c.optim.momentum, 0.9);
  assert.equal(c.batchSize, 128);
  assert.equal(base.optim.lr, 0.06, "the base config must not change");
  assert.throws(
    () => mergeConfig(base, { optim: { learningRate: 1 } }, "config 'x.json'"),
    /unknown key 'optim.learningRate'/,
  );
  assert.throws(
    () => mergeConfig(base, { epochs: "10" }, "flag --epochs"),
    /'epochs' must be number/,
  );
  assert.throws(
    () => mergeConfig(base, { model: { stem: "tiny" } }, "x"),
    /'model.stem' must be one of cifar, imagenet/,
  );
  assert.throws(() => mergeConfig(base, { image: { mean: [1, "a"] } }, "x"), /image.mean/);
});

Deno.test("validateConfig() rejects impossible combinations naming the key", () => {
  const base = presetConfig("cifar10");
  assert.throws(
    () => validateConfig(mergeConfig(base, { batchSize: 300 }, "x")),
    /'ressl.queueSize' \(4096\) must be a multiple of batchSize \(300\)/,
  );
  assert.throws(
    () => validateConfig(mergeConfig(base, { batchSize: 8, ressl: { bnSplits: 8 } }, "x")),
    /ressl.bnSplits/,
  );
  assert.throws(
    () => validateConfig(mergeConfig(base, { model: { inChannels: 1 } }, "x")),
    /'image.mean'/,
  );
  assert.throws(() => validateConfig(mergeConfig(base, { optim: { lr: -1 } }, "x")), /optim.lr/);
});

Deno.test("effectiveLr() scales linearly with the batch size", () => {
  const c = mergeConfig(presetConfig("cifar10"), { batchSize: 512 }, "x");
  assert.equal(effectiveLr(c), 0.12);
  assert.equal(effectiveLr(mergeConfig(c, { optim: { scaleLr: false } }, "x")), 0.06);
});

Deno.test("warm-up: 5 epochs capped at 2.5 % of the steps, never below the floor, at most half the run", () => {
  const c = (epochs: number, extra: Record<string, unknown> = {}) =>
    validateConfig(mergeConfig(presetConfig("fashion-mnist"), { epochs, ...extra }, "test"));
  // The full recipe: 200 epochs of 234 steps; 2.5 % = 1170 = 5 epochs; the floor changes nothing.
  assert.equal(warmupStepsOf(c(200), 234), 1170);
  assert.equal(warmupStepsOf(c(800), 234), 1170);
  // --epochs 1 (234 steps): 2.5 % is 5 steps, which lets lr 0.06 collapse width 64; floor 100.
  assert.equal(warmupStepsOf(c(1), 234), 100);
  assert.equal(warmupStepsOf(c(3), 234), 100);
  assert.equal(warmupStepsOf(c(10), 234), 100);
  assert.equal(warmupStepsOf(c(20), 234), 117); // 2.5 % of 4680 is above the floor
  // A run shorter than twice the floor warms up for half of it.
  assert.equal(warmupStepsOf(c(3), 6), 9);
  assert.equal(warmupStepsOf(c(1), 1), 0);
  // warmupEpochs bounds it (0: none); minWarmupSteps 0 or absent (older configs): the old rule.
  assert.equal(warmupStepsOf(c(1, { optim: { warmupEpochs: 0.2 } }), 234), 46);
  assert.equal(warmupStepsOf(c(1, { optim: { warmupEpochs: 0 } }), 234), 0);
  assert.equal(warmupStepsOf(c(1, { optim: { minWarmupSteps: 0 } }), 234), 5);
  const old = c(1) as TrainConfig;
  delete old.optim.minWarmupSteps;
  assert.equal(warmupStepsOf(old, 234), 5, "a checkpoint's config without the key keeps its rule");
  assert.equal(warmupStepsOf(c(10, { optim: { minWarmupSteps: 0 } }), 234), 58);
  assert.throws(
    () =>
      validateConfig(mergeConfig(presetConfig("cifar10"), { optim: { minWarmupSteps: 1.5 } }, "x")),
    /optim.minWarmupSteps/,
  );
});

Deno.test("warm-up: the schedule the train step uses has exactly warmupStepsOf() steps", () => {
  for (const [epochs, spe, floor] of [[1, 234, 100], [3, 234, 100], [200, 195, 100], [7, 13, 40]]) {
    for (const warmupEpochs of [0, 0.3, 5, 10]) {
      const config = validateConfig(mergeConfig(presetConfig("cifar10"), {
        epochs,
        optim: { warmupEpochs, minWarmupSteps: floor },
      }, "test"));
      const want = warmupStepsOf(config, spe);
      const lr = trainStepConfig(config, spe).lr as WarmupCosineOptions;
      assert.equal(warmupSteps(lr), want, `${epochs} x ${spe}, ${warmupEpochs} epochs`);
      assert.deepEqual(lr, { ...lr, ...warmupScheduleOf(config, spe) });
      if (want > 1) {
        // lr rises linearly to the peak at step `want`, then decays.
        assert.ok(warmupCosineLr(want - 1, lr) < warmupCosineLr(want, lr));
        assert.equal(warmupCosineLr(want, lr), lr.baseLr);
      }
    }
  }
});

Deno.test("names: tiny-imagenet is the one name; tinyimagenet is accepted with a note", () => {
  assert.deepEqual(canonicalName("cifar10"), { name: "cifar10" });
  const old = canonicalName("tinyimagenet");
  assert.equal(old.name, "tiny-imagenet");
  assert.match(old.note!, /'tinyimagenet' is the old name of 'tiny-imagenet'/);
  assert.equal(presetConfig("tinyimagenet").dataset, "tiny-imagenet");
  assert.ok(TRAIN_PRESET_NAMES.includes("tiny-imagenet"));
  assert.ok(!TRAIN_PRESET_NAMES.includes("tinyimagenet"));
  // Augmentation views: a checkpoint written with the old name still finds its preset.
  const c = presetConfig("tiny-imagenet");
  assert.equal(augmentationPresetOf({ ...c, dataset: "tinyimagenet" }), "tiny-imagenet");
  const folder = presetConfig("image-folder");
  assert.equal(augmentationPresetOf(folder), "cifar10");
  folder.model.inChannels = 1;
  assert.equal(augmentationPresetOf(folder), "fashion-mnist");
});

Deno.test("the quick preset is the fashion-mnist recipe made small, with the kNN monitor at its end", () => {
  const q = presetConfig("fashion-mnist-quick"), full = presetConfig("fashion-mnist");
  assert.equal(q.dataset, "fashion-mnist");
  assert.equal(q.knnEvery, q.epochs, "one kNN at the end");
  assert.ok(q.model.width < full.model.width && q.epochs < full.epochs);
  assert.ok(q.logEvery <= 5, "dense curves");
  const norm = (c: TrainConfig) => ({
    ...c,
    model: { ...c.model, width: 0 },
    epochs: 0,
    knnEvery: 0,
    logEvery: 0,
  });
  assert.deepEqual(norm(q), norm(full), "everything else is the recipe's");
});
