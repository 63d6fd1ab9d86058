/**
 * Issue 14 case 9: crafted checkpoint metadata is refused as strictly as a bad tensor, naming the
 * file and the field, both by the full open (`openTrainCheckpoint`, used by train/eval/export)
 * and by the header-only read (`readTrainCheckpointMeta`, used to plan a resume). The v1 fixture
 * (`fixtures/checkpoint_v1.safetensors`: step 2 of a 1-epoch run of 16 images in batches of 8)
 * is the base every case edits.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { readSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";
import {
  CONFIG_KEYS_ADDED_AFTER_V1,
  openTrainCheckpoint,
  readTrainCheckpointMeta,
} from "../../src/ressl/checkpoint.ts";
import { presetConfig } from "../../src/ressl/config.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/checkpoint_v1.safetensors", import.meta.url));

type Meta = Record<string, unknown> & { config: Record<string, unknown> };

/** Writes the fixture with its metadata edited by `edit` to `path`. */
async function crafted(path: string, edit: (meta: Meta) => void): Promise<void> {
  const file = await readSafetensors(FIXTURE);
  const meta = JSON.parse(file.metadata.meta) as Meta;
  edit(meta);
  await writeSafetensors(path, file.tensors, {
    metadata: { ...file.metadata, meta: JSON.stringify(meta) },
  });
}

const CASES: [string, (m: Meta) => void, RegExp][] = [
  ["step as a string", (m) => (m.step = "2"), /'step' is "2", expected an integer >= 0/],
  ["negative step", (m) => (m.step = -5), /'step' is -5, expected an integer >= 0/],
  ["fractional step", (m) => (m.step = 2.5), /'step' is 2.5, expected an integer >= 0/],
  [
    "step past the run",
    (m) => (m.step = 1e15),
    /its step 1000000000000000 is beyond the run's last step 2 \(1 epochs of 2 steps\)/,
  ],
  ["unsafe integer step", (m) => (m.step = 2 ** 60), /'step' is 1152921504606847000/],
  ["missing step", (m) => delete m.step, /'step' is missing/],
  ["no images", (m) => (m.images = 0), /'images' is 0, expected an integer >= 1/],
  ["fewer images than a batch", (m) => (m.images = 7), /its 7 images make no batch of 8/],
  [
    "an epoch that does not hold the step",
    (m) => (m.epoch = 3),
    /its epoch 3 does not hold step 2/,
  ],
  [
    "a seed other than the config's",
    (m) => (m.seed = 9),
    /'seed' is 9, its configuration's seed is 0/,
  ],
  ["queue pointer past the queue", (m) => (m.queuePtr = 16), /queue pointer 16 is not a multiple/],
  ["queue pointer off the batch", (m) => (m.queuePtr = 3), /queue pointer 3 is not a multiple/],
  ["no dataset name", (m) => (m.dataset = ""), /has no dataset name/],
  [
    "no config",
    (m) => delete (m as Record<string, unknown>).config,
    /has no training configuration/,
  ],
  ["config not an object", (m) => (m.config = [] as unknown as Meta["config"]), /is not an object/],
  [
    "config missing a key",
    (m) => delete (m.config.optim as Record<string, unknown>).lr,
    /its training configuration has no 'optim.lr'/,
  ],
  [
    "config with an unknown key",
    (m) => ((m.config.optim as Record<string, unknown>).lrr = 1),
    /unknown key 'optim.lrr'/,
  ],
  [
    "config with a wrong type",
    (m) => ((m.config.model as Record<string, unknown>).width = "1"),
    /'model.width' must be number, got string/,
  ],
  [
    "config out of range",
    (m) => ((m.config.ressl as Record<string, unknown>).queueSize = 12),
    /'ressl.queueSize' \(12\) must be a multiple of batchSize \(8\)/,
  ],
];

Deno.test("crafted checkpoint metadata is refused naming the file and the field", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_meta_" });
  try {
    for (const [what, edit, message] of CASES) {
      const path = `${dir}/crafted.safetensors`;
      await crafted(path, edit);
      for (const read of [openTrainCheckpoint, readTrainCheckpointMeta]) {
        await assert.rejects(
          () => read(path),
          (e: Error) => {
            assert.ok(e.message.startsWith(`Cannot load checkpoint '${path}': `), e.message);
            assert.match(e.message, message, `${what} (${read.name})`);
            return true;
          },
        );
      }
    }
    // Metadata that is JSON but not an object.
    const file = await readSafetensors(FIXTURE);
    const path = `${dir}/array.safetensors`;
    await writeSafetensors(path, file.tensors, { metadata: { ...file.metadata, meta: "[1]" } });
    await assert.rejects(() => readTrainCheckpointMeta(path), /its metadata is not an object/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the stored configuration comes back as stored; keys added after v1 may be absent", async () => {
  const meta = await readTrainCheckpointMeta(FIXTURE);
  const stored = JSON.parse((await readSafetensors(FIXTURE)).metadata.meta).config;
  assert.deepEqual(meta.config, stored, "nothing is filled in or dropped");
  // Every key of today's configuration is in the v1 fixture or declared as added after it.
  const leaves = (v: unknown, p = ""): string[] =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.entries(v).flatMap(([k, x]) => leaves(x, p ? `${p}.${k}` : k))
      : [p];
  const known = new Set([...leaves(stored), ...Object.keys(CONFIG_KEYS_ADDED_AFTER_V1)]);
  const missing = leaves(presetConfig("fashion-mnist")).filter((k) => !known.has(k));
  assert.deepEqual(missing, [], "add these to CONFIG_KEYS_ADDED_AFTER_V1 with their old meaning");
});
