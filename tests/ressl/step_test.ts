import assert from "node:assert/strict";
import { backendTest, forEachBackend } from "../backends.ts";
import { foldIn, normalArray, rngKey } from "../../src/random/philox.ts";
import { initHead, initResNet } from "../../src/nn/mod.ts";
import { sgdInit } from "../../src/optim/sgd.ts";
import { initQueue } from "../../src/ressl/queue.ts";
import {
  createTrainStep,
  disposeTrainState,
  type TrainState,
  type TrainStepConfig,
} from "../../src/ressl/step.ts";
import { createContext, flattenTree, mapTree, type TensorTree } from "../../src/tensor/mod.ts";

forEachBackend("ressl step", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const B = 4, K = 8, D = 4, S = 8;

  function initialState(): TrainState {
    const root = rngKey(5);
    const net = initResNet(ctx, { depth: 18, stem: "cifar", inChannels: 1, width: 2, key: root });
    const head = initHead(ctx, { inDim: 16, hiddenDim: 8, outDim: D, key: root });
    const params = { backbone: net.params, head };
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

  const base: TrainStepConfig = {
    tauS: 0.1,
    tauT: 0.04,
    ema: { kind: "constant", momentum: 0.99 },
    bnSplits: 2,
    shuffleTeacher: true,
    lr: () => 0.1,
    optimizer: { name: "sgd", momentum: 0.9, weightDecay: 5e-4 },
  };

  function views(seed: number) {
    return {
      weak: ctx.fromArray(normalArray(rngKey(seed), B * S * S), [B, 1, S, S]),
      strong: ctx.fromArray(normalArray(rngKey(seed + 1), B * S * S), [B, 1, S, S]),
    };
  }

  function ids(state: TrainState): Set<number> {
    const trees = [state.student, state.teacher, state.optimizer.momentum, state.queue.data];
    return new Set(flattenTree(trees as never).map(([, t]) => t.id));
  }

  test("trainStep returns a fresh state, leaves the input alive and unchanged, leaks nothing", () => {
    let state = initialState();
    const step = createTrainStep(base);
    const live = ctx.liveTensors;
    for (let s = 0; s < 3; s++) {
      const v = views(10 + s);
      const before = flattenTree(state.student.params as never).map(([, t]) => t.toFloat32());
      const r = step(state, v, foldIn(rngKey(1), s));
      const after = flattenTree(state.student.params as never).map(([, t]) => t.toFloat32());
      assert.deepEqual(after, before, "the input state is unchanged");
      const shared = [...ids(r.state)].filter((id) => ids(state).has(id));
      assert.deepEqual(shared, [], "no tensor is shared with the input state");
      assert.ok(Number.isFinite(r.metrics.loss.item()) && r.metrics.loss.item() > 0);
      assert.equal(r.metrics.lr, 0.1);
      assert.equal(r.state.step, s + 1);
      assert.equal(r.state.queue.ptr, ((s + 1) * B) % K);
      disposeTrainState(state);
      r.metrics.loss.dispose();
      v.weak.dispose();
      v.strong.dispose();
      state = r.state;
      assert.equal(ctx.liveTensors, live, `live tensors after step ${s}`);
    }
    disposeTrainState(state);
  });

  test("cosine EMA runs after the optimiser step: teacher = m t + (1 - m) * new student", () => {
    const state = initialState();
    const m = 0.9;
    const step = createTrainStep({ ...base, ema: { kind: "cosine", base: m, totalSteps: 10 } });
    const v = views(3);
    const r = step(state, v, rngKey(2));
    assert.equal(r.metrics.emaMomentum, m);
    const t0 = new Map(flattenTree(state.teacher.params as never));
    const s1 = new Map(flattenTree(r.state.student.params as never));
    for (const [path, t1] of flattenTree(r.state.teacher.params as never)) {
      const a = t0.get(path)!.toFloat32(), b = s1.get(path)!.toFloat32(), got = t1.toFloat32();
      got.forEach((x, i) => assert.ok(Math.abs(x - (m * a[i] + (1 - m) * b[i])) < 1e-6, path));
    }
    // The student did move (so the check above is not the identity).
    const s0 = flattenTree(state.student.params as never)[0][1].toFloat32();
    assert.notDeepEqual(flattenTree(r.state.student.params as never)[0][1].toFloat32(), s0);
    [state, r.state].forEach(disposeTrainState);
    [v.weak, v.strong, r.metrics.loss].forEach((t) => t.dispose());
  });

  test("trainStep runs LARS, and rejects a batch that does not divide K", () => {
    const state = initialState();
    const step = createTrainStep({
      ...base,
      optimizer: { name: "lars", momentum: 0.9, weightDecay: 1e-4 },
    });
    const v = views(4);
    const r = step(state, v, rngKey(3));
    assert.ok(Number.isFinite(r.metrics.loss.item()));
    [v.weak, r.metrics.loss].forEach((t) => t.dispose());
    disposeTrainState(r.state);
    const odd = {
      weak: ctx.zeros([3, 1, S, S]),
      strong: ctx.zeros([3, 1, S, S]),
    };
    assert.throws(
      () => createTrainStep({ ...base, bnSplits: 1 })(state, odd, rngKey(0)),
      /K=8 is not a multiple of the batch size 3/,
    );
    const mixed = { weak: odd.weak, strong: v.strong };
    assert.throws(
      () => step(state, mixed, rngKey(0)),
      /weak view has 3 images but a strong view has 4/,
    );
    [odd.weak, odd.strong, v.strong].forEach((t) => t.dispose());
    disposeTrainState(state);
    assert.equal(ctx.liveTensors, 0, "a rejected step allocates nothing");
  });

  test("multi-crop: a repeated crop gives the single-crop loss and update; smaller crops run", () => {
    const step = createTrainStep(base);
    const v = views(40);
    const key = foldIn(rngKey(2), 0);
    const s1 = initialState();
    const one = step(s1, v, key);
    const s2 = initialState();
    const twice = step(s2, { ...v, extraStrong: [v.strong] }, key);
    const l1 = one.metrics.loss.item(), l2 = twice.metrics.loss.item();
    assert.ok(Math.abs(l1 - l2) <= 1e-6 * Math.abs(l1), `loss ${l2} vs single crop ${l1}`);
    const p1 = flattenTree(one.state.student.params as never);
    const p2 = new Map(flattenTree(twice.state.student.params as never));
    for (const [path, t] of p1) {
      const a = t.toFloat32(), b = p2.get(path)!.toFloat32();
      for (let i = 0; i < a.length; i++) {
        assert.ok(Math.abs(a[i] - b[i]) <= 1e-6 + 1e-5 * Math.abs(a[i]), `${path}[${i}]`);
      }
    }
    // Crops of another size (as the 5-crop recipe's 96..192 crops) go through the same network.
    const small = ctx.fromArray(normalArray(rngKey(41), B * 6 * 6), [B, 1, 6, 6]);
    const s3 = initialState();
    const multi = step(s3, { ...v, extraStrong: [small] }, key);
    const l3 = multi.metrics.loss.item();
    assert.ok(Number.isFinite(l3) && Math.abs(l3 - l1) > 1e-6, "the extra crop changes the loss");
    for (const r of [one, twice, multi]) {
      disposeTrainState(r.state);
      r.metrics.loss.dispose();
    }
    for (const s of [s1, s2, s3]) disposeTrainState(s);
    small.dispose();
    v.weak.dispose();
    v.strong.dispose();
  });
});
