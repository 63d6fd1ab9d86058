import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { batchNorm2d } from "../../src/ops/batch_norm.ts";
import { createContext, type Tensor } from "../../src/tensor/tensor.ts";
import { checkGradients, seededRandom, uniformValues } from "./grad_check.ts";

forEachBackend("ops batch_norm", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

  /** A BN problem with at least 4 values per channel and split. */
  const bnArb = fc.record({
    splits: fc.constantFrom(1, 2),
    perSplit: fc.integer({ min: 1, max: 2 }),
    c: fc.integer({ min: 1, max: 3 }),
    h: fc.integer({ min: 2, max: 3 }),
    w: fc.integer({ min: 2, max: 3 }),
    seed: seedArb,
  }).map((p) => ({ ...p, n: p.splits * p.perSplit }));

  /** PyTorch's batch statistics per (split, channel): mean and biased variance, in f64. */
  function hostStats(x: Float32Array, shape: number[], splits: number) {
    const [n, c, h, w] = shape;
    const hw = h * w;
    const mean = new Float64Array(splits * c);
    const variance = new Float64Array(splits * c);
    const count = (n / splits) * hw;
    for (let j = 0; j < splits; j++) {
      for (let ch = 0; ch < c; ch++) {
        let s = 0;
        for (let i = j; i < n; i += splits) {
          for (let p = 0; p < hw; p++) s += x[(i * c + ch) * hw + p];
        }
        const m = s / count;
        let v = 0;
        for (let i = j; i < n; i += splits) {
          for (let p = 0; p < hw; p++) v += (x[(i * c + ch) * hw + p] - m) ** 2;
        }
        mean[j * c + ch] = m;
        variance[j * c + ch] = v / count;
      }
    }
    return { mean, variance, count };
  }

  function assertClose(got: Float32Array, want: ArrayLike<number>, tol: number, what: string) {
    assert.equal(got.length, want.length, `${what}: length`);
    for (let i = 0; i < got.length; i++) {
      const err = Math.abs(got[i] - want[i]);
      assert.ok(
        err <= tol * (1 + Math.abs(want[i])),
        `${what}[${i}]: got ${got[i]}, want ${want[i]}`,
      );
    }
  }

  function positive(seed: number, c: number): Float32Array {
    return uniformValues(0.5, 2)(seededRandom(seed), c);
  }

  test("batchNorm2d training (splits 1 and 2): gradients match finite differences", () => {
    fc.assert(
      fc.property(bnArb, (p) => {
        const rm = ctx.fromArray(uniformValues()(seededRandom(p.seed + 1), p.c), [p.c]);
        const rv = ctx.fromArray(positive(p.seed + 2, p.c), [p.c]);
        try {
          checkGradients(ctx, {
            inputs: [{ shape: [p.n, p.c, p.h, p.w] }, { shape: [p.c] }, { shape: [p.c] }],
            op: (x, weight, bias) =>
              batchNorm2d(x, { weight, bias }, { runningMean: rm, runningVar: rv }, {
                training: true,
                splits: p.splits,
              }).y,
            seed: p.seed,
            h: 5e-3,
          });
        } finally {
          rm.dispose();
          rv.dispose();
        }
      }),
      { numRuns: 20 },
    );
  });

  test("batchNorm2d eval: gradients match finite differences", () => {
    fc.assert(
      fc.property(bnArb, (p) => {
        const rm = ctx.fromArray(uniformValues()(seededRandom(p.seed + 1), p.c), [p.c]);
        const rv = ctx.fromArray(positive(p.seed + 2, p.c), [p.c]);
        try {
          checkGradients(ctx, {
            inputs: [{ shape: [p.n, p.c, p.h, p.w] }, { shape: [p.c] }, { shape: [p.c] }],
            op: (x, weight, bias) =>
              batchNorm2d(x, { weight, bias }, { runningMean: rm, runningVar: rv }, {
                training: false,
                splits: p.splits,
              }).y,
            seed: p.seed,
          });
        } finally {
          rm.dispose();
          rv.dispose();
        }
      }),
      { numRuns: 10 },
    );
  });

  test("batchNorm2d training: output and running stats follow PyTorch (SplitBatchNorm)", () => {
    fc.assert(
      fc.property(
        bnArb,
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.constantFrom(1e-5, 1e-3),
        (p, momentum, eps) => {
          const rng = seededRandom(p.seed);
          const shape = [p.n, p.c, p.h, p.w];
          const xs = uniformValues(-2, 3)(rng, p.n * p.c * p.h * p.w);
          const [ws, bs, rms] = [1, 2, 3].map(() => uniformValues()(rng, p.c));
          const rvs = positive(p.seed + 5, p.c);
          ctx.scope(() => {
            const out = batchNorm2d(
              ctx.fromArray(xs, shape),
              { weight: ctx.fromArray(ws, [p.c]), bias: ctx.fromArray(bs, [p.c]) },
              { runningMean: ctx.fromArray(rms, [p.c]), runningVar: ctx.fromArray(rvs, [p.c]) },
              { training: true, momentum, eps, splits: p.splits },
            );
            const { mean, variance, count } = hostStats(xs, shape, p.splits);
            const s = p.splits;
            const hw = p.h * p.w;
            const y = new Float64Array(xs.length);
            for (let i = 0; i < xs.length; i++) {
              const img = Math.floor(i / (p.c * hw));
              const ch = Math.floor(i / hw) % p.c;
              const k = (img % s) * p.c + ch;
              y[i] = ws[ch] * (xs[i] - mean[k]) / Math.sqrt(variance[k] + eps) + bs[ch];
            }
            const wantMean = Array.from({ length: p.c }, (_, ch) => {
              let acc = 0;
              for (let j = 0; j < s; j++) {
                acc += (1 - momentum) * rms[ch] + momentum * mean[j * p.c + ch];
              }
              return acc / s;
            });
            const wantVar = Array.from({ length: p.c }, (_, ch) => {
              let acc = 0;
              for (let j = 0; j < s; j++) {
                const unbiased = variance[j * p.c + ch] * count / (count - 1);
                acc += (1 - momentum) * rvs[ch] + momentum * unbiased;
              }
              return acc / s;
            });
            assertClose(out.y.toFloat32(), y, 1e-4, "y");
            assertClose(out.runningMean.toFloat32(), wantMean, 1e-5, "runningMean");
            assertClose(out.runningVar.toFloat32(), wantVar, 1e-5, "runningVar");
          });
        },
      ),
      { numRuns: 20 },
    );
  });

  test("batchNorm2d eval: running statistics normalise, and are returned unchanged", () => {
    fc.assert(
      fc.property(bnArb, (p) => {
        const rng = seededRandom(p.seed);
        const shape = [p.n, p.c, p.h, p.w];
        const xs = uniformValues(-2, 2)(rng, p.n * p.c * p.h * p.w);
        const [ws, bs, rms] = [1, 2, 3].map(() => uniformValues()(rng, p.c));
        const rvs = positive(p.seed + 5, p.c);
        ctx.scope(() => {
          const out = batchNorm2d(
            ctx.fromArray(xs, shape),
            { weight: ctx.fromArray(ws, [p.c]), bias: ctx.fromArray(bs, [p.c]) },
            { runningMean: ctx.fromArray(rms, [p.c]), runningVar: ctx.fromArray(rvs, [p.c]) },
            { training: false, splits: p.splits },
          );
          const hw = p.h * p.w;
          const y = Array.from(xs, (v, i) => {
            const ch = Math.floor(i / hw) % p.c;
            return ws[ch] * (v - rms[ch]) / Math.sqrt(rvs[ch] + 1e-5) + bs[ch];
          });
          assertClose(out.y.toFloat32(), y, 1e-5, "y");
          assert.deepEqual(out.runningMean.toFloat32(), rms);
          assert.deepEqual(out.runningVar.toFloat32(), rvs);
        });
      }),
      { numRuns: 10 },
    );
  });

  test("batchNorm2d: no tensor outlives its results outside a scope", () => {
    const before = [ctx.liveTensors, ctx.backend.liveAllocations()];
    const inputs: Tensor[] = [
      ctx.fromArray(uniformValues()(seededRandom(3), 4 * 2 * 2 * 2), [4, 2, 2, 2]),
      ctx.full([2], 1),
      ctx.zeros([2]),
      ctx.zeros([2]),
      ctx.full([2], 1),
    ];
    const [x, weight, bias, runningMean, runningVar] = inputs;
    for (const training of [true, false]) {
      for (const splits of [1, 2]) {
        const r = batchNorm2d(x, { weight, bias }, { runningMean, runningVar }, {
          training,
          splits,
        });
        r.y.dispose();
        r.runningMean.dispose();
        r.runningVar.dispose();
      }
    }
    for (const t of inputs) t.dispose();
    assert.deepEqual([ctx.liveTensors, ctx.backend.liveAllocations()], before);
  });

  test("batchNorm2d: argument errors", () => {
    ctx.scope(() => {
      const x = ctx.zeros([3, 2, 2, 2]);
      const v2 = ctx.zeros([2]);
      const state = { runningMean: v2, runningVar: v2 };
      assert.throws(
        () => batchNorm2d(x, { weight: ctx.zeros([3]), bias: v2 }, state, { training: true }),
        /Cannot run batchNorm2d: input \[3,2,2,2\] has 2 channels but weight has 3 entries/,
      );
      assert.throws(
        () => batchNorm2d(x, { weight: v2, bias: v2 }, state, { training: true, splits: 2 }),
        /batch of 3 images does not divide into 2 splits/,
      );
      assert.throws(
        () =>
          batchNorm2d(ctx.zeros([2, 2, 1, 1]), { weight: v2, bias: v2 }, state, {
            training: true,
            splits: 2,
          }),
        /each channel of each split has 1 value\(s\), expected more than 1/,
      );
      assert.throws(
        () => batchNorm2d(x, { weight: v2, bias: v2 }, state, { training: true, momentum: 2 }),
        /momentum is 2/,
      );
    });
  });
});
