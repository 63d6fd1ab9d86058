/**
 * The trainer's side of an honest progress display (src/run/trainer.ts): the ETA it is given adds
 * the kNN monitor still to come (a guess from the training speed before the first one, then the
 * measured time), and the images/s it shows count training steps only (the training clock stops
 * during the kNN monitor and checkpoints). A tiny run on the reference backend.
 */
import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { memoryDataset } from "../../src/data/datasets/dataset.ts";
import { readMetrics } from "../../src/io/metrics.ts";
import { Progress, type ProgressState } from "../../src/io/progress.ts";
import { RandomStream, rngKey } from "../../src/random/philox.ts";
import { mergeConfig, presetConfig, validateConfig } from "../../src/ressl/config.ts";
import { runTraining } from "../../src/run/trainer.ts";
import { createContext } from "../../src/tensor/mod.ts";

/** 28x28x1 images whose brightness encodes one of two classes. */
function brightness(n: number, seed: number) {
  const s = new RandomStream(rngKey(seed));
  const labels = Int32Array.from({ length: n }, (_, i) => i % 2);
  const images = Uint8Array.from(
    { length: n * 784 },
    (_, p) => (labels[Math.floor(p / 784)] === 0 ? 40 : 200) + s.int(40) - 20,
  );
  return memoryDataset({ name: `b${seed}`, images, labels, height: 28, width: 28, channels: 1 });
}

/** A display that records, at each update, the step, its images/s and the pending seconds. */
class Recorder extends Progress {
  pending = 0;
  seen: { step: number; pending: number; imagesPerSecond: number }[] = [];
  constructor() {
    super({ interactive: false, write: () => {} });
  }
  override setPendingSeconds(seconds: number): void {
    this.pending = seconds;
    super.setPendingSeconds(seconds);
  }
  override update(p: ProgressState, batchSize: number): void {
    this.seen.push({ step: p.step, pending: this.pending, imagesPerSecond: p.imagesPerSecond });
    super.update(p, batchSize);
  }
}

Deno.test("the ETA adds the kNN monitor still to come; images/s count training time only", async () => {
  const ctx = createContext(createReferenceBackend());
  const config = validateConfig(mergeConfig(presetConfig("fashion-mnist"), {
    model: { width: 2 },
    head: { hidden: 16, out: 8 },
    ressl: { queueSize: 32 },
    batchSize: 16,
    epochs: 3,
    knnEvery: 1,
    knn: { k: 5 },
    logEvery: 1,
    checkpoint: { every: 100, keep: 1 }, // one checkpoint, at the end: no checkpoint cost before
  }, "test"));
  const dir = await Deno.makeTempDir({ prefix: "ressl_eta_" });
  try {
    const progress = new Recorder();
    const result = await runTraining({
      ctx,
      config,
      dataset: brightness(32, 1), // 2 steps per epoch
      knnData: { train: brightness(24, 2), test: brightness(12, 3) },
      outDir: dir,
      progress,
    });
    assert.equal(result.steps, 6);
    const records = readMetrics(`${dir}/metrics.jsonl`);
    const knn = records.filter((r) => r.kind === "epoch").map((r) => r.knnSeconds as number);
    assert.equal(knn.length, 3);
    assert.ok(knn.every((s) => s > 0));
    const at = (step: number) => progress.seen.find((s) => s.step === step)!.pending;
    // Epoch 1: three kNN monitors ahead, estimated from the training speed.
    assert.ok(at(1) > 0 && at(2) > 0, `${at(1)} ${at(2)}`);
    // Epoch 2: two ahead, at the measured time of the first; epoch 3: one, at the second's.
    for (const s of [3, 4]) assert.ok(Math.abs(at(s) - 2 * knn[0]) < 1e-9, `step ${s}`);
    for (const s of [5, 6]) assert.ok(Math.abs(at(s) - knn[1]) < 1e-9, `step ${s}`);

    // The training clock stopped for the kNN monitors (and the final checkpoint).
    const sum = knn.reduce((a, b) => a + b, 0);
    assert.ok(result.wallSeconds - result.trainSeconds >= sum, `${result.wallSeconds} ${sum}`);
    const steps = records.filter((r) => r.kind === "step");
    assert.deepEqual(steps.map((r) => r.step), [1, 2, 3, 4, 5, 6]);
    for (const r of steps) {
      const ips = r.imagesPerSecond as number;
      assert.ok(Math.abs(ips - (r.step * 16) / (r.seconds as number)) < 1e-6 * ips, `${r.step}`);
    }
    const last = steps.at(-1)!;
    assert.ok((last.seconds as number) <= result.trainSeconds);
    // The epoch records keep the wall clock: after the first kNN it runs ahead of the training one.
    const epoch2 = records.filter((r) => r.kind === "epoch")[1];
    const step4 = steps.find((r) => r.step === 4)!;
    assert.ok((epoch2.seconds as number) - (step4.seconds as number) >= knn[0]);
    assert.equal(progress.seen.at(-1)!.imagesPerSecond, last.imagesPerSecond);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
