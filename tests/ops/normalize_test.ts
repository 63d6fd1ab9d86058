import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { l2Normalize } from "../../src/ops/normalize.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { awayFromZeroValues, checkGradients } from "./grad_check.ts";

forEachBackend("ops normalize", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const dim = fc.integer({ min: 1, max: 6 });
  const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

  test("l2Normalize: gradient matches finite differences", () => {
    fc.assert(
      fc.property(dim, dim, seedArb, (rows, cols, seed) => {
        checkGradients(ctx, {
          // Entries of magnitude >= 0.2 keep every row norm well above 0 (a smooth region).
          inputs: [{ shape: [rows, cols], values: awayFromZeroValues(0.2, 1) }],
          op: (x) => l2Normalize(x),
          seed,
        });
      }),
      { numRuns: 20 },
    );
  });

  test("l2Normalize: gradient below eps (the norm is clamped: y = x / eps)", () => {
    fc.assert(
      fc.property(dim, dim, seedArb, (rows, cols, seed) => {
        checkGradients(ctx, {
          inputs: [{ shape: [rows, cols], values: awayFromZeroValues(0.02, 0.05) }],
          op: (x) => l2Normalize(x, { eps: 1 }),
          seed,
        });
      }),
      { numRuns: 10 },
    );
  });

  test("l2Normalize: unit rows, as torch F.normalize; zero rows stay zero", () => {
    ctx.scope(() => {
      const x = ctx.fromArray([3, 4, 0, 0, -1e-3, 0], [3, 2]);
      const y = l2Normalize(x).toFloat32();
      assert.deepEqual([...y], [0.6, 0.8, 0, 0, -1, 0].map(Math.fround));
      assert.throws(() => l2Normalize(x, { eps: 0 }), /eps is 0 but must be a finite number > 0/);
      assert.throws(() => l2Normalize(ctx.zeros([2])), /rank 1/);
    });
  });
});
