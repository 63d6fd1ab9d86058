/**
 * `plot --map --data DIR` reads a built-in test set where `train` and `eval` find it: CIFAR-10 in
 * the layout `--download` leaves (DIR/cifar-10-batches-bin/) or in DIR/cifar10/ (it was refused,
 * asking for DIR/cifar10/), Fashion-MNIST in a folder of any name holding its files (it was refused
 * unless named fashion-mnist), and the images drawn are those files (the first 30 of the 40 test
 * images: not Debian's copy of 10,000).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { RandomStream, rngKey } from "../../src/random/philox.ts";
import { writeFixtureCheckpoint } from "../eval/checkpoint_fixture.ts";
import { DEVICE, runTask, writeFashionMnist } from "./cli_helpers.ts";

/** A CIFAR-10 test batch of `n` random records (label byte + 3072 pixel bytes), a train one of 1. */
function writeCifarTest(dir: string, n: number): void {
  Deno.mkdirSync(dir, { recursive: true });
  const rng = new RandomStream(rngKey(4));
  const bytes = Uint8Array.from(
    { length: n * 3073 },
    (_, i) => (i % 3073 === 0 ? (i / 3073) % 10 : rng.int(256)),
  );
  Deno.writeFileSync(`${dir}/test_batch.bin`, bytes);
  Deno.writeFileSync(`${dir}/data_batch_1.bin`, bytes.subarray(0, 3073)); // what --data looks for
}

/** `deno task plot <run> --map --no-curves --data <data> --points <points>` (a short t-SNE). */
function plotMap(run: string, data: string, points: number) {
  return runTask("plot", [
    run,
    "--map",
    "--no-curves",
    "--data",
    data,
    "--points",
    String(points),
    "--perplexity",
    "5",
    "--iterations",
    "100",
    "--device",
    DEVICE,
    "--threads",
    "1",
  ]);
}

Deno.test("plot --map --data: CIFAR-10 in DIR/cifar-10-batches-bin or DIR/cifar10/", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_map_" });
  try {
    await Deno.mkdir(`${dir}/run`);
    await writeFixtureCheckpoint(`${dir}/run/checkpoint-000000001.safetensors`, {
      preset: "cifar10",
    });
    writeCifarTest(`${dir}/dl/cifar-10-batches-bin`, 40);
    writeCifarTest(`${dir}/nested/cifar10`, 40);
    for (const data of [`${dir}/dl`, `${dir}/nested`]) {
      const r = await plotMap(`${dir}/run`, data, 30);
      assert.equal(r.code, 0, r.text);
      assert.match(r.text, /map: 30 points of cifar10\/test\[:30\]/);
      assert.ok(existsSync(`${dir}/run/embedding-map.svg`));
      await Deno.remove(`${dir}/run/embedding-map.svg`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("plot --map --data: Fashion-MNIST in a folder holding its files, whatever its name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_map_" });
  try {
    await Deno.mkdir(`${dir}/run`);
    await writeFixtureCheckpoint(`${dir}/run/checkpoint-000000001.safetensors`);
    writeFashionMnist(`${dir}/my-fm-copy`, 2, 40, 5);
    const r = await plotMap(`${dir}/run`, `${dir}/my-fm-copy`, 30);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /map: 30 points of fashion-mnist\/test\[:30\]/);
    assert.ok(existsSync(`${dir}/run/embedding-map.svg`));
    // 40 test images there: asking for more than the folder holds shows it is the one read.
    const more = await plotMap(`${dir}/run`, `${dir}/my-fm-copy`, 41);
    assert.equal(more.code, 0, more.text);
    assert.match(more.text, /map: 40 points of fashion-mnist\/test at step/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
