import assert from "node:assert/strict";
import fc from "fast-check";
import { type Conv2dGeometry, outputSize } from "../backend.ts";
import { createReferenceBackend } from "./backend.ts";
import { absDot, assertClose, dot, poisoned, randomArray, read, upload } from "./test_helpers.ts";

/** Random convolution geometries: kernel 1/3/7, stride 1-2, pad 0-3, only those that fit. */
const geometryArb = fc.record({
  n: fc.integer({ min: 1, max: 2 }),
  c: fc.integer({ min: 1, max: 3 }),
  k: fc.integer({ min: 1, max: 3 }),
  h: fc.integer({ min: 1, max: 9 }),
  w: fc.integer({ min: 1, max: 9 }),
  r: fc.constantFrom(1, 3, 7),
  s: fc.constantFrom(1, 3, 7),
  strideH: fc.integer({ min: 1, max: 2 }),
  strideW: fc.integer({ min: 1, max: 2 }),
  padH: fc.integer({ min: 0, max: 3 }),
  padW: fc.integer({ min: 0, max: 3 }),
}).filter((g) => g.h + 2 * g.padH >= g.r && g.w + 2 * g.padW >= g.s)
  .map((g): Conv2dGeometry => ({
    ...g,
    outH: outputSize(g.h, g.r, g.strideH, g.padH),
    outW: outputSize(g.w, g.s, g.strideW, g.padW),
  }));

const seedArb = fc.integer({ min: 0, max: 1 << 30 });

/** The convolution sum written out as seven nested loops, in f64. */
function naiveConv(x: Float32Array, w: Float32Array, g: Conv2dGeometry): Float64Array {
  const y = new Float64Array(g.n * g.k * g.outH * g.outW);
  for (let n = 0; n < g.n; n++) {
    for (let k = 0; k < g.k; k++) {
      for (let oh = 0; oh < g.outH; oh++) {
        for (let ow = 0; ow < g.outW; ow++) {
          let s = 0;
          for (let c = 0; c < g.c; c++) {
            for (let r = 0; r < g.r; r++) {
              for (let q = 0; q < g.s; q++) {
                const ih = oh * g.strideH - g.padH + r;
                const iw = ow * g.strideW - g.padW + q;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                s += x[((n * g.c + c) * g.h + ih) * g.w + iw] *
                  w[((k * g.c + c) * g.r + r) * g.s + q];
              }
            }
          }
          y[((n * g.k + k) * g.outH + oh) * g.outW + ow] = s;
        }
      }
    }
  }
  return y;
}

const sizes = (g: Conv2dGeometry) => ({
  x: g.n * g.c * g.h * g.w,
  w: g.k * g.c * g.r * g.s,
  y: g.n * g.k * g.outH * g.outW,
});

Deno.test("reference conv2dForward matches the naive 7-loop formula", () => {
  const b = createReferenceBackend();
  fc.assert(
    fc.property(geometryArb, seedArb, (g, seed) => {
      const n = sizes(g);
      const xs = randomArray(seed, n.x);
      const ws = randomArray(seed + 1, n.w);
      const x = upload(b, xs);
      const w = upload(b, ws);
      const y = poisoned(b, n.y);
      b.conv2dForward({ x, w, y, geom: g });
      assertClose(read(b, y), naiveConv(xs, ws, g), 1e-6, 1e-6, `conv ${JSON.stringify(g)}`);
      for (const s of [x, w, y]) b.free(s);
    }),
    { numRuns: 60 },
  );
  assert.equal(b.liveAllocations(), 0);
});

