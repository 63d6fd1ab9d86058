/**
 * Issue 14, case 6, end to end: a NaN in one weight of the student, or in one pixel of the input
 * views, makes the loss of that very training step NaN on every backend (the cpu backend used to
 * train on with a finite loss: oneDNN's ReLU and max pooling dropped the NaN). ResNet-18 at width
 * 16 (channels in oneDNN's blocked layouts, as in real training), plain BatchNorm, 8x8 inputs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { backendTest, forEachBackend } from "../backends.ts";
import { foldIn, normalArray, rngKey } from "../../src/random/philox.ts";
import { initHead, initResNet } from "../../src/nn/mod.ts";
import { sgdInit } from "../../src/optim/sgd.ts";
import { initQueue } from "../../src/ressl/queue.ts";
import { createTrainStep, disposeTrainState, type TrainState } from "../../src/ressl/step.ts";
import {
  type Context,
  createContext,
  flattenTree,
  mapTree,
  type Tensor,
  type TensorTree,
} from "../../src/tensor/mod.ts";

const B = 4, K = 16, D = 8, S = 8, WIDTH = 16;

function initialState(ctx: Context, poison: string | null): TrainState {
  const root = rngKey(11);
  const net = initResNet(ctx, { depth: 18, stem: "cifar", inChannels: 1, width: WIDTH, key: root });
  const head = initHead(ctx, { inDim: 8 * WIDTH, hiddenDim: 32, outDim: D, key: root });
  let params = { backbone: net.params, head };
  if (poison !== null) {
    // One NaN in the named weight (a fresh tensor in its place).
    params = mapTree(params, (t, path) => {
      if (path !== poison) return t;
      const v = t.toFloat32();
      v[v.length >> 1] = NaN;
      const out = ctx.fromArray(v, t.shape);
      t.dispose();
      return out;
    }) as typeof params;
  }
  const copy = <T extends TensorTree>(t: T) =>
    mapTree(t, (x) => ctx.fromArray(x.toFloat32(), x.shape));
  return {
    student: { params, buffers: net.buffers },
    teacher: { params: copy(params), buffers: copy(net.buffers) },
    queue: initQueue(ctx, { size: K, dim: D, key: foldIn(root, 1) }),
    optimizer: sgdInit(params),
    step: 0,
  };
}

function views(ctx: Context, nanPixel: boolean): { weak: Tensor; strong: Tensor } {
  const weak = normalArray(rngKey(21), B * S * S);
  const strong = normalArray(rngKey(22), B * S * S);
  if (nanPixel) {
    weak[5] = NaN;
    strong[3 * S * S + 17] = NaN;
  }
  return { weak: ctx.fromArray(weak, [B, 1, S, S]), strong: ctx.fromArray(strong, [B, 1, S, S]) };
}

/** The loss of one training step from the given state and views (everything disposed after). */
function stepLoss(ctx: Context, poison: string | null, nanPixel: boolean): number {
  const step = createTrainStep({
    tauS: 0.1,
    tauT: 0.04,
    ema: { kind: "constant", momentum: 0.99 },
    bnSplits: 1,
    shuffleTeacher: false,
    lr: () => 0.05,
    optimizer: { name: "sgd", momentum: 0.9, weightDecay: 5e-4 },
  });
  const state = initialState(ctx, poison);
  const v = views(ctx, nanPixel);
  const r = step(state, v, rngKey(3));
  const loss = r.metrics.loss.item();
  r.metrics.loss.dispose();
  disposeTrainState(state);
  disposeTrainState(r.state);
  v.weak.dispose();
  v.strong.dispose();
  return loss;
}

forEachBackend("nan training", (b) => {
  const test = backendTest(b);

  test("nan training: a NaN in one weight or one input pixel makes that step's loss NaN", () => {
    const ctx = createContext(b.create());
    try {
      const names = flattenTree(initialState(ctx, null).student.params as never).map(([p]) => p);
      assert.ok(names.includes("backbone.layer1.0.conv1.weight"), names.join(", "));
      // The clean step is finite: the NaN below comes from the poison, not the setup.
      assert.ok(Number.isFinite(stepLoss(ctx, null, false)));
      for (const poison of ["backbone.layer1.0.conv1.weight", "backbone.layer3.1.bn2.weight"]) {
        const loss = stepLoss(ctx, poison, false);
        assert.ok(Number.isNaN(loss), `NaN in ${poison}: loss ${loss}`);
      }
      const loss = stepLoss(ctx, null, true);
      assert.ok(Number.isNaN(loss), `NaN in the input views: loss ${loss}`);
    } finally {
      ctx.backend.dispose();
    }
  });
});
