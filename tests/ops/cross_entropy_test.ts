import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { crossEntropy } from "../../src/ops/cross_entropy.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { checkGradients, seededRandom, uniformValues } from "./grad_check.ts";

forEachBackend("ops cross_entropy", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);

  test("crossEntropy: gradient matches finite differences", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        (n, c, seed) => {
          const rng = seededRandom(seed ^ 0x5a5a);
          const labels = Int32Array.from({ length: n }, () => Math.floor(rng() * c));
          checkGradients(ctx, {
            inputs: [{ shape: [n, c], values: uniformValues(-3, 3) }],
            op: (x) => crossEntropy(x, labels),
            seed,
          });
        },
      ),
      { numRuns: 25 },
    );
  });

  test("crossEntropy: value equals -mean log softmax at the label (f64 host oracle)", () => {
    const logits = [[2, -1, 0.5], [0, 0, 0], [-4, 10, 3]];
    const labels = [0, 2, 1];
    let expected = 0;
    for (let i = 0; i < 3; i++) {
      const row = logits[i];
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
      expected -= (row[labels[i]] - lse) / 3;
    }
    const got = ctx.scope(() => crossEntropy(ctx.fromArray(logits.flat(), [3, 3]), labels).item());
    assert.ok(Math.abs(got - expected) < 1e-6, `crossEntropy ${got}, expected ${expected}`);
    assert.equal(ctx.liveTensors, 0);
  });

  test("crossEntropy: rejects labels out of range, wrong counts and non-matrices", () => {
    ctx.scope(() => {
      const x = ctx.zeros([2, 3]);
      assert.throws(() => crossEntropy(x, [0, 3]), /label 3 of row 1 is outside \[0, 3\)/);
      assert.throws(() => crossEntropy(x, [0, -1]), /label -1 of row 1/);
      assert.throws(() => crossEntropy(x, [0]), /1 labels for logits of shape \[2,3\]/);
      assert.throws(() => crossEntropy(ctx.zeros([6]), [0]), /expects rank 2/);
    });
    assert.equal(ctx.liveTensors, 0);
  });
});
