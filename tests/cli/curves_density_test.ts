/**
 * Curves dense enough to show the warm-up and the cosine: for every built-in recipe on its
 * dataset (and the image-folder recipe on a folder of 10,000 images), the steps the trainer logs
 * (every `logEvery` steps, the lr of the step just done) give, after the plot's thinning
 * (src/plot/curves.ts), at least 20 points in the warm-up, a rising lr through it and a falling
 * one after it, and at least 100 points in all.
 */
import assert from "node:assert/strict";
import type { MetricsRecord } from "../../src/io/metrics.ts";
import { warmupCosineLr, type WarmupCosineOptions } from "../../src/optim/schedule.ts";
import { runCurves } from "../../src/plot/curves.ts";
import { presetConfig, TRAIN_PRESET_NAMES, warmupStepsOf } from "../../src/ressl/config.ts";
import { trainStepConfig } from "../../src/ressl/state.ts";

/** Pretraining images of each dataset (STL-10: unlabeled + train). */
const IMAGES: Record<string, number> = {
  "fashion-mnist": 60_000,
  "cifar10": 50_000,
  "cifar100": 50_000,
  "stl10": 105_000,
  "tiny-imagenet": 100_000,
  "imagenet": 1_281_167,
  "image-folder": 10_000,
};

Deno.test("every recipe's logged steps plot the warm-up and the cosine", () => {
  for (const preset of TRAIN_PRESET_NAMES) {
    const config = presetConfig(preset);
    const spe = Math.floor(IMAGES[config.dataset] / config.batchSize);
    const total = config.epochs * spe;
    const warm = warmupStepsOf(config, spe);
    const lr = trainStepConfig(config, spe).lr as WarmupCosineOptions;
    const records: MetricsRecord[] = [];
    for (let s = config.logEvery; s <= total; s += config.logEvery) {
      const v = warmupCosineLr(s - 1, lr);
      records.push({ kind: "step", step: s, epoch: Math.floor((s - 1) / spe), loss: 1, lr: v });
    }
    const points = runCurves(records).lr;
    const inWarmup = points.filter((p) => p.x <= warm);
    assert.ok(points.length >= 100, `${preset}: ${points.length} points`);
    assert.ok(
      inWarmup.length >= 20,
      `${preset}: ${inWarmup.length} points in ${warm} warm-up steps`,
    );
    // logged step s carries the lr of step index s - 1: the peak is logged step warm + 1
    for (let i = 1; i < points.length; i++) {
      const [a, b] = [points[i - 1], points[i]];
      if (b.x <= warm + 1) assert.ok(b.value > a.value, `${preset}: lr rises at step ${b.x}`);
      else if (a.x >= warm + 1) assert.ok(b.value <= a.value, `${preset}: lr falls at step ${b.x}`);
    }
    assert.ok(points.at(-1)!.value < 0.01 * Math.max(...points.map((p) => p.value)), preset);
  }
});
