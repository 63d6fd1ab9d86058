import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { logSoftmax, softmax } from "../../src/ops/softmax.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { checkGradients, uniformValues } from "./grad_check.ts";

forEachBackend("ops softmax", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);
  const dim = fc.integer({ min: 1, max: 6 });
  const seedArb = fc.integer({ min: 0, max: 2 ** 31 - 1 });

  test("softmax and logSoftmax: gradients match finite differences", () => {
    fc.assert(
      fc.property(dim, dim, seedArb, (rows, cols, seed) => {
        for (const op of [softmax, logSoftmax]) {
          checkGradients(ctx, {
            inputs: [{ shape: [rows, cols], values: uniformValues(-3, 3) }],
            op,
            seed,
          });
        }
      }),
      { numRuns: 20 },
    );
  });

  test("logSoftmax: gradients match finite differences on the input that caught oneDNN's log", () => {
    // Seed 465466629 on [2, 3] failed on the cpu backend while it ran oneDNN 2.6.3's log-softmax
    // (its logarithm is approximated: ~4e-6 absolute error in y, which the differences amplify).
    for (const op of [logSoftmax, softmax]) {
      checkGradients(ctx, {
        inputs: [{ shape: [2, 3], values: uniformValues(-3, 3) }],
        op,
        seed: 465466629,
      });
    }
  });

  /** Logits up to ±1e4 (f32), including huge gaps between entries of one row. */
  const logitsArb = fc.record({ rows: dim, cols: dim }).chain(({ rows, cols }) =>
    fc.record({
      rows: fc.constant(rows),
      cols: fc.constant(cols),
      data: fc.array(
        fc.float({
          min: Math.fround(-1e4),
          max: Math.fround(1e4),
          noNaN: true,
          noDefaultInfinity: true,
        }),
        { minLength: rows * cols, maxLength: rows * cols },
      ),
      shift: fc.float({ min: Math.fround(-100), max: Math.fround(100), noNaN: true }),
    })
  );

  test("softmax: rows sum to 1, no NaN for logits up to ±1e4, shift-invariant", () => {
    fc.assert(
      fc.property(logitsArb, ({ rows, cols, data, shift }) => {
        ctx.scope(() => {
          const p = softmax(ctx.fromArray(data, [rows, cols])).toFloat32();
          for (let r = 0; r < rows; r++) {
            let total = 0;
            for (let c = 0; c < cols; c++) {
              const v = p[r * cols + c];
              assert.ok(v >= 0 && v <= 1, `softmax value ${v} outside [0, 1]`);
              total += v;
            }
            assert.ok(Math.abs(total - 1) <= 1e-5 * cols, `row ${r} sums to ${total}`);
          }
          // Shifting a row by a constant leaves the softmax unchanged (up to f32 rounding of x + s).
          const shifted = Float32Array.from(data, (v) => v + shift);
          const q = softmax(ctx.fromArray(shifted, [rows, cols])).toFloat32();
          // Rounding x + s to f32 moves a logit by up to half an ulp of 1e4 (~5e-4).
          for (let i = 0; i < p.length; i++) {
            assert.ok(Math.abs(p[i] - q[i]) <= 2e-3 * p[i] + 1e-6, `shifted ${q[i]} vs ${p[i]}`);
          }
        });
      }),
      { numRuns: 30 },
    );
  });

  test("logSoftmax: equals log(softmax) where finite, never NaN, <= 0 (to f32 rounding)", () => {
    fc.assert(
      fc.property(logitsArb, ({ rows, cols, data }) => {
        ctx.scope(() => {
          const x = ctx.fromArray(data, [rows, cols]);
          const lp = logSoftmax(x).toFloat32();
          const p = softmax(x).toFloat32();
          for (let i = 0; i < lp.length; i++) {
            // <= 0 up to the f32 rounding of log(sum exp) (oneDNN's vectorised log: +1.4e-6 seen).
            assert.ok(!Number.isNaN(lp[i]) && lp[i] <= 1e-5, `logSoftmax value ${lp[i]}`);
            const lg = Math.log(p[i]);
            // Where softmax does not underflow, log(softmax) agrees with logSoftmax.
            if (p[i] > 1e-30) {
              assert.ok(Math.abs(lp[i] - lg) <= 1e-5 * (1 + Math.abs(lg)), `${lp[i]} vs ${lg}`);
            }
          }
        });
      }),
      { numRuns: 30 },
    );
  });

  test("softmax: known values and argument errors", () => {
    ctx.scope(() => {
      const x = ctx.fromArray([0, Math.log(3), 1e4, -1e4], [2, 2]);
      const p = softmax(x).toFloat32();
      assert.deepEqual([...p].map((v) => Math.round(v * 1e6) / 1e6), [0.25, 0.75, 1, 0]);
      const lp = logSoftmax(x).toFloat32();
      assert.ok(Math.abs(lp[3] - -2e4) < 1, `log p of a -2e4 gap is ${lp[3]}`);
      assert.throws(() => softmax(ctx.zeros([2, 2, 2])), /Cannot run softmax: input x has shape/);
    });
  });
});
