/**
 * The pure parts of data-parallel training: the loader's rank shards (strided slices of each
 * global batch, together exactly the global batch, views keyed by the global sample index),
 * `batchNormPlan` (which BN groups live on which ranks), and the launch variables
 * (`LAUNCH_ENV_NAMES` lists every variable `launch.ts`/`create.ts` read; `readLaunchEnv` reads
 * them by name).
 *
 * @module
 */

import assert from "node:assert/strict";
import { memoryDataset } from "../../src/data/datasets/dataset.ts";
import { type HostBatch, Loader } from "../../src/data/loader.ts";
import { augmentationPreset } from "../../src/data/pipelines.ts";
import { LAUNCH_ENV_NAMES, readLaunchEnv } from "../../src/dist/launch.ts";
import { batchNormPlan } from "../../src/ops/batch_norm_sync.ts";
import { RandomStream, rngKey } from "../../src/random/philox.ts";

const rng = new RandomStream(rngKey(5));
const ds = memoryDataset({
  name: "r40",
  images: Uint8Array.from({ length: 40 * 8 * 8 }, () => rng.int(256)),
  height: 8,
  width: 8,
  channels: 1,
});
const preset = augmentationPreset("fashion-mnist");
const view = (size: number) => ({ ...preset.weak, size });

async function batches(shard?: { rank: number; count: number }): Promise<HostBatch[]> {
  const loader = new Loader({
    dataset: ds,
    weak: view(8),
    strong: { ...preset.strong, size: 8 },
    key: rngKey(9),
    batchSize: 12,
    shard,
  });
  const out: HostBatch[] = [];
  for await (const b of loader.epoch(1)) out.push(b);
  await loader.close();
  return out;
}

Deno.test("loader shards: strided slices of each global batch with the same views", async () => {
  const whole = await batches();
  const ranks = await Promise.all([0, 1, 2].map((rank) => batches({ rank, count: 3 })));
  assert.equal(whole.length, 3);
  const per = 8 * 8;
  whole.forEach((b, s) => {
    for (const [rank, mine] of ranks.entries()) {
      const part = mine[s];
      assert.deepEqual(Array.from(part.indices), [0, 1, 2, 3].map((i) => b.indices[i * 3 + rank]));
      part.indices.forEach((_, i) => {
        const g = i * 3 + rank;
        assert.deepEqual(
          part.weak.subarray(i * per, (i + 1) * per),
          b.weak.subarray(g * per, (g + 1) * per),
        );
        assert.deepEqual(
          part.images.subarray(i * per, (i + 1) * per),
          b.images.subarray(g * per, (g + 1) * per),
        );
      });
    }
  });
});

Deno.test("loader shards: a batch that does not divide, or a bad rank, is refused", () => {
  const opts = { dataset: ds, weak: view(8), strong: view(8), key: rngKey(1), batchSize: 12 };
  assert.throws(
    () => new Loader({ ...opts, shard: { rank: 0, count: 5 } }),
    /global batch of 12 images does not divide among 5 processes/,
  );
  assert.throws(() => new Loader({ ...opts, shard: { rank: 2, count: 2 } }), /shard 2 of 2/);
});

Deno.test("batchNormPlan: local groups, SyncBN groups of ranks, refusals", () => {
  assert.deepEqual(batchNormPlan(8, 2, 1), { kind: "local", localSplits: 4 });
  assert.deepEqual(batchNormPlan(2, 2, 0), { kind: "local", localSplits: 1 });
  assert.deepEqual(batchNormPlan(1, 4, 3), { kind: "sync", first: 0, stride: 1, take: 4 });
  // 2 groups on 8 ranks: rank 5 holds global images 5, 13, ... (group 1) with ranks 1, 3, 5, 7.
  assert.deepEqual(batchNormPlan(2, 8, 5), { kind: "sync", first: 1, stride: 2, take: 4 });
  assert.throws(
    () => batchNormPlan(3, 2, 0),
    /Cannot spread 3 BatchNorm groups .* over 2 processes/,
  );
});

Deno.test("launch variables: every name the communicators read is listed and read by name", async () => {
  const sources = ["launch.ts", "create.ts"].map((f) =>
    Deno.readTextFile(new URL(`../../src/dist/${f}`, import.meta.url))
  );
  const read = new Set<string>();
  for (const src of await Promise.all(sources)) {
    const body = src.slice(0, src.indexOf("export const LAUNCH_ENV_NAMES"));
    for (const m of body.matchAll(/"([A-Z][A-Z0-9_]{2,})"/g)) read.add(m[1]);
    for (const m of body.matchAll(/env\.([A-Z][A-Z0-9_]{2,})/g)) read.add(m[1]);
  }
  read.delete("OMPI_ALLOW_RUN_AS_ROOT");
  assert.ok(
    read.has("SLURM_STEP_TASKS_PER_NODE") && read.has("RESSL_COMM_TIMEOUT_S"),
    [...read].join(),
  );
  const missing = [...read].filter((n) => n.includes("_") && !LAUNCH_ENV_NAMES.includes(n));
  assert.deepEqual(missing, [], "read but not in LAUNCH_ENV_NAMES");
  Deno.env.set("PMI_SIZE", "3");
  try {
    assert.equal(readLaunchEnv().PMI_SIZE, "3");
  } finally {
    Deno.env.delete("PMI_SIZE");
  }
});
