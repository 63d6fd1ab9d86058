import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { globalAvgPool, maxPool2d } from "../../src/ops/pool.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { checkGradients, distinctValues } from "./grad_check.ts";

forEachBackend("ops pool", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

  /** A pooling problem: kernel 1-3 (and 7), stride 1-3, padding up to half the kernel. */
  const poolArb = fc.record({
    n: fc.integer({ min: 1, max: 2 }),
    c: fc.integer({ min: 1, max: 2 }),
    kernel: fc.constantFrom(1, 2, 3, 7),
    stride: fc.integer({ min: 1, max: 3 }),
    pad: fc.integer({ min: 0, max: 3 }),
    extraH: fc.integer({ min: 0, max: 4 }),
    extraW: fc.integer({ min: 0, max: 4 }),
    seed: seedArb,
  }).map((p) => {
    const padding = Math.min(p.pad, Math.floor(p.kernel / 2));
    const fit = Math.max(1, p.kernel - 2 * padding);
    return { ...p, padding, h: fit + p.extraH, w: fit + p.extraW };
  });

  test("maxPool2d: gradient matches finite differences (distinct inputs)", () => {
    fc.assert(
      fc.property(poolArb, (p) => {
        checkGradients(ctx, {
          // Values 0.05 apart: each window has one maximum that perturbations of 1e-2 keep.
          inputs: [{ shape: [p.n, p.c, p.h, p.w], values: distinctValues(0.05) }],
          op: (x) => maxPool2d(x, { kernel: p.kernel, stride: p.stride, padding: p.padding }),
          seed: p.seed,
        });
      }),
      { numRuns: 20 },
    );
  });

  test("globalAvgPool: gradient matches finite differences", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 4, maxLength: 4 }),
        seedArb,
        (shape, seed) => {
          checkGradients(ctx, { inputs: [{ shape }], op: globalAvgPool, seed });
        },
      ),
      { numRuns: 15 },
    );
  });

  test("maxPool2d and globalAvgPool: forward values and errors", () => {
    ctx.scope(() => {
      const x = ctx.fromArray([1, 5, 2, 0, -1, 3, 4, 8, 7], [1, 1, 3, 3]);
      const y = maxPool2d(x);
      assert.deepEqual(y.shape, [1, 1, 2, 2]);
      assert.deepEqual([...y.toFloat32()], [5, 5, 8, 8]);
      assert.deepEqual([...globalAvgPool(x).toFloat32()], [29 / 9].map(Math.fround));
      assert.throws(() => maxPool2d(x, { kernel: 3, padding: 2 }), /padding 2 is more than half/);
      assert.throws(
        () => maxPool2d(x, { kernel: 7, padding: 1 }),
        /7x7 window does not fit the 3x3/,
      );
      assert.throws(() => globalAvgPool(ctx.zeros([2, 3])), /rank 2/);
    });
  });
});
