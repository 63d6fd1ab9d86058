import assert from "node:assert/strict";
import { readCifar10 } from "../src/data/datasets/cifar.ts";
import { CIFAR10_RECORD_BYTES, writeSyntheticCifar10 } from "./synthetic_cifar.ts";

Deno.test("writeSyntheticCifar10: the files parse with readCifar10 and hold the asked records", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ressl-synthetic-cifar-" });
  try {
    const root = await writeSyntheticCifar10(tmp, { first: 40, others: 3, test: 7 }, 5);
    assert.equal(root, tmp);
    const dir = `${tmp}/cifar-10-batches-bin`;
    const sizes: Record<string, number> = {};
    for (const e of Deno.readDirSync(dir)) sizes[e.name] = Deno.statSync(`${dir}/${e.name}`).size;
    assert.deepEqual(sizes, {
      "data_batch_1.bin": 40 * CIFAR10_RECORD_BYTES,
      "data_batch_2.bin": 3 * CIFAR10_RECORD_BYTES,
      "data_batch_3.bin": 3 * CIFAR10_RECORD_BYTES,
      "data_batch_4.bin": 3 * CIFAR10_RECORD_BYTES,
      "data_batch_5.bin": 3 * CIFAR10_RECORD_BYTES,
      "test_batch.bin": 7 * CIFAR10_RECORD_BYTES,
    });
    const train = await readCifar10({ root: tmp, split: "train" });
    const test = await readCifar10({ root: tmp, split: "test" });
    assert.equal(train.length, 40 + 4 * 3);
    assert.equal(test.length, 7);
    assert.deepEqual([train.height, train.width, train.channels], [32, 32, 3]);

    // The first images are data_batch_1's records, planes interleaved into NHWC by the reader.
    const raw = await Deno.readFile(`${dir}/data_batch_1.bin`);
    assert.ok(train.images && train.labels);
    assert.equal(train.labels[0], raw[0]);
    assert.equal(train.labels[1], raw[CIFAR10_RECORD_BYTES]);
    for (const p of [0, 1, 517, 1023]) {
      for (let ch = 0; ch < 3; ch++) {
        assert.equal(train.images[3 * p + ch], raw[1 + ch * 1024 + p], `pixel ${p} channel ${ch}`);
      }
    }
    // Labels cover 0..9 and pixels look uniform (pseudo-random, not constant).
    const labels = new Set(train.labels.subarray(0, 40));
    assert.ok(labels.size >= 6, `labels ${[...labels]}`);
    let sum = 0;
    for (let i = 1; i < CIFAR10_RECORD_BYTES; i++) sum += raw[i];
    const mean = sum / (CIFAR10_RECORD_BYTES - 1);
    assert.ok(mean > 115 && mean < 140, `pixel mean ${mean}`);

    // Deterministic: the same seed gives the same bytes, another seed other bytes.
    const again = await Deno.makeTempDir({ prefix: "ressl-synthetic-cifar-" });
    try {
      await writeSyntheticCifar10(again, { first: 40, others: 3, test: 7 }, 5);
      assert.deepEqual(await Deno.readFile(`${again}/cifar-10-batches-bin/data_batch_1.bin`), raw);
      await writeSyntheticCifar10(again, { first: 40, others: 3, test: 7 }, 6);
      assert.notDeepEqual(
        await Deno.readFile(`${again}/cifar-10-batches-bin/data_batch_1.bin`),
        raw,
      );
    } finally {
      await Deno.remove(again, { recursive: true });
    }
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("writeSyntheticCifar10: a file without records is refused, naming the count", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "ressl-synthetic-cifar-" });
  try {
    await assert.rejects(
      () => writeSyntheticCifar10(tmp, { first: 10, others: 0, test: 1 }),
      /count 0 is not an integer >= 1/,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
