import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { mean, sum } from "../../src/ops/reduce.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { checkGradients } from "./grad_check.ts";

forEachBackend("ops reduce", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 0, maxLength: 4 });
  const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

  test("sum and mean: gradients match finite differences", () => {
    fc.assert(
      fc.property(shapeArb, seedArb, (shape, seed) => {
        checkGradients(ctx, { inputs: [{ shape }], op: sum, seed });
        checkGradients(ctx, { inputs: [{ shape }], op: mean, seed });
      }),
      { numRuns: 20 },
    );
  });

  test("sum and mean: scalar results of shape [] with the right values", () => {
    ctx.scope(() => {
      const x = ctx.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
      const s = sum(x);
      assert.deepEqual(s.shape, []);
      assert.equal(s.item(), 21);
      assert.equal(mean(x).item(), 3.5);
      assert.equal(sum(ctx.zeros([0, 3])).item(), 0);
      assert.throws(() => mean(ctx.zeros([0, 3])), /Cannot run mean: the input of shape \[0,3\]/);
    });
  });
});
