import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { createContext } from "../../src/tensor/mod.ts";
import {
  checkpointName,
  checkpointStep,
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  readCheckpoint,
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

Deno.test("checkpoint names: listed by step (past 9 digits too), named only for integer steps", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const step of [999_999_999, 5, 1_000_000_000]) {
      await Deno.writeFile(`${dir}/${checkpointName(step)}`, new Uint8Array(1));
    }
    await Deno.writeFile(`${dir}/checkpoint-12.safetensors`, new Uint8Array(1)); // not ours
    await Deno.writeFile(`${dir}/.checkpoint-000000005.safetensors.123.tmp`, new Uint8Array(1));
    assert.deepEqual(listCheckpoints(dir).map((p) => checkpointStep(p)), [
      5,
      999_999_999,
      1_000_000_000,
    ]);
    assert.deepEqual(pruneCheckpoints(dir, 1).map((p) => checkpointStep(p)), [5, 999_999_999]);
    assert.throws(() => checkpointName(-5), /step -5: expected an integer >= 0/);
    assert.throws(() => checkpointName(2.5), /step 2\.5/);
    assert.throws(() => checkpointName(1e300), /expected an integer/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readCheckpointMeta reads the header only, and still refuses truncated files", async () => {
  const ctx = createContext(createReferenceBackend());
  const dir = await Deno.makeTempDir();
  try {
    const big = { w: ctx.zeros([256, 256]) };
    const path = `${dir}/${checkpointName(3)}`;
    await saveCheckpoint(path, { trees: { big }, meta: { step: 3 } });
    big.w.dispose();
    assert.deepEqual(await readCheckpointMeta(path), { step: 3 });
    const bytes = await Deno.readFile(path);
    // The tensor bytes are not read: garbage there still gives the metadata ...
    bytes.fill(0xff, bytes.length - 1000);
    await Deno.writeFile(path, bytes);
    assert.deepEqual(await readCheckpointMeta(path), { step: 3 });
    // ... but a short file is refused from its size, and a missing one by name.
    await Deno.writeFile(path, bytes.subarray(0, bytes.length - 4));
    await assert.rejects(
      () => readCheckpointMeta(path),
      /is \d+ bytes, its header describes \d+ \(truncated\?\)/,
    );
    await Deno.writeFile(path, bytes.subarray(0, 30));
    await assert.rejects(
      () => readCheckpointMeta(path),
      /it is truncated or not a safetensors checkpoint \(its first 8 bytes give a header length of \d+, but the file has 30 bytes\)/,
    );
    await assert.rejects(() => readCheckpointMeta(`${dir}/none.safetensors`), /none\.safetensors/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("every checkpoint reader says in the same words that garbage is not a checkpoint", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const noise = Uint8Array.from({ length: 16 }, (_, k) => (k * 97 + 13) & 255);
    const cases: [string, Uint8Array, string][] = [
      [
        "noise.safetensors",
        noise,
        "it is not a safetensors checkpoint (its first 8 bytes give a header length of " +
        "12993996055297093133, but the file has 16 bytes)",
      ],
      [
        "page.safetensors",
        new TextEncoder().encode("<html>404 Not Found</html>\n"),
        "it is not a safetensors checkpoint (its first 8 bytes give a header length of " +
        "3473469848023230524, but the file has 27 bytes)",
      ],
      [
        "empty.safetensors",
        new Uint8Array(0),
        "it is not a safetensors checkpoint (the file has only 0 bytes; one starts with an " +
        "8-byte header length)",
      ],
    ];
    for (const [name, bytes, why] of cases) {
      const path = `${dir}/${name}`;
      await Deno.writeFile(path, bytes);
      const want = `Cannot load checkpoint '${path}': ${why}`;
      // The whole-file reader (eval, embed, export) and the header-only one (--resume planning).
      for (const read of [readCheckpoint, readCheckpointMeta]) {
        await assert.rejects(() => read(path), (e: Error) => {
          assert.equal(e.message, want);
          return true;
        });
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
