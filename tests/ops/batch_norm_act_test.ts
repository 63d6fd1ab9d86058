import assert from "node:assert/strict";
import fc from "fast-check";
import { add, batchNorm2d, batchNormAct, mul, relu, sum } from "../../src/ops/mod.ts";
import { createContext, type Tensor, valueAndGrad } from "../../src/tensor/mod.ts";
import { backendTest, forEachBackend } from "../backends.ts";
import { awayFromZeroValues, checkGradients, seededRandom, uniformValues } from "./grad_check.ts";

/**
 * Problems with at most 8 values per channel and split: then |xhat| <= sqrt(7), so with gamma and
 * beta in [-0.5, 0.5] the normalised value stays below 1.9 in magnitude, and a residual of
 * magnitude >= 3 keeps every ReLU input at least 1.1 away from its kink (finite differences
 * across a kink would be wrong, not the gradient).
 */
const actArb = fc.record({
  splits: fc.constantFrom(1, 2),
  c: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 2 }),
  w: fc.constant(2),
  relu: fc.boolean(),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
}).map((p) => ({ ...p, n: 2 * p.splits }));

const small = uniformValues(-0.5, 0.5);

forEachBackend("ops batchNormAct", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);

  /** Running statistics for channel count c (mean in [-1, 1], variance in [0.5, 2]). */
  function runningStats(seed: number, c: number) {
    return {
      runningMean: ctx.fromArray(uniformValues()(seededRandom(seed + 1), c), [c]),
      runningVar: ctx.fromArray(uniformValues(0.5, 2)(seededRandom(seed + 2), c), [c]),
    };
  }

  for (const training of [true, false]) {
    const mode = training ? "training (splits 1 and 2)" : "eval";
    test(`batchNormAct ${mode}: gradients in x, weight, bias, residual match finite differences`, () => {
      fc.assert(
        fc.property(actArb, (p) => {
          const state = runningStats(p.seed, p.c);
          const shape = [p.n, p.c, p.h, p.w];
          try {
            checkGradients(ctx, {
              inputs: [
                { shape },
                { shape: [p.c], values: small },
                { shape: [p.c], values: small },
                { shape, values: awayFromZeroValues(3, 4) },
              ],
              op: (x, weight, bias, residual) =>
                batchNormAct(x, { weight, bias }, state, {
                  training,
                  splits: p.splits,
                  residual,
                  relu: p.relu,
                }).y,
              seed: p.seed,
              h: 5e-3,
            });
          } finally {
            state.runningMean.dispose();
            state.runningVar.dispose();
          }
        }),
        { numRuns: 12 },
      );
    });
  }

  test("batchNormAct equals relu(batchNorm2d(x) + residual): values, running stats, gradients", () => {
    const arb = fc.record({
      splits: fc.constantFrom(1, 2),
      n: fc.constantFrom(2, 4),
      c: fc.integer({ min: 1, max: 5 }),
      hw: fc.integer({ min: 1, max: 4 }),
      relu: fc.boolean(),
      withResidual: fc.boolean(),
      training: fc.boolean(),
      seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    }).filter((p) => !p.training || (p.n / p.splits) * p.hw > 1);
    fc.assert(
      fc.property(arb, (p) => {
        const rng = seededRandom(p.seed);
        const shape = [p.n, p.c, p.hw, 1];
        const size = p.n * p.c * p.hw;
        const [xs, rs, dys] = [0, 1, 2].map(() => uniformValues(-2, 2)(rng, size));
        const [ws, bs] = [0, 1].map(() => uniformValues()(rng, p.c));
        ctx.scope(() => {
          const state = runningStats(p.seed, p.c);
          const dy = ctx.fromArray(dys, shape);
          const opts = { training: p.training, splits: p.splits, momentum: 0.3 };
          const run = (fused: boolean) => {
            const f = (q: { x: Tensor; weight: Tensor; bias: Tensor; residual: Tensor }) => {
              const residual = p.withResidual ? q.residual : null;
              const params = { weight: q.weight, bias: q.bias };
              let r;
              if (fused) {
                r = batchNormAct(q.x, params, state, { ...opts, residual, relu: p.relu });
              } else {
                r = batchNorm2d(q.x, params, state, opts);
                let y = residual ? add(r.y, residual) : r.y;
                if (p.relu) y = relu(y);
                r = { ...r, y };
              }
              return { value: sum(mul(r.y, dy)), aux: [r.y, r.runningMean, r.runningVar] };
            };
            const out = valueAndGrad(f)({
              x: ctx.fromArray(xs, shape),
              weight: ctx.fromArray(ws, [p.c]),
              bias: ctx.fromArray(bs, [p.c]),
              residual: ctx.fromArray(rs, shape),
            });
            const g = out.grads;
            return [...out.aux, g.x, g.weight, g.bias, g.residual].map((t) => t.toFloat32());
          };
          const fused = run(true), plain = run(false);
          const names = ["y", "runningMean", "runningVar", "dx", "dweight", "dbias", "dresidual"];
          names.forEach((name, k) => {
            let scale = 1;
            for (const v of plain[k]) scale = Math.max(scale, Math.abs(v));
            fused[k].forEach((v, i) => {
              const want = plain[k][i];
              assert.ok(Math.abs(v - want) <= 1e-5 * scale, `${name}[${i}]: ${v} vs ${want}`);
            });
          });
        });
      }),
      { numRuns: 25 },
    );
  });

  test("batchNormAct: the residual must match the input; no tensor outlives a scope", () => {
    ctx.scope(() => {
      const x = ctx.zeros([2, 2, 2, 2]);
      const v = ctx.zeros([2]);
      const state = { runningMean: v, runningVar: ctx.full([2], 1) };
      const params = { weight: ctx.full([2], 1), bias: v };
      assert.throws(
        () => batchNormAct(x, params, state, { training: true, residual: ctx.zeros([2, 2, 2, 1]) }),
        /Cannot run batchNormAct: shapes \[2,2,2,2\] and \[2,2,2,1\] differ/,
      );
      assert.throws(
        () => batchNormAct(x, params, state, { training: true, residual: ctx.zeros([16]) }),
        /Cannot run batchNormAct: residual has shape \[16\] \(rank 1\)/,
      );
    });
    const live = ctx.liveTensors;
    ctx.scope(() => {
      const x = ctx.fromArray(uniformValues()(seededRandom(3), 16), [2, 2, 2, 2]);
      const state = { runningMean: ctx.zeros([2]), runningVar: ctx.full([2], 1) };
      const params = { weight: ctx.full([2], 1), bias: ctx.zeros([2]) };
      const r = batchNormAct(x, params, state, {
        training: true,
        splits: 2,
        residual: ctx.full([2, 2, 2, 2], 0.5),
        relu: true,
      });
      assert.ok(r.y.toFloat32().every((v) => v >= 0));
    });
    assert.equal(ctx.liveTensors, live);
  });
});