Deno.test("reference conv backward data/weights satisfy the adjoint identity", () => {
  const b = createReferenceBackend();
  fc.assert(
    fc.property(geometryArb, seedArb, (g, seed) => {
      const n = sizes(g);
      const xs = randomArray(seed, n.x);
      const ws = randomArray(seed + 1, n.w);
      const dys = randomArray(seed + 2, n.y);
      const [x, w, dy] = [upload(b, xs), upload(b, ws), upload(b, dys)];
      const [y, dx, dw] = [poisoned(b, n.y), poisoned(b, n.x), poisoned(b, n.w)];
      b.conv2dForward({ x, w, y, geom: g });
      b.conv2dBackwardData({ dy, w, dx, geom: g });
      b.conv2dBackwardWeights({ x, dy, dw, geom: g });
      const ys = read(b, y);
      const dxs = read(b, dx);
      const dws = read(b, dw);
      // <conv(x, w), dy> = <x, dx> = <w, dw>, up to f32 rounding of each output element.
      const lhs = dot(ys, dys);
      const tol = 1e-5 * (absDot(naiveConv(xs.map(Math.abs), ws.map(Math.abs), g), dys) + 1);
      assert.ok(Math.abs(dot(xs, dxs) - lhs) <= tol, `<x, dx> ${dot(xs, dxs)} vs ${lhs}`);
      assert.ok(Math.abs(dot(ws, dws) - lhs) <= tol, `<w, dw> ${dot(ws, dws)} vs ${lhs}`);
      assert.ok(dxs.every(Number.isFinite) && dws.every(Number.isFinite), "outputs written");
      for (const s of [x, w, dy, y, dx, dw]) b.free(s);
    }),
    { numRuns: 60 },
  );
  assert.equal(b.liveAllocations(), 0);
});

Deno.test("reference conv backward: each dx and dw element equals the naive sum it stands for", () => {
  // dx[i] = d<conv(x, w), dy>/dx[i] is linear in x, so it equals <conv(e_i, w), dy>.
  const b = createReferenceBackend();
  const g: Conv2dGeometry = {
    n: 2,
    c: 2,
    h: 5,
    w: 4,
    k: 3,
    r: 3,
    s: 3,
    strideH: 2,
    strideW: 1,
    padH: 1,
    padW: 2,
    outH: outputSize(5, 3, 2, 1),
    outW: outputSize(4, 3, 1, 2),
  };
  const n = sizes(g);
  const xs = randomArray(5, n.x);
  const ws = randomArray(6, n.w);
  const dys = randomArray(7, n.y);
  const [x, w, dy, dx, dw] = [
    upload(b, xs),
    upload(b, ws),
    upload(b, dys),
    poisoned(b, n.x),
    poisoned(b, n.w),
  ];
  b.conv2dBackwardData({ dy, w, dx, geom: g });
  b.conv2dBackwardWeights({ x, dy, dw, geom: g });
  const basis = (len: number, i: number) => {
    const e = new Float32Array(len);
    e[i] = 1;
    return e;
  };
  const dxExpected = Array.from(
    { length: n.x },
    (_, i) => dot(naiveConv(basis(n.x, i), ws, g), dys),
  );
  const dwExpected = Array.from(
    { length: n.w },
    (_, i) => dot(naiveConv(xs, basis(n.w, i), g), dys),
  );
  assertClose(read(b, dx), dxExpected, 1e-6, 1e-6, "dx");
  assertClose(read(b, dw), dwExpected, 1e-6, 1e-6, "dw");
});

Deno.test("reference conv rejects inconsistent geometry and short storages", () => {
  const b = createReferenceBackend();
  const g: Conv2dGeometry = {
    n: 1,
    c: 1,
    h: 4,
    w: 4,
    k: 1,
    r: 3,
    s: 3,
    strideH: 1,
    strideW: 1,
    padH: 0,
    padW: 0,
    outH: 2,
    outW: 2,
  };
  const x = upload(b, new Float32Array(16));
  const w = upload(b, new Float32Array(9));
  const y = b.alloc("f32", 4);
  assert.throws(
    () => b.conv2dForward({ x, w, y, geom: { ...g, outH: 3 } }),
    /Cannot run conv2dForward: geometry 'outH' is 3, expected 2/,
  );
  assert.throws(
    () => b.conv2dForward({ x, w, y, geom: { ...g, h: 1, w: 1, outH: -1, outW: -1 } }),
    /window is larger than the padded input/,
  );
  assert.throws(
    () => b.conv2dBackwardWeights({ x, dy: y, dw: b.alloc("f32", 8), geom: g }),
    /Cannot run conv2dBackwardWeights: storage 'dw' has 8 elements, expected at least 9/,
  );
  assert.throws(
    () => b.conv2dForward({ x, w, y, geom: { ...g, strideH: 0 } }),
    /'strideH' is 0, expected an integer >= 1/,
  );
});
