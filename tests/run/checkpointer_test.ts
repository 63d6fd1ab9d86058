/**
 * Checkpointer: checkpoints are named by step and the newest N kept, a fresh run refuses a folder
 * with checkpoints, the epochs due a checkpoint follow `checkpoint.every` and the last epoch, a
 * resume loads the newest checkpoint (or the one named) and refuses another configuration or
 * dataset size, an older checkpoint over newer ones, or a branch into a folder with checkpoints,
 * pruning never removes the checkpoint just written, and a state holding NaN is never written.
 */
import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { listCheckpoints } from "../../src/io/checkpoint.ts";
import { mergeConfig, presetConfig, validateConfig } from "../../src/ressl/config.ts";
import { initTrainState } from "../../src/ressl/state.ts";
import { disposeTrainState, type TrainState } from "../../src/ressl/step.ts";
import { Checkpointer } from "../../src/run/checkpointer.ts";
import { NonFiniteLossError } from "../../src/run/non_finite.ts";
import { createContext, flattenTree, type TensorTree } from "../../src/tensor/mod.ts";

const ctx = createContext(createReferenceBackend());
const config = validateConfig(mergeConfig(presetConfig("fashion-mnist"), {
  model: { width: 1 },
  head: { hidden: 8, out: 4 },
  ressl: { queueSize: 16 },
  batchSize: 8,
  epochs: 5,
  checkpoint: { every: 2, keep: 2 },
}, "test"));
const dataset = { name: "tiny", length: 64 };

function values(state: TrainState): number[] {
  return flattenTree(state as unknown as TensorTree).flatMap(([, t]) => [...t.toFloat32()]);
}

Deno.test("Checkpointer writes, prunes and resumes the checkpoints of a run folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_ckpt_" });
  const live = ctx.liveTensors;
  const state = initTrainState(ctx, config);
  try {
    const ck = new Checkpointer({ outDir: dir, config, dataset });
    assert.deepEqual([0, 1, 2, 3, 4].filter((e) => ck.dueAfterEpoch(e)), [1, 3, 4]);
    ck.assertFresh();
    await assert.rejects(() => ck.resume(ctx, ""), /'.*' holds no checkpoint/);
    for (const step of [8, 16, 24]) {
      const written = await ck.save({ ...state, step }, step / 8 - 1);
      assert.match(written.path, new RegExp(`checkpoint-0+${step}\\.safetensors$`));
      assert.ok(ck.holds(step) && !ck.holds(step - 8));
    }
    assert.deepEqual(listCheckpoints(dir).map((p) => p.slice(-15)), [
      "016.safetensors",
      "024.safetensors",
    ]);
    assert.throws(() => ck.assertFresh(), /already holds checkpoints/);

    const resumed = await new Checkpointer({ outDir: dir, config, dataset }).resume(ctx, "");
    assert.equal(resumed.path, ck.last?.path);
    assert.equal(resumed.state.step, 24);
    assert.deepEqual(values(resumed.state), values(state));
    disposeTrainState(resumed.state);
    // The older checkpoint of the folder is refused there (it would overwrite and prune step 24)
    // and continues in a folder of its own (a branch); a branch into a folder with checkpoints
    // is refused too.
    const older = listCheckpoints(dir)[0];
    const before = ctx.liveTensors;
    await assert.rejects(
      () => new Checkpointer({ outDir: dir, config, dataset }).resume(ctx, older),
      /\(step 16\): run folder '.*' holds newer checkpoints \(step 24\).*--out <new folder>/,
    );
    assert.equal(ctx.liveTensors, before, "a refused resume allocates nothing");
    const branchDir = `${dir}/branch`;
    await Deno.mkdir(branchDir);
    const branch = new Checkpointer({ outDir: branchDir, config, dataset });
    const named = await branch.resume(ctx, older);
    assert.equal(named.state.step, 16);
    assert.equal(branch.last, undefined, "a branch has written nothing in its folder yet");
    await branch.save(named.state, 1);
    disposeTrainState(named.state);
    await assert.rejects(
      () => new Checkpointer({ outDir: branchDir, config, dataset }).resume(ctx, ck.last!.path),
      /holds the checkpoints of another run \(newest step 16\)/,
    );
    assert.deepEqual(listCheckpoints(dir).map((p) => p.slice(-15)), [
      "016.safetensors",
      "024.safetensors",
    ], "nothing of the source folder was touched");

    const other = { ...config, seed: 7 };
    await assert.rejects(
      () => new Checkpointer({ outDir: dir, config: other, dataset }).resume(ctx, ""),
      /configuration differs at 'seed' \(checkpoint: 0, now: 7\)/,
    );
    await assert.rejects(
      () =>
        new Checkpointer({ outDir: dir, config, dataset: { ...dataset, length: 80 } }).resume(
          ctx,
          "",
        ),
      /trained on 64 images, the dataset now has 80/,
    );
  } finally {
    disposeTrainState(state);
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(ctx.liveTensors, live, "the checkpointer leaked tensors");
});

Deno.test("Checkpointer refuses a state holding NaN and names the last good checkpoint", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_ckpt_" });
  const state = initTrainState(ctx, config);
  try {
    const ck = new Checkpointer({ outDir: dir, config, dataset });
    const good = await ck.save(state, 0);
    const bad: TrainState = {
      ...state,
      step: 8,
      queue: { ...state.queue, data: ctx.full(state.queue.data.shape, NaN) },
    };
    await assert.rejects(
      () => ck.save(bad, 1),
      (e: Error) =>
        e instanceof NonFiniteLossError && e.message.includes("'queue/' became NaN") &&
        e.message.includes(`the last good checkpoint is '${good.path}'`),
    );
    bad.queue.data.dispose();
    assert.deepEqual(listCheckpoints(dir), [good.path], "nothing is written for a NaN state");
  } finally {
    disposeTrainState(state);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Checkpointer pruning never removes the checkpoint it just wrote", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_ckpt_" });
  const state = initTrainState(ctx, config);
  try {
    // Two checkpoints of higher steps than the one written (as an older resume used to leave):
    // keep = 2 would have pruned the new one, by its lower step, and reported it as written.
    const ck = new Checkpointer({ outDir: dir, config, dataset });
    await ck.save({ ...state, step: 32 }, 3);
    await ck.save({ ...state, step: 40 }, 4);
    const written = await ck.save({ ...state, step: 8 }, 0);
    assert.ok(listCheckpoints(dir).includes(written.path), "the checkpoint just written is kept");
    assert.equal(listCheckpoints(dir).length, 3, "the newer two are not pruned either");
  } finally {
    disposeTrainState(state);
    await Deno.remove(dir, { recursive: true });
  }
});
