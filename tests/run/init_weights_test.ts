/**
 * `loadBackboneInit` (train --init) and `readTorchvisionBackbone`: a torchvision-named file made by
 * the exporter replaces the student's and teacher's backbones exactly, keeps the rest of the state,
 * consumes the old tensors without leaks, and refuses mismatched files with the file's name.
 */
import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { disposeBackbone, readTorchvisionBackbone } from "../../src/eval/backbone_io.ts";
import { torchvisionStateDict } from "../../src/eval/export.ts";
import { loadBackboneInit } from "../../src/run/init_weights.ts";
import { loadCheckpointBackbone } from "../../src/ressl/checkpoint.ts";
import { type SafetensorsMap, writeSafetensors } from "../../src/io/safetensors.ts";
import { backboneOptions, initTrainState } from "../../src/ressl/state.ts";
import { disposeTrainState, type TrainState } from "../../src/ressl/step.ts";
import { createContext, flattenTree, type TensorTree } from "../../src/tensor/mod.ts";
import { fixtureConfig, writeFixtureCheckpoint } from "../eval/checkpoint_fixture.ts";

const ctx = createContext(createReferenceBackend());

function values(tree: unknown): Map<string, number[]> {
  return new Map(flattenTree(tree as TensorTree).map(([p, t]) => [p, [...t.toFloat32()]]));
}

async function setup(dir: string): Promise<{ path: string; file: SafetensorsMap }> {
  const ckpt = `${dir}/ckpt.safetensors`;
  await writeFixtureCheckpoint(ckpt, { width: 4, seed: 3 });
  const net = await loadCheckpointBackbone(ctx, ckpt, { head: true });
  const file = torchvisionStateDict(net, { numBatchesTracked: 9, head: net.head });
  disposeBackbone(net);
  const path = `${dir}/init.safetensors`;
  await writeSafetensors(path, file);
  return { path, file };
}

Deno.test("loadBackboneInit: student and teacher backbones come from the file; the rest is kept", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_init_" });
  try {
    const { path, file } = await setup(dir);
    const live = ctx.liveTensors;
    const fresh = initTrainState(ctx, fixtureConfig({ width: 4, seed: 99 }));
    const headBefore = values(fresh.student.params.head);
    const oldBackbone = flattenTree(fresh.student.params.backbone as unknown as TensorTree);
    const state = await loadBackboneInit(ctx, fresh, path);
    for (const net of [state.student, state.teacher]) {
      const got = new Map([...values(net.params.backbone), ...values(net.buffers)]);
      assert.equal(
        got.size,
        Object.keys(file).filter((k) => file[k].dtype === "F32" && !k.startsWith("fc.")).length,
      );
      for (const [name, v] of got) {
        assert.deepEqual(v, [...(file[name].data as Float32Array)], name);
      }
    }
    assert.notEqual(
      state.teacher.params.backbone.conv1.weight,
      state.student.params.backbone.conv1.weight,
    );
    assert.deepEqual(values(state.student.params.head), headBefore, "the head is kept");
    assert.equal(state.queue.data, fresh.queue.data, "the queue moves to the new state");
    assert.ok(oldBackbone.every(([, t]) => t.disposed), "the replaced tensors are disposed");
    disposeTrainState(state);
    assert.equal(ctx.liveTensors, live, "loadBackboneInit leaked tensors");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadBackboneInit refuses other widths, foreign entries, a resumed state, missing files", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_init_" });
  try {
    const { path, file } = await setup(dir);
    const live = ctx.liveTensors;
    const expectError = async (state: TrainState, p: string, pattern: RegExp) => {
      await assert.rejects(() => loadBackboneInit(ctx, state, p), (e: Error) => {
        assert.match(e.message, /^Cannot load --init weights '/);
        assert.match(e.message, pattern);
        return true;
      });
      assert.ok(!state.student.params.backbone.conv1.weight.disposed, "state must stay usable");
    };
    const wide = initTrainState(ctx, fixtureConfig({ width: 8 }));
    await expectError(
      wide,
      path,
      /tensor 'conv1\.weight' has shape \[4,1,3,3\] in the file, expected \[8,1,3,3\]/,
    );
    disposeTrainState(wide);

    const state = initTrainState(ctx, fixtureConfig({ width: 4 }));
    const extra = `${dir}/extra.safetensors`;
    await writeSafetensors(extra, {
      ...file,
      "layer5.0.conv1.weight": { dtype: "F32", shape: [1], data: Float32Array.of(0) },
    });
    await expectError(state, extra, /1 entry does not belong to this run's backbone \('layer5/);
    await expectError(state, `${dir}/missing.safetensors`, /missing\.safetensors/);
    await expectError(
      { ...state, step: 3 },
      path,
      /at step 3; .*do not combine --init with --resume/,
    );
    disposeTrainState(state);
    assert.equal(ctx.liveTensors, live);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("readTorchvisionBackbone reads the exporter's file and rejects a different depth", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_init_" });
  try {
    const { path, file } = await setup(dir);
    const live = ctx.liveTensors;
    const options = backboneOptions(fixtureConfig({ width: 4 }));
    const b = await readTorchvisionBackbone(ctx, path, options);
    for (const [name, v] of [...values(b.params), ...values(b.buffers)]) {
      assert.deepEqual(v, [...(file[name].data as Float32Array)], name);
    }
    disposeBackbone(b);
    await assert.rejects(
      () => readTorchvisionBackbone(ctx, path, { ...options, depth: 34 }),
      /Cannot load '.*init\.safetensors': tensor 'layer1\.2\.conv1\.weight' is not in the file/,
    );
    assert.equal(ctx.liveTensors, live);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
