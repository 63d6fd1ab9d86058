import assert from "node:assert/strict";
import fc from "fast-check";
import { backendTest, forEachBackend } from "../backends.ts";
import { conv2d } from "../../src/ops/conv.ts";
import { createContext } from "../../src/tensor/tensor.ts";
import { checkGradients } from "./grad_check.ts";

forEachBackend("ops conv", (b) => {
  const ctx = createContext(b.create());
  const test = backendTest(b);

  /** A conv problem: kernel 1, 3 or 7, stride 1-3, padding 0-3, an input the kernel fits. */
  const convArb = fc.record({
    n: fc.integer({ min: 1, max: 2 }),
    c: fc.integer({ min: 1, max: 3 }),
    k: fc.integer({ min: 1, max: 3 }),
    kernel: fc.constantFrom(1, 3, 7),
    stride: fc.integer({ min: 1, max: 3 }),
    padding: fc.integer({ min: 0, max: 3 }),
    extraH: fc.integer({ min: 0, max: 4 }),
    extraW: fc.integer({ min: 0, max: 4 }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  }).map((p) => {
    const fit = Math.max(1, p.kernel - 2 * p.padding);
    return { ...p, h: fit + p.extraH, w: fit + p.extraW };
  });

  test("conv2d: gradients in x and w match finite differences (kernels 1, 3, 7)", () => {
    fc.assert(
      fc.property(convArb, (p) => {
        checkGradients(ctx, {
          inputs: [{ shape: [p.n, p.c, p.h, p.w] }, { shape: [p.k, p.c, p.kernel, p.kernel] }],
          op: (x, w) => conv2d(x, w, { stride: p.stride, padding: p.padding }),
          seed: p.seed,
          maxCoords: 40,
        });
      }),
      { numRuns: 20 },
    );
  });

  test("conv2d: forward matches a direct host convolution", () => {
    ctx.scope(() => {
      // 1 image, 1 channel 3x3, kernel 2x2, stride 1, padding 1 -> 4x4
      const x = ctx.fromArray([1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 1, 3, 3]);
      const w = ctx.fromArray([1, 0, 0, -1], [1, 1, 2, 2]);
      const y = conv2d(x, w, { padding: 1 });
      assert.deepEqual(y.shape, [1, 1, 4, 4]);
      const xp = (i: number, j: number) => (i >= 0 && i < 3 && j >= 0 && j < 3 ? 3 * i + j + 1 : 0);
      const expected: number[] = [];
      for (let i = 0; i < 4; i++) {
        for (let j = 0; j < 4; j++) expected.push(xp(i - 1, j - 1) - xp(i, j));
      }
      assert.deepEqual([...y.toFloat32()], expected);
    });
  });

  test("conv2d: argument errors", () => {
    ctx.scope(() => {
      const x = ctx.zeros([1, 3, 4, 4]);
      assert.throws(
        () => conv2d(x, ctx.zeros([2, 4, 3, 3])),
        /Cannot run conv2d: input has 3 channels but the weight \[2,4,3,3\] expects 4/,
      );
      assert.throws(() => conv2d(x, ctx.zeros([2, 3, 7, 7])), /7x7 kernel does not fit the 4x4/);
      assert.throws(() => conv2d(x, ctx.zeros([2, 3, 3, 3]), { stride: 0 }), /stride is 0/);
      assert.throws(() => conv2d(ctx.zeros([3, 4, 4]), ctx.zeros([2, 3, 3, 3])), /rank 3/);
    });
  });
});
