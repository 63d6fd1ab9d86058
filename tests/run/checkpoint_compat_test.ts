/**
 * The checkpoint schema reads checkpoints written before it existed. `fixtures/checkpoint_v1.safetensors`
 * was written by `runTraining` at commit ab4eda2 (the schema then lived in src/io/checkpoint.ts,
 * src/ressl/state.ts and src/eval/backbone_io.ts): 2 steps of a ResNet-18 of width 1 on 16 random
 * 28x28 images. The test spells the names of that layout itself (not through the schema), so a
 * renamed tree, a swapped student/teacher or a moved head fails here.
 *
 * It also checks that re-saving the loaded state gives the same names, values and metadata, that
 * the loaded state trains, and that damaged checkpoints fail naming the file and the tensor with
 * nothing left allocated.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { readSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";
import {
  loadCheckpointBackbone,
  loadTrainState,
  openTrainCheckpoint,
  saveTrainCheckpoint,
} from "../../src/ressl/checkpoint.ts";
import { trainStepConfig } from "../../src/ressl/state.ts";
import { createTrainStep, disposeTrainState } from "../../src/ressl/step.ts";
import { rngKey, uniformArray } from "../../src/random/philox.ts";
import { createContext, flattenTree, type TensorTree } from "../../src/tensor/mod.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/checkpoint_v1.safetensors", import.meta.url));
const ctx = createContext(createReferenceBackend());

/** `[name in the v1 file, tensor]` for every tensor of a tree stored under `prefix`. */
function named(prefix: string, tree: unknown): [string, Float32Array][] {
  return flattenTree(tree as TensorTree).map(([p, t]) => [prefix + p, t.toFloat32()]);
}

Deno.test("a v1 checkpoint loads into a train state with every tensor where it was", async () => {
  const file = await readSafetensors(FIXTURE);
  const ckpt = await openTrainCheckpoint(FIXTURE);
  assert.equal(ckpt.meta.step, 2);
  assert.equal(ckpt.meta.epoch, 0);
  assert.equal(ckpt.meta.dataset, "legacy-fixture");
  assert.equal(ckpt.meta.images, 16);
  assert.equal(ckpt.meta.config.model.width, 1);
  const live = ctx.liveTensors;
  const state = loadTrainState(ctx, ckpt);
  assert.equal(state.step, 2);
  assert.equal(state.queue.ptr, ckpt.meta.queuePtr);
  const pairs = [
    ...named("student/backbone.", state.student.params.backbone),
    ...named("student/head.", state.student.params.head),
    ...named("student_buffers/", state.student.buffers),
    ...named("teacher/backbone.", state.teacher.params.backbone),
    ...named("teacher/head.", state.teacher.params.head),
    ...named("teacher_buffers/", state.teacher.buffers),
    ["queue/", state.queue.data.toFloat32()] as [string, Float32Array],
    ...named("momentum/backbone.", state.optimizer.momentum.backbone),
    ...named("momentum/head.", state.optimizer.momentum.head),
  ];
  assert.equal(pairs.length, Object.keys(file.tensors).length, "every file tensor is used once");
  for (const [name, values] of pairs) {
    assert.ok(Object.hasOwn(file.tensors, name), `the v1 file has no '${name}'`);
    assert.deepEqual(values, file.tensors[name].data, name);
  }
  // Student, teacher and momentum differ after two steps: a swap would not go unnoticed.
  const w = (t: { toFloat32(): Float32Array }) => [...t.toFloat32()];
  assert.notDeepEqual(
    w(state.student.params.backbone.conv1.weight),
    w(state.teacher.params.backbone.conv1.weight),
  );

  // Re-saving gives the same names, values and metadata.
  const dir = await Deno.makeTempDir({ prefix: "ressl_compat_" });
  try {
    const again = `${dir}/again.safetensors`;
    const meta = await saveTrainCheckpoint(again, state, {
      epoch: ckpt.meta.epoch,
      config: ckpt.meta.config,
      dataset: { name: ckpt.meta.dataset, length: ckpt.meta.images },
    });
    assert.deepEqual(meta, ckpt.meta);
    const back = await readSafetensors(again);
    assert.deepEqual(Object.keys(back.tensors).sort(), Object.keys(file.tensors).sort());
    for (const [name, entry] of Object.entries(file.tensors)) {
      assert.deepEqual(back.tensors[name], entry, name);
    }
    assert.deepEqual(back.metadata, file.metadata);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }

  // The loaded state trains: one more step from it gives a finite loss and step 3.
  const config = ckpt.meta.config;
  const step = createTrainStep(trainStepConfig(config, 2));
  const n = config.batchSize, s = config.image.size;
  const next = ctx.scope(() => {
    const view = (seed: number) =>
      ctx.fromArray(uniformArray(rngKey(seed), n * s * s, -1, 1), [n, 1, s, s]);
    return step(state, { weak: view(1), strong: view(2) }, rngKey(3));
  });
  assert.equal(next.state.step, 3);
  assert.ok(Number.isFinite(next.metrics.loss.item()));
  next.metrics.loss.dispose();
  disposeTrainState(next.state);
  disposeTrainState(state);
  assert.equal(ctx.liveTensors, live, "loading and stepping leaked tensors");
});

