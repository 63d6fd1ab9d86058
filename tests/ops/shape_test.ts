import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { permuteRows } from "../../src/ops/permute.ts";
import { flatten, reshape } from "../../src/ops/shape.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { checkGradients } from "./grad_check.ts";

forEachBackend("ops shape", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 });
  const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

  test("reshape and flatten: gradients match finite differences", () => {
    fc.assert(
      fc.property(shapeArb, seedArb, (shape, seed) => {
        const size = shape.reduce((a, b) => a * b, 1);
        checkGradients(ctx, { inputs: [{ shape }], op: (x) => reshape(x, [size]), seed });
        checkGradients(ctx, { inputs: [{ shape }], op: (x) => reshape(x, [-1, shape[0]]), seed });
        checkGradients(ctx, { inputs: [{ shape }], op: flatten, seed });
      }),
      { numRuns: 15 },
    );
  });

  /** A shape and a random permutation of its rows. */
  const permArb = shapeArb.chain((shape) =>
    fc.record({
      shape: fc.constant(shape),
      perm: fc.shuffledSubarray([...Array(shape[0]).keys()], {
        minLength: shape[0],
        maxLength: shape[0],
      }),
      seed: seedArb,
    })
  );

  test("permuteRows: gradient matches finite differences", () => {
    fc.assert(
      fc.property(permArb, ({ shape, perm, seed }) => {
        checkGradients(ctx, {
          inputs: [{ shape }],
          op: (x) => permuteRows(x, Int32Array.from(perm)),
          seed,
        });
      }),
      { numRuns: 15 },
    );
  });

  test("permuteRows: y[i] = x[perm[i]], inverse restores, errors", () => {
    fc.assert(
      fc.property(permArb, ({ shape, perm }) => {
        ctx.scope(() => {
          const n = shape[0];
          const cols = shape.slice(1).reduce((a, b) => a * b, 1);
          const data = Float32Array.from({ length: n * cols }, (_, i) => i);
          const x = ctx.fromArray(data, shape);
          const p = Int32Array.from(perm);
          const y = permuteRows(x, p).toFloat32();
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < cols; j++) assert.equal(y[i * cols + j], data[p[i] * cols + j]);
          }
          const inv = new Int32Array(n);
          p.forEach((v, i) => (inv[v] = i));
          const back = permuteRows(ctx.fromArray(y, shape), inv).toFloat32();
          assert.deepEqual(back, data);
        });
      }),
      { numRuns: 15 },
    );
    ctx.scope(() => {
      const x = ctx.zeros([3, 2]);
      assert.throws(
        () => permuteRows(x, Int32Array.from([0, 1])),
        /has 2 entries but the input has 3/,
      );
      assert.throws(() => permuteRows(x, Int32Array.from([0, 1, 1])), /perm\[2\] = 1 is repeated/);
      assert.throws(
        () => permuteRows(x, Int32Array.from([0, 1, 3])),
        /perm\[2\] = 3 is outside 0..2/,
      );
    });
  });

  test("reshape: views share values; -1 inference and errors", () => {
    ctx.scope(() => {
      const x = ctx.fromArray([1, 2, 3, 4, 5, 6], [2, 3]);
      const y = reshape(x, [3, -1]);
      assert.deepEqual(y.shape, [3, 2]);
      assert.deepEqual(y.toFloat32(), x.toFloat32());
      assert.deepEqual(flatten(ctx.zeros([2, 3, 4])).shape, [2, 12]);
      assert.throws(() => reshape(x, [4, -1]), /Cannot reshape \[2,3\] \(6 elements\) to \[4,-1\]/);
      assert.throws(() => reshape(x, [-1, -1]), /at most one dimension may be -1/);
      assert.throws(() => flatten(ctx.zeros([])), /Cannot run flatten: the input is a scalar/);
    });
  });
});
