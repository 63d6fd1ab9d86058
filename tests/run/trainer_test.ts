/**
 * runTraining as a library call: the online kNN monitor writes its accuracy into the epoch records
 * of metrics.jsonl, a fresh run refuses a folder holding checkpoints, and nothing leaks.
 */
import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { memoryDataset } from "../../src/data/datasets/dataset.ts";
import { RandomStream, rngKey } from "../../src/random/philox.ts";
import { readMetrics } from "../../src/io/metrics.ts";
import { mergeConfig, presetConfig, validateConfig } from "../../src/ressl/config.ts";
import { runTraining } from "../../src/run/trainer.ts";
import { createContext } from "../../src/tensor/mod.ts";

/** 28x28x1 images whose brightness encodes one of two classes. */
function brightness(n: number, seed: number) {
  const s = new RandomStream(rngKey(seed));
  const images = new Uint8Array(n * 28 * 28);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % 2;
    const base = labels[i] === 0 ? 40 : 200;
    for (let p = 0; p < 784; p++) images[i * 784 + p] = base + s.int(40) - 20;
  }
  return memoryDataset({
    name: `bright${seed}`,
    images,
    labels,
    height: 28,
    width: 28,
    channels: 1,
  });
}

Deno.test("runTraining logs the online kNN monitor per epoch and leaks no tensor", async () => {
  const ctx = createContext(createReferenceBackend());
  const config = validateConfig(mergeConfig(presetConfig("fashion-mnist"), {
    model: { width: 2 },
    head: { hidden: 16, out: 8 },
    ressl: { queueSize: 64 },
    batchSize: 16,
    epochs: 2,
    knnEvery: 1,
    knn: { k: 5 },
    logEvery: 1,
  }, "test"));
  const dir = await Deno.makeTempDir({ prefix: "ressl_trainer_" });
  try {
    const live = ctx.liveTensors;
    const result = await runTraining({
      ctx,
      config,
      dataset: brightness(32, 1),
      knnData: { train: brightness(40, 2), test: brightness(20, 3) },
      outDir: dir,
    });
    assert.equal(result.steps, 4);
    assert.equal(result.stoppedBy, "end");
    assert.equal(ctx.liveTensors, live, "every tensor of the run is released");
    const epochs = readMetrics(`${dir}/metrics.jsonl`).filter((r) => r.kind === "epoch");
    assert.equal(epochs.length, 2);
    for (const e of epochs) {
      const top1 = e.knnTop1 as number;
      assert.ok(top1 >= 0 && top1 <= 100, `knnTop1 ${top1}`);
      // Brightness separates the classes even for a barely trained encoder.
      assert.ok(top1 >= 90, `kNN top-1 on brightness classes is ${top1}%`);
    }
    await assert.rejects(
      () => runTraining({ ctx, config, dataset: brightness(32, 1), outDir: dir }),
      /already holds checkpoints/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
