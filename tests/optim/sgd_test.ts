import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { normalArray, rngKey } from "../../src/random/philox.ts";
import {
  excludeBnAndBias,
  isBatchNormOrBiasName,
  type LarsOptions,
  larsStep,
  sgdInit,
  type SgdOptions,
  sgdStep,
} from "../../src/optim/mod.ts";
import { createContext, disposeTree, flattenTree, type Tensor } from "../../src/tensor/mod.ts";
import { runTorchScript, torchAvailable } from "./torch_ref.ts";

/** PyTorch's results, computed once: the inputs are the same host values on every backend. */
let torchResults: Promise<Record<string, number[]>[][]> | undefined;

forEachBackend("optim sgd", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);

  type Tree = { [k: string]: Tensor | Tree | Tree[] };
  const SHAPES: Record<string, number[]> = {
    "layer1.0.conv1.weight": [2, 3, 1, 2],
    "layer1.0.bn1.weight": [2],
    "layer1.0.bn1.bias": [2],
    "fc.weight": [3, 4],
    "fc.bias": [3],
  };

  /** A nested tree with torchvision-style paths, filled from `values(path, n)`. */
  function makeTree(values: (path: string, n: number) => Float32Array): Tree {
    const t = (p: string) =>
      ctx.fromArray(values(p, SHAPES[p].reduce((a, b) => a * b, 1)), SHAPES[p]);
    return {
      layer1: [{
        conv1: { weight: t("layer1.0.conv1.weight") },
        bn1: { weight: t("layer1.0.bn1.weight"), bias: t("layer1.0.bn1.bias") },
      }],
      fc: { weight: t("fc.weight"), bias: t("fc.bias") },
    } as unknown as Tree;
  }

  function seeded(seed: number) {
    return (path: string, n: number) => normalArray(rngKey(seed + path.length * 7919), n);
  }

  function host(tree: Tree): Record<string, number[]> {
    return Object.fromEntries(flattenTree(tree).map(([p, t]) => [p, Array.from(t.toFloat32())]));
  }

  function assertClose(
    actual: number[],
    expected: number[],
    what: string,
    atol = 1e-6,
    rtol = 1e-5,
  ) {
    assert.equal(actual.length, expected.length, what);
    actual.forEach((a, i) => {
      const e = expected[i];
      assert.ok(Math.abs(a - e) <= atol + rtol * Math.abs(e), `${what}[${i}]: ${a} vs ${e}`);
    });
  }

  type Kind = "sgd" | "lars";
  interface Case {
    kind: Kind;
    opts: SgdOptions & LarsOptions;
    noDecay: string[];
    noAdapt: string[];
  }

  /** Runs `steps` optimiser steps; returns the parameters after each step (host values). */
  function runTs(c: Case, grads: Tree[]): Record<string, number[]>[] {
    let params = makeTree(seeded(1));
    let state = sgdInit(params);
    const out = [];
    for (const g of grads) {
      const next = c.kind === "sgd"
        ? sgdStep(params, g, state, c.opts)
        : larsStep(params, g, state, c.opts);
      disposeTree(params);
      disposeTree(state.momentum);
      params = next.params;
      state = next.state;
      out.push(host(params));
    }
    disposeTree(params);
    disposeTree(state.momentum);
    return out;
  }

  const byName = (names: string[]) => (path: string) => names.includes(path);
  const CASES: Case[] = [
    { kind: "sgd", opts: { lr: 0.06, momentum: 0.9, weightDecay: 5e-4 }, noDecay: [], noAdapt: [] },
    {
      kind: "sgd",
      opts: {
        lr: 0.05,
        momentum: 0.9,
        weightDecay: 1e-4,
        nesterov: true,
        exclude: excludeBnAndBias,
      },
      noDecay: ["layer1.0.bn1.weight", "layer1.0.bn1.bias", "fc.bias"],
      noAdapt: [],
    },
    { kind: "sgd", opts: { lr: 0.1, momentum: 0, weightDecay: 0.01 }, noDecay: [], noAdapt: [] },
    {
      kind: "lars",
      opts: { lr: 0.3, momentum: 0.9, weightDecay: 1e-4, exclude: byName(["fc.bias"]) },
      noDecay: ["fc.bias"],
      noAdapt: ["layer1.0.bn1.weight", "layer1.0.bn1.bias", "fc.bias"],
    },
    {
      kind: "lars",
      opts: {
        lr: 0.5,
        momentum: 0.9,
        weightDecay: 1e-2,
        nesterov: true,
        clipLr: true,
        eta: 0.02,
        excludeFromAdaptation: () => false,
      },
      noDecay: [],
      noAdapt: [],
    },
  ];

  test({
    name: "sgdStep and larsStep match torch.optim.SGD and solo-learn's LARS over three steps",
    ignore: !torchAvailable(),
    async fn() {
      // Step 2 gives fc.weight a zero gradient: LARS then falls back to the plain gradient.
      const gradValues = [
        seeded(2),
        (p: string, n: number) => p === "fc.weight" ? new Float32Array(n) : seeded(3)(p, n),
        seeded(4),
      ];
      const grads = gradValues.map(makeTree);
      const input = CASES.map((c) => ({
        kind: c.kind,
        params: Object.fromEntries(
          Object.entries(SHAPES).map((
            [p, s],
          ) => [p, { shape: s, data: Array.from(seeded(1)(p, s.reduce((a, b) => a * b, 1))) }]),
        ),
        grads: grads.map(host),
        opts: {
          eta: 1e-3,
          eps: 1e-8,
          clipLr: false,
          nesterov: false,
          ...c.opts,
          noDecay: c.noDecay,
          noAdapt: c.noAdapt,
        },
      }));
      const expected = await (torchResults ??= runTorchScript<Record<string, number[]>[][]>(
        new URL("./optim_torch_ref.py", import.meta.url),
        input,
      ));
      CASES.forEach((c, i) => {
        const actual = runTs(c, grads);
        actual.forEach((step, s) => {
          for (const p of Object.keys(SHAPES)) {
            assertClose(step[p], expected[i][s][p], `case ${i} (${c.kind}) step ${s} ${p}`);
          }
        });
      });
      grads.forEach(disposeTree);
    },
  });

  /** torch.optim.SGD's algorithm in f64 (buffer created as a copy of the first d_p). */
  function torchSgd(p: number[], grads: number[][], o: SgdOptions): number[] {
    let buf: number[] | null = null;
    const x = [...p];
    for (const g of grads) {
      const d = g.map((v, i) => v + o.weightDecay * x[i]);
      let step = d;
      if (o.momentum !== 0) {
        buf = buf === null ? [...d] : buf.map((b, i) => o.momentum * b + d[i]);
        step = o.nesterov ? d.map((v, i) => v + o.momentum * buf![i]) : buf;
      }
      for (let i = 0; i < x.length; i++) x[i] -= o.lr * step[i];
    }
    return x;
  }

  test("sgdStep follows torch.optim.SGD's update rule for any hyper-parameters", () => {
    const f = (v: number) => fc.float({ min: Math.fround(-v), max: Math.fround(v), noNaN: true });
    fc.assert(
      fc.property(
        fc.array(f(2), { minLength: 1, maxLength: 6 }).chain((p) =>
          fc.tuple(
            fc.constant(p),
            fc.array(fc.array(f(2), { minLength: p.length, maxLength: p.length }), {
              minLength: 1,
              maxLength: 4,
            }),
          )
        ),
        fc.record({
          lr: fc.double({ min: 0, max: 1, noNaN: true }),
          momentum: fc.double({ min: 0.01, max: 0.99, noNaN: true }),
          weightDecay: fc.double({ min: 0, max: 0.1, noNaN: true }),
          nesterov: fc.boolean(),
        }),
        ([p0, grads], opts) => {
          let params = { w: ctx.fromArray(p0, [p0.length]) };
          let state = sgdInit(params);
          for (const g of grads) {
            const grad = { w: ctx.fromArray(g, [g.length]) };
            const next = sgdStep(params, grad, state, opts);
            disposeTree([params, state.momentum, grad]);
            params = next.params;
            state = next.state;
          }
          const got = Array.from(params.w.toFloat32());
          disposeTree([params, state.momentum]);
          const want = torchSgd(
            Array.from(Float32Array.from(p0)),
            grads.map((g) => Array.from(Float32Array.from(g))),
            opts,
          );
          assertClose(got, want, "param", 1e-5, 1e-5);
        },
      ),
      { numRuns: 100 },
    );
  });

  test("sgdStep and larsStep leave the caller's parameters, gradients and state unchanged", () => {
    const params = makeTree(seeded(5));
    const grads = makeTree(seeded(6));
    const state = sgdInit(params);
    const before = [host(params), host(grads), host(state.momentum)];
    const a = sgdStep(params, grads, state, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    const b = larsStep(params, grads, state, { lr: 0.1, momentum: 0.9, weightDecay: 0.1 });
    assert.deepEqual([host(params), host(grads), host(state.momentum)], before);
    assert.notDeepEqual(host(a.params), before[0]);
    assert.deepEqual(flattenTree(a.params).map(([p]) => p), flattenTree(params).map(([p]) => p));
    disposeTree([
      params,
      grads,
      state.momentum,
      a.params,
      a.state.momentum,
      b.params,
      b.state.momentum,
    ]);
  });

  test("the BN/bias exclusion matches torchvision names and rank-1 tensors", () => {
    for (
      const p of ["bn1.weight", "layer1.0.bn2.bias", "layer2.0.downsample.1.weight", "fc.0.bias"]
    ) {
      assert.ok(isBatchNormOrBiasName(p), p);
    }
    for (
      const p of ["conv1.weight", "layer2.0.downsample.0.weight", "fc.2.weight", "head.0.weight"]
    ) {
      assert.ok(!isBatchNormOrBiasName(p), p);
    }
    const w = ctx.zeros([4]);
    const m = ctx.zeros([2, 2]);
    assert.ok(excludeBnAndBias("head.scale", w));
    assert.ok(!excludeBnAndBias("head.weight", m));
    disposeTree([w, m]);
  });

  test("sgdStep reports mismatched trees and invalid hyper-parameters clearly", () => {
    const params = { a: ctx.zeros([2]), b: ctx.zeros([3]) };
    const state = sgdInit(params);
    const opts = { lr: 0.1, momentum: 0.9, weightDecay: 0 };
    const short = { a: ctx.zeros([2]) } as unknown as typeof params;
    const wrong = { a: ctx.zeros([2]), b: ctx.zeros([4]) };
    assert.throws(() => sgdStep(params, short, state, opts), /2 parameters but 1 gradients/);
    assert.throws(() => sgdStep(params, wrong, state, opts), /gradient of 'b' is f32 \[4\]/);
    assert.throws(
      () => sgdStep(params, params, state, { ...opts, momentum: 0, nesterov: true }),
      /Nesterov momentum needs momentum > 0/,
    );
    assert.throws(() => sgdStep(params, params, state, { ...opts, lr: -1 }), /lr is -1/);
    disposeTree([params, state.momentum, short, wrong]);
  });
});
