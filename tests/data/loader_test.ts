import assert from "node:assert/strict";
import { memoryDataset } from "../../src/data/datasets/dataset.ts";
import { type HostBatch, Loader } from "../../src/data/loader.ts";
import { augmentationPreset } from "../../src/data/pipelines.ts";
import { RandomStream, rngKey } from "../../src/random/philox.ts";

function randomDataset(n: number, h: number, c: number, seed: number) {
  const rng = new RandomStream(rngKey(seed));
  const images = Uint8Array.from({ length: n * h * h * c }, () => rng.int(256));
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  return memoryDataset({
    name: `random${h}x${c}`,
    images,
    labels,
    height: h,
    width: h,
    channels: c,
  });
}

/** Every sample's (weak, strong) views of an epoch, keyed by dataset index. */
async function viewsByIndex(loader: Loader, epoch: number, startBatch = 0) {
  const out = new Map<number, { weak: Float32Array; strong: Float32Array; image: Uint8Array }>();
  const batches: HostBatch[] = [];
  for await (const b of loader.epoch(epoch, { startBatch })) {
    batches.push(b);
    const n = b.indices.length,
      pw = b.weak.length / n,
      ps = b.strong.length / n,
      pi = b.images.length / n;
    b.indices.forEach((idx, k) => {
      assert.ok(!out.has(idx), `index ${idx} twice in one epoch`);
      out.set(idx, {
        weak: b.weak.slice(k * pw, (k + 1) * pw),
        strong: b.strong.slice(k * ps, (k + 1) * ps),
        image: b.images.slice(k * pi, (k + 1) * pi),
      });
    });
  }
  return { out, batches };
}

for (const [preset, h, c] of [["cifar10", 32, 3], ["fashion-mnist", 28, 1]] as const) {
  Deno.test(`loader (${preset}): views identical for 0, 1 and 3 workers and any batch size`, async () => {
    const dataset = randomDataset(37, h, c, 5);
    const p = augmentationPreset(preset);
    const key = rngKey(42);
    const make = (workers: number, batchSize: number) =>
      new Loader({
        dataset,
        weak: p.weak,
        strong: p.strong,
        key,
        batchSize,
        workers,
        dropLast: false,
      });
    await using l0 = make(0, 8);
    await using l1 = make(1, 8);
    await using l3 = make(3, 5);
    for (const epoch of [0, 3]) {
      const a = await viewsByIndex(l0, epoch);
      const b = await viewsByIndex(l1, epoch);
      const d = await viewsByIndex(l3, epoch);
      assert.equal(a.out.size, 37);
      assert.equal(a.batches.length, 5);
      assert.equal(d.batches.length, 8);
      assert.deepEqual(a.batches.map((x) => [...x.indices]), b.batches.map((x) => [...x.indices]));
      for (const [idx, v] of a.out) {
        assert.deepEqual(b.out.get(idx), v, `sample ${idx}, 1 worker`);
        assert.deepEqual(d.out.get(idx), v, `sample ${idx}, 3 workers, batch 5`);
        assert.deepEqual(v.image, dataset.images!.subarray(idx * h * h * c, (idx + 1) * h * h * c));
        assert.equal(v.weak.length, c * h * h);
      }
      for (const batch of a.batches) {
        assert.deepEqual([...batch.labels!], [...batch.indices].map((i) => i % 10));
        assert.equal(batch.epoch, epoch);
      }
    }
  });
}

Deno.test("loader: epochs reshuffle, dropLast, resume mid-epoch, weak differs from strong", async () => {
  const dataset = randomDataset(20, 32, 3, 6);
  const p = augmentationPreset("cifar10");
  await using loader = new Loader({
    dataset,
    weak: p.weak,
    strong: p.strong,
    key: rngKey(1),
    batchSize: 6,
    workers: 2,
  });
  assert.equal(loader.batchesPerEpoch(), 3);
  const e0 = await viewsByIndex(loader, 0);
  const e1 = await viewsByIndex(loader, 1);
  assert.equal(e0.out.size, 18, "dropLast keeps 3 full batches");
  assert.notDeepEqual(loader.epochOrder(0), loader.epochOrder(1));
  assert.deepEqual(
    [...loader.epochOrder(0)].sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => i),
  );
  const common = [...e0.out.keys()].find((i) => e1.out.has(i))!;
  assert.notDeepEqual(e0.out.get(common)!.weak, e1.out.get(common)!.weak, "new epoch, new views");
  assert.notDeepEqual(e0.out.get(common)!.weak, e0.out.get(common)!.strong);
  const resumed = await viewsByIndex(loader, 0, 2);
  assert.equal(resumed.batches.length, 1);
  assert.equal(resumed.batches[0].step, 2);
  assert.deepEqual(resumed.batches[0], e0.batches[2]);
  await using other = new Loader({
    dataset,
    weak: p.weak,
    strong: p.strong,
    key: rngKey(2),
    batchSize: 6,
  });
  assert.notDeepEqual(other.epochOrder(0), loader.epochOrder(0), "another seed, another order");
});

Deno.test("loader: bad configurations and failing reads give clear errors", async () => {
  const dataset = randomDataset(4, 28, 1, 7);
  const cifar = augmentationPreset("cifar10");
  const fm = augmentationPreset("fashion-mnist");
  assert.throws(
    () =>
      new Loader({ dataset, weak: cifar.weak, strong: cifar.strong, key: rngKey(0), batchSize: 2 }),
    /Cannot augment 1-channel images: the pipeline normalises 3 channels/,
  );
  assert.throws(
    () => new Loader({ dataset, weak: fm.weak, strong: fm.strong, key: rngKey(0), batchSize: 5 }),
    /has 4 images, fewer than one batch of 5/,
  );
  const broken = {
    ...dataset,
    readInto() {
      throw new Error("Cannot read image 3 of broken: disk on fire");
    },
  };
  await using loader = new Loader({
    dataset: broken,
    weak: fm.weak,
    strong: fm.strong,
    key: rngKey(0),
    batchSize: 2,
    workers: 1,
  });
  await assert.rejects(async () => {
    for await (const _ of loader.epoch(0)) { /* nothing */ }
  }, /disk on fire/);
  await loader.close();
  await assert.rejects(async () => {
    for await (const _ of loader.epoch(0)) { /* nothing */ }
  }, /closed loader/);
});
