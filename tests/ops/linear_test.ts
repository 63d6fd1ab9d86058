import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { linear } from "../../src/ops/linear.ts";
import { matmul } from "../../src/ops/matmul.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { checkGradients } from "./grad_check.ts";

forEachBackend("ops linear", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const dim = fc.integer({ min: 1, max: 5 });
  const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

  test("linear with and without bias: gradients match finite differences", () => {
    fc.assert(
      fc.property(dim, dim, dim, fc.boolean(), seedArb, (n, inF, outF, withBias, seed) => {
        const inputs = [{ shape: [n, inF] }, { shape: [outF, inF] }];
        checkGradients(ctx, {
          inputs: withBias ? [...inputs, { shape: [outF] }] : inputs,
          op: (x, w, b) => linear(x, w, b),
          seed,
        });
      }),
      { numRuns: 20 },
    );
  });

  test("matmul with every transpose combination: gradients match finite differences", () => {
    fc.assert(
      fc.property(
        dim,
        dim,
        dim,
        fc.boolean(),
        fc.boolean(),
        seedArb,
        (m, n, k, transA, transB, seed) => {
          checkGradients(ctx, {
            inputs: [{ shape: transA ? [k, m] : [m, k] }, { shape: transB ? [n, k] : [k, n] }],
            op: (a, b) => matmul(a, b, { transA, transB }),
            seed,
          });
        },
      ),
      { numRuns: 20 },
    );
  });

  test("linear and matmul: forward values and shape errors", () => {
    ctx.scope(() => {
      const x = ctx.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
      const w = ctx.fromArray([1, 0, -1, 2, 1, 0], [2, 3]);
      const b = ctx.fromArray([10, 20], [2]);
      assert.deepEqual([...linear(x, w).toFloat32()], [-2, 4, -2, 13]);
      assert.deepEqual([...linear(x, w, b).toFloat32()], [8, 24, 8, 33]);
      assert.deepEqual([...matmul(x, w, { transB: true }).toFloat32()], [-2, 4, -2, 13]);
      assert.deepEqual(matmul(x, w, { transA: true }).shape, [3, 3]);
      assert.throws(
        () => linear(x, ctx.zeros([2, 4])),
        /input has 3 features but the weight \[2,4\]/,
      );
      assert.throws(() => linear(x, w, ctx.zeros([3])), /bias has 3 entries but the weight has 2/);
      assert.throws(
        () => matmul(x, w),
        /op\(a\) of a \[2,3\] has 3 columns but op\(b\) of b \[2,3\] has 2 rows/,
      );
    });
  });
});
