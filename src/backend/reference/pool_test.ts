import assert from "node:assert/strict";
import fc from "fast-check";
import { outputSize, type Pool2dGeometry } from "../backend.ts";
import { createReferenceBackend } from "./backend.ts";
import { assertClose, poisoned, randomArray, read, upload } from "./test_helpers.ts";

/** Random pooling geometries with PyTorch's constraint pad <= kernel / 2. */
const poolArb = fc.record({
  n: fc.integer({ min: 1, max: 2 }),
  c: fc.integer({ min: 1, max: 2 }),
  h: fc.integer({ min: 1, max: 7 }),
  w: fc.integer({ min: 1, max: 7 }),
  kernelH: fc.integer({ min: 1, max: 3 }),
  kernelW: fc.integer({ min: 1, max: 3 }),
  strideH: fc.integer({ min: 1, max: 2 }),
  strideW: fc.integer({ min: 1, max: 2 }),
  padH: fc.integer({ min: 0, max: 1 }),
  padW: fc.integer({ min: 0, max: 1 }),
}).filter((g) =>
  2 * g.padH <= g.kernelH && 2 * g.padW <= g.kernelW && g.h + 2 * g.padH >= g.kernelH &&
  g.w + 2 * g.padW >= g.kernelW
).map((g): Pool2dGeometry => ({
  ...g,
  outH: outputSize(g.h, g.kernelH, g.strideH, g.padH),
  outW: outputSize(g.w, g.kernelW, g.strideW, g.padW),
}));

/** Max pooling by definition: per window, the maximum over real inputs and the first index of it. */
function naiveMaxPool(x: Float32Array, g: Pool2dGeometry) {
  const y = new Float64Array(g.n * g.c * g.outH * g.outW);
  const dxOnes = new Float64Array(x.length); // gradient for dy = 1 everywhere
  for (let p = 0; p < g.n * g.c; p++) {
    for (let oh = 0; oh < g.outH; oh++) {
      for (let ow = 0; ow < g.outW; ow++) {
        let best = -Infinity;
        let arg = -1;
        for (let i = 0; i < g.kernelH; i++) {
          for (let j = 0; j < g.kernelW; j++) {
            const ih = oh * g.strideH - g.padH + i;
            const iw = ow * g.strideW - g.padW + j;
            if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
            const at = (p * g.h + ih) * g.w + iw;
            if (arg === -1 || x[at] > best) {
              best = x[at];
              arg = at;
            }
          }
        }
        y[(p * g.outH + oh) * g.outW + ow] = best;
        dxOnes[arg] += 1;
      }
    }
  }
  return { y, dxOnes };
}

Deno.test("reference maxPool2d forward/backward match the definition (ties included)", () => {
  const b = createReferenceBackend();
  fc.assert(
    fc.property(poolArb, fc.integer({ min: 0, max: 1 << 30 }), (g, seed) => {
      // Values from a few integers (negative ones included), so windows often tie.
      const xs = randomArray(seed, g.n * g.c * g.h * g.w, -3, 2).map(Math.floor);
      const x = upload(b, xs);
      const y = poisoned(b, g.n * g.c * g.outH * g.outW);
      const dy = upload(b, new Float32Array(g.n * g.c * g.outH * g.outW).fill(1));
      const dx = poisoned(b, xs.length);
      b.maxPool2dForward({ x, y, geom: g });
      b.maxPool2dBackward({ x, dy, dx, geom: g });
      const expected = naiveMaxPool(xs, g);
      assert.deepEqual([...read(b, y)], [...expected.y]);
      assert.deepEqual([...read(b, dx)], [...expected.dxOnes]);
      for (const s of [x, y, dy, dx]) b.free(s);
    }),
    { numRuns: 80 },
  );
  assert.equal(b.liveAllocations(), 0);
});

Deno.test("reference maxPool2d: first maximum takes the gradient, padding never wins (torch values)", () => {
  const b = createReferenceBackend();
  const tie: Pool2dGeometry = {
    n: 1,
    c: 1,
    h: 3,
    w: 3,
    kernelH: 2,
    kernelW: 2,
    strideH: 1,
    strideW: 1,
    padH: 0,
    padW: 0,
    outH: 2,
    outW: 2,
  };
  const x = upload(b, [1, 1, 0, 1, 1, 0, 0, 0, 0]);
  const y = poisoned(b, 4);
  const dy = upload(b, [1, 2, 3, 4]);
  const dx = poisoned(b, 9);
  b.maxPool2dForward({ x, y, geom: tie });
  b.maxPool2dBackward({ x, dy, dx, geom: tie });
  assert.deepEqual([...read(b, y)], [1, 1, 1, 1]);
  // torch routes each window's gradient to its first maximum: windows start at their own corner.
  assert.deepEqual([...read(b, dx)], [1, 2, 0, 3, 4, 0, 0, 0, 0]);

  const padded: Pool2dGeometry = {
    n: 1,
    c: 1,
    h: 3,
    w: 3,
    kernelH: 3,
    kernelW: 3,
    strideH: 2,
    strideW: 2,
    padH: 1,
    padW: 1,
    outH: 2,
    outW: 2,
  };
  const neg = upload(b, new Float32Array(9).fill(-5));
  const ones = upload(b, [1, 1, 1, 1]);
  b.maxPool2dForward({ x: neg, y, geom: padded });
  b.maxPool2dBackward({ x: neg, dy: ones, dx, geom: padded });
  // torch.nn.functional.max_pool2d(full -5, 3, 2, 1): y = -5 (not 0 from padding).
  assert.deepEqual([...read(b, y)], [-5, -5, -5, -5]);
  assert.deepEqual([...read(b, dx)], [1, 1, 0, 1, 1, 0, 0, 0, 0]);

  assert.throws(
    () => b.maxPool2dForward({ x: neg, y, geom: { ...padded, kernelH: 1, padH: 1, outH: 3 } }),
    /Cannot run maxPool2dForward: padding 1x1 exceeds half the window 1x3/,
  );
});

Deno.test("reference globalAvgPool and its backward", () => {
  const b = createReferenceBackend();
  const xs = randomArray(51, 2 * 3 * 5);
  const x = upload(b, xs);
  const y = poisoned(b, 6);
  b.globalAvgPool({ x, y, n: 2, c: 3, hw: 5 });
  const expected = Array.from({ length: 6 }, (_, p) => {
    let s = 0;
    for (let i = 0; i < 5; i++) s += xs[p * 5 + i];
    return s / 5;
  });
  assertClose(read(b, y), expected, 1e-7, 1e-6, "globalAvgPool");
  const dy = upload(b, [5, -10, 2.5, 0, 1, 15]);
  const dx = poisoned(b, 30);
  b.globalAvgPoolBackward({ dy, dx, n: 2, c: 3, hw: 5 });
  const dxs = read(b, dx);
  [1, -2, 0.5, 0, 0.2, 3].forEach((v, p) => {
    assertClose(dxs.subarray(p * 5, p * 5 + 5), new Array(5).fill(v), 0, 1e-6, `plane ${p}`);
  });
});
