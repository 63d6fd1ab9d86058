import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { createContext } from "../../src/tensor/mod.ts";
import {
  checkpointName,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  readCheckpointMeta,
  saveCheckpoint,
} from "../../src/io/checkpoint.ts";

Deno.test("checkpoints round-trip trees and metadata, reject corrupt files, prune to the last N", async () => {
  const ctx = createContext(createReferenceBackend());
  const dir = await Deno.makeTempDir();
  try {
    const student = { conv1: { weight: ctx.fromArray([1, 2, 3, 4], [2, 2]) } };
    const queue = { q: ctx.fromArray([0.5, -0.5], [1, 2]) };
    const meta = { step: 12, epoch: 1, queuePtr: 3 };
    for (const step of [4, 8, 12]) {
      await saveCheckpoint(`${dir}/${checkpointName(step)}`, { trees: { student, queue }, meta });
    }
    const paths = listCheckpoints(dir);
    assert.equal(paths.length, 3);
    pruneCheckpoints(dir, 2);
    assert.deepEqual(listCheckpoints(dir), paths.slice(1));
    const last = paths[2];
    assert.deepEqual(await readCheckpointMeta(last), meta);
    const loaded = await loadCheckpoint<
      typeof meta,
      { student: typeof student; queue: typeof queue }
    >(
      last,
      ctx,
      { student, queue },
    );
    assert.deepEqual([...loaded.trees.student.conv1.weight.toFloat32()], [1, 2, 3, 4]);
    assert.deepEqual([...loaded.trees.queue.q.toFloat32()], [0.5, -0.5]);
    assert.equal(loaded.meta.queuePtr, 3);

    const before = ctx.liveTensors;
    const wrongShape = { student: { conv1: { weight: ctx.zeros([4]) } }, queue };
    await assert.rejects(() => loadCheckpoint(last, ctx, wrongShape), /student\/conv1.weight/);
    assert.equal(ctx.liveTensors, before + 1, "a failed load leaves nothing allocated");

    const bytes = await Deno.readFile(last);
    await Deno.writeFile(`${dir}/bad.safetensors`, bytes.subarray(0, bytes.length - 3));
    await assert.rejects(() => readCheckpointMeta(`${dir}/bad.safetensors`), /bad.safetensors/);
    await Deno.writeTextFile(`${dir}/junk.safetensors`, "not a checkpoint at all");
    await assert.rejects(() => readCheckpointMeta(`${dir}/junk.safetensors`), /junk.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
