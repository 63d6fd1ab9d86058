/**
 * Three complete ReSSL train steps on the reference backend versus the official small-dataset
 * step in PyTorch (float64): tiny ResNet-18 (width 4, CIFAR stem), 16x16 inputs, batch 8, K 32,
 * SplitBatchNorm (2 splits) with the teacher batch shuffle, constant EMA at the start of the step,
 * SGD with momentum and weight decay under a cosine lr. Same initial weights, queue, views and
 * shuffles (exchanged through safetensors files); the losses, the student (parameters, BN buffers
 * and its update), the teacher and the queue must agree within relative error 1e-4.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { foldIn, normalArray, rngKey } from "../../src/random/philox.ts";
import {
  readSafetensors,
  type SafetensorsMap,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { treeToSafetensors } from "../../src/io/tree_io.ts";
import { initHead, initResNet } from "../../src/nn/mod.ts";
import { sgdInit } from "../../src/optim/sgd.ts";
import { initQueue } from "../../src/ressl/queue.ts";
import {
  createTrainStep,
  disposeTrainState,
  teacherShuffle,
  type TrainState,
} from "../../src/ressl/step.ts";
import { createContext, flattenTree, mapTree } from "../../src/tensor/mod.ts";

const PY = "/usr/bin/python3";
const SCRIPT = new URL("./step_parity.py", import.meta.url).pathname;
const RTOL = 1e-4;
const C = {
  width: 4,
  inChannels: 3,
  hidden: 16,
  dim: 8,
  bnSplits: 2,
  batch: 8,
  size: 16,
  queue: 32,
  steps: 3,
  momentum: 0.9,
  weightDecay: 5e-4,
  ema: 0.9,
  tauS: 0.1,
  tauT: 0.04,
};
/** Batch used by each step: two fixed batches of views, A B A. */
const BATCH_OF_STEP = [0, 1, 0];

const haveTorch = await new Deno.Command(PY, { args: ["-c", "import torch, torchvision"] })
  .output()
  .then((r) => r.code === 0, () => false);

/** ||a - b|| / ||b|| (over the whole tensor) and max |a - b| / (|b| + 0.01 max|b|). */
function relErrors(a: ArrayLike<number>, b: ArrayLike<number>): [number, number] {
  let num = 0, den = 0, maxAbs = 0, worst = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(b[i]));
  }
  for (let i = 0; i < b.length; i++) {
    worst = Math.max(worst, Math.abs(a[i] - b[i]) / (Math.abs(b[i]) + 1e-2 * maxAbs + 1e-30));
  }
  return [Math.sqrt(num / (den + 1e-300)), worst];
}

function stateMap(state: TrainState): SafetensorsMap {
  return {
    ...treeToSafetensors(state.student.params, { prefix: "student." }),
    ...treeToSafetensors(state.student.buffers, { prefix: "student.buffers." }),
    ...treeToSafetensors(state.teacher.params, { prefix: "teacher." }),
    ...treeToSafetensors(state.teacher.buffers, { prefix: "teacher.buffers." }),
    queue: { dtype: "F32", shape: [C.queue, C.dim], data: state.queue.data.toFloat32() },
  };
}