Deno.test("the v1 checkpoint's backbones and heads come out by network", async () => {
  const file = await readSafetensors(FIXTURE);
  const live = ctx.liveTensors;
  for (const network of ["student", "teacher"] as const) {
    const b = await loadCheckpointBackbone(ctx, FIXTURE, { network, head: true });
    assert.deepEqual(b.options, {
      depth: 18,
      stem: "cifar",
      maxPool: false,
      inChannels: 1,
      width: 1,
    });
    const pairs = [
      ...named(`${network}/backbone.`, b.params),
      ...named(`${network}_buffers/`, b.buffers),
      ...named(`${network}/head.`, b.head),
    ];
    for (const [name, values] of pairs) assert.deepEqual(values, file.tensors[name].data, name);
    for (const tree of [b.params, b.buffers, b.head]) {
      for (const [, t] of flattenTree(tree as unknown as TensorTree)) t.dispose();
    }
  }
  assert.equal(ctx.liveTensors, live);
});

Deno.test("damaged checkpoints fail naming the file and the tensor, leaving nothing allocated", async () => {
  const file = await readSafetensors(FIXTURE);
  const dir = await Deno.makeTempDir({ prefix: "ressl_compat_" });
  try {
    const write = async (name: string, tensors: typeof file.tensors, meta = file.metadata) => {
      const path = `${dir}/${name}.safetensors`;
      await writeSafetensors(path, tensors, { metadata: meta });
      return path;
    };
    const live = ctx.liveTensors;
    const { "teacher/head.2.bias": _, ...withoutOne } = file.tensors;
    const missing = await write("missing", withoutOne);
    await assert.rejects(
      async () => loadTrainState(ctx, await openTrainCheckpoint(missing)),
      /Cannot load checkpoint '.*missing\.safetensors': tensor 'teacher\/head\.2\.bias' is not in the file/,
    );
    const bias = file.tensors["student/head.0.bias"];
    const extra = await write("extra", { ...file.tensors, "student/head.4.bias": bias });
    await assert.rejects(
      async () => loadTrainState(ctx, await openTrainCheckpoint(extra)),
      /Cannot load checkpoint '.*extra\.safetensors': unexpected tensor 'student\/head\.4\.bias'/,
    );
    const wrong = await write("wrong", {
      ...file.tensors,
      "queue/": { dtype: "F32", shape: [4, 16], data: new Float32Array(64) },
    });
    await assert.rejects(
      async () => loadTrainState(ctx, await openTrainCheckpoint(wrong)),
      /tensor 'queue\/' has shape \[4,16\] in the file, expected \[16,4\]/,
    );
    const meta = JSON.parse(file.metadata.meta);
    const badMeta = await write("badmeta", file.tensors, {
      ...file.metadata,
      meta: JSON.stringify({ ...meta, step: -1 }),
    });
    await assert.rejects(
      () => openTrainCheckpoint(badMeta),
      /Cannot load checkpoint '.*badmeta\.safetensors': its metadata field 'step' is -1/,
    );
    const other = await write("other", file.tensors, { ...file.metadata, format: "pytorch" });
    await assert.rejects(() => openTrainCheckpoint(other), /not a training checkpoint .*'pytorch'/);
    assert.equal(ctx.liveTensors, live);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
