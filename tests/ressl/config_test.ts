import assert from "node:assert/strict";
import {
  effectiveLr,
  featureDim,
  mergeConfig,
  presetConfig,
  TRAIN_PRESET_NAMES,
  validateConfig,
} from "../../src/ressl/config.ts";

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