Deno.test({
  name: haveTorch
    ? "parity: three ReSSL train steps match the official PyTorch step (rel 1e-4)"
    : "parity: ReSSL train steps vs PyTorch (skipped: /usr/bin/python3 cannot import torch/torchvision)",
  ignore: !haveTorch,
  fn: async () => {
    const ctx = createContext(createReferenceBackend());
    const dir = await Deno.makeTempDir({ prefix: "step_parity_" });
    try {
      const root = rngKey(31);
      const backbone = initResNet(ctx, {
        depth: 18,
        stem: "cifar",
        inChannels: C.inChannels,
        width: C.width,
        key: root,
      });
      const head = initHead(ctx, {
        inDim: 8 * C.width,
        hiddenDim: C.hidden,
        outDim: C.dim,
        key: root,
      });
      const params = { backbone: backbone.params, head };
      const copy = <T extends Parameters<typeof mapTree>[0]>(t: T) =>
        mapTree(t, (x) => ctx.fromArray(x.toFloat32(), x.shape));
      let state: TrainState = {
        student: { params, buffers: backbone.buffers },
        teacher: { params: copy(params), buffers: copy(backbone.buffers) },
        queue: initQueue(ctx, {
          size: C.queue,
          dim: C.dim,
          key: foldIn(root, 7),
          batchSize: C.batch,
        }),
        optimizer: sgdInit(params),
        step: 0,
      };
      const initial = stateMap(state);
      const imageShape = [C.batch, C.inChannels, C.size, C.size];
      const n = C.batch * C.inChannels * C.size * C.size;
      const views = [0, 1].map((b) => ({
        weak: normalArray(foldIn(root, 100 + b), n),
        strong: normalArray(foldIn(root, 200 + b), n),
      }));
      const lrSchedule = { baseLr: 0.3, stepsPerEpoch: 1, totalSteps: C.steps };
      const step = createTrainStep({
        tauS: C.tauS,
        tauT: C.tauT,
        ema: { kind: "constant", momentum: C.ema },
        bnSplits: C.bnSplits,
        shuffleTeacher: true,
        lr: lrSchedule,
        optimizer: { name: "sgd", momentum: C.momentum, weightDecay: C.weightDecay },
      });
      const inputs: SafetensorsMap = { ...initial };
      views.forEach((v, b) => {
        inputs[`weak.${b}`] = { dtype: "F32", shape: imageShape, data: v.weak };
        inputs[`strong.${b}`] = { dtype: "F32", shape: imageShape, data: v.strong };
      });
      const losses: number[] = [];
      const lrs: number[] = [];
      for (let s = 0; s < C.steps; s++) {
        const key = foldIn(root, 1000 + s);
        const v = views[BATCH_OF_STEP[s]];
        inputs[`batch.${s}`] = { dtype: "I32", shape: [], data: Int32Array.of(BATCH_OF_STEP[s]) };
        inputs[`perm.${s}`] = {
          dtype: "I32",
          shape: [C.batch],
          data: teacherShuffle(key, C.batch),
        };
        const weak = ctx.fromArray(v.weak, imageShape);
        const strong = ctx.fromArray(v.strong, imageShape);
        const r = step(state, { weak, strong }, key);
        weak.dispose();
        strong.dispose();
        disposeTrainState(state);
        state = r.state;
        losses.push(r.metrics.loss.item());
        lrs.push(r.metrics.lr);
        r.metrics.loss.dispose();
        inputs[`lr.${s}`] = { dtype: "F32", shape: [], data: Float32Array.of(r.metrics.lr) };
      }
      assert.equal(state.step, C.steps);
      assert.equal(state.queue.ptr, (C.steps * C.batch) % C.queue);
      // No warm-up in 3 steps (2.5 % rule), cosine: 0.3, 0.3 (1 + cos(pi/3)) / 2, 0.3 (1 + cos(2pi/3)) / 2.
      [0.3, 0.225, 0.075].forEach((want, i) =>
        assert.ok(Math.abs(lrs[i] - want) < 1e-12, `lr ${i}`)
      );

      const inPath = join(dir, "in.safetensors");
      const outPath = join(dir, "out.safetensors");
      await writeSafetensors(inPath, inputs);
      const res = await new Deno.Command(PY, {
        args: [SCRIPT, inPath, outPath, JSON.stringify(C)],
      }).output();
      assert.equal(res.code, 0, `PyTorch side failed:\n${new TextDecoder().decode(res.stderr)}`);
      const torch = (await readSafetensors(outPath)).tensors;
      const ours = stateMap(state);

      const bad: string[] = [];
      let worst = { name: "", err: 0 };
      /** Values must agree norm-wise and elementwise; updates (deltas) norm-wise. */
      const check = (
        name: string,
        a: ArrayLike<number>,
        b: ArrayLike<number>,
        elementwise = true,
      ) => {
        assert.equal(a.length, b.length, `${name}: ${a.length} vs ${b.length} values`);
        const [norm, elem] = relErrors(a, b);
        const err = elementwise ? Math.max(norm, elem) : norm;
        if (err > worst.err) worst = { name, err };
        if (!(err <= RTOL)) {
          bad.push(`${name}: rel ${norm.toExponential(2)}, elem ${elem.toExponential(2)}`);
        }
      };
      const tl = torch["loss"].data as Float32Array;
      losses.forEach((l, s) => check(`loss.${s}`, [l], [tl[s]]));
      for (const [name, e] of Object.entries(ours)) {
        const t = torch[name];
        assert.ok(t, `PyTorch output lacks '${name}'`);
        check(name, e.data as Float32Array, t.data as Float32Array);
        // The update itself (not only the values) must agree for the learnable tensors.
        const before = initial[name].data as Float32Array;
        if (name !== "queue" && !name.includes("buffers.") && name.startsWith("student.")) {
          const d = (x: Float32Array) => x.map((v, i) => v - before[i]);
          check(`delta.${name}`, d(e.data as Float32Array), d(t.data as Float32Array), false);
        }
      }
      assert.equal(Object.keys(ours).length + 1, Object.keys(torch).length);
      const nParams = flattenTree(state.student.params).length;
      assert.equal(nParams, 60 + 4);
      console.log(
        `losses ${losses.map((l) => l.toFixed(6))}; worst ${
          worst.err.toExponential(2)
        } (${worst.name})`,
      );
      assert.deepEqual(bad, [], `tensors beyond rtol ${RTOL}`);
      disposeTrainState(state);
      assert.equal(ctx.liveTensors, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
