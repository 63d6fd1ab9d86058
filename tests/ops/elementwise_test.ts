import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { relu } from "../../src/ops/activation.ts";
import { add, mul, scale, sub } from "../../src/ops/elementwise.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { awayFromZeroValues, checkGradients } from "./grad_check.ts";

forEachBackend("ops elementwise", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const shapeArb = fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 });
  const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

  test("add, sub, mul: gradients match finite differences", () => {
    fc.assert(
      fc.property(shapeArb, seedArb, (shape, seed) => {
        for (const op of [add, sub, mul]) {
          checkGradients(ctx, { inputs: [{ shape }, { shape }], op, seed });
        }
      }),
      { numRuns: 15 },
    );
  });

  test("add, sub, mul: gradient when one input is used twice", () => {
    fc.assert(
      fc.property(shapeArb, seedArb, (shape, seed) => {
        checkGradients(ctx, { inputs: [{ shape }], op: (a) => mul(a, a), seed });
        checkGradients(ctx, { inputs: [{ shape }], op: (a) => sub(add(a, a), a), seed });
      }),
      { numRuns: 10 },
    );
  });

  test("scale: gradient matches finite differences", () => {
    fc.assert(
      fc.property(
        shapeArb,
        seedArb,
        fc.double({ min: -3, max: 3, noNaN: true }),
        (shape, seed, a) => {
          checkGradients(ctx, { inputs: [{ shape }], op: (x) => scale(x, a), seed });
        },
      ),
      { numRuns: 15 },
    );
  });

  test("relu: gradient matches finite differences away from 0", () => {
    fc.assert(
      fc.property(shapeArb, seedArb, (shape, seed) => {
        checkGradients(ctx, {
          inputs: [{ shape, values: awayFromZeroValues(0.05, 1) }],
          op: relu,
          seed,
        });
      }),
      { numRuns: 15 },
    );
  });

  test("elementwise forward values and shape errors", () => {
    ctx.scope(() => {
      const a = ctx.fromArray([1, -2, 3], [3]);
      const b = ctx.fromArray([4, 5, -6], [3]);
      assert.deepEqual([...add(a, b).toFloat32()], [5, 3, -3]);
      assert.deepEqual([...sub(a, b).toFloat32()], [-3, -7, 9]);
      assert.deepEqual([...mul(a, b).toFloat32()], [4, -10, -18]);
      assert.deepEqual([...scale(a, -2).toFloat32()], [-2, 4, -6]);
      assert.deepEqual([...relu(a).toFloat32()], [1, 0, 3]);
      const c = ctx.fromArray([1, 2], [2]);
      assert.throws(() => add(a, c), /Cannot run add: shapes \[3\] and \[2\] differ/);
      const u = ctx.fromArray(new Uint8Array([1, 2, 3]), [3]);
      assert.throws(() => mul(a, u), /Cannot run mul: b has dtype u8/);
      assert.throws(() => scale(a, NaN), /alpha is NaN/);
    });
  });
});
