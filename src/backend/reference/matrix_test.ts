import assert from "node:assert/strict";
import fc from "fast-check";
import { createReferenceBackend } from "./backend.ts";
import {
  assertClose,
  finiteDifference,
  poisoned,
  randomArray,
  read,
  upload,
} from "./test_helpers.ts";

/** Naive c = alpha * op(a) @ op(b) + beta * c0 in f64, op from explicit 2-D indexing. */
function naiveGemm(
  a: Float32Array,
  b: Float32Array,
  c0: Float32Array,
  o: {
    m: number;
    n: number;
    k: number;
    transA: boolean;
    transB: boolean;
    alpha: number;
    beta: number;
  },
): number[] {
  const { m, n, k, transA, transB, alpha, beta } = o;
  const opA = (i: number, p: number) => transA ? a[p * m + i] : a[i * k + p];
  const opB = (p: number, j: number) => transB ? b[j * k + p] : b[p * n + j];
  const out: number[] = [];
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += opA(i, p) * opB(p, j);
      out.push(alpha * s + (beta === 0 ? 0 : beta * c0[i * n + j]));
    }
  }
  return out;
}

Deno.test("reference gemm matches a naive triple loop (all transposes, beta 0 and not)", () => {
  const b = createReferenceBackend();
  fc.assert(
    fc.property(
      fc.record({
        m: fc.integer({ min: 1, max: 7 }),
        n: fc.integer({ min: 1, max: 7 }),
        k: fc.integer({ min: 0, max: 7 }),
        transA: fc.boolean(),
        transB: fc.boolean(),
        alpha: fc.constantFrom(1, -0.5, 2.25),
        beta: fc.constantFrom(0, 1, -0.75),
        seed: fc.integer({ min: 0, max: 1 << 30 }),
      }),
      (o) => {
        const as = randomArray(o.seed, o.m * o.k);
        const bs = randomArray(o.seed + 1, o.k * o.n);
        const cs = o.beta === 0
          ? new Float32Array(o.m * o.n).fill(NaN)
          : randomArray(o.seed + 2, o.m * o.n);
        const [a, bb, c] = [upload(b, as), upload(b, bs), upload(b, cs)];
        b.gemm({ a, b: bb, c, ...o });
        assertClose(read(b, c), naiveGemm(as, bs, cs, o), 1e-6, 1e-6, "gemm");
        for (const s of [a, bb, c]) b.free(s);
      },
    ),
    { numRuns: 80 },
  );
  assert.equal(b.liveAllocations(), 0);
});

Deno.test("reference gemm: a worked 2x3 @ 3x2 example with transposed storage", () => {
  const b = createReferenceBackend();
  // A = [[1, 2, 3], [4, 5, 6]] stored transposed; B = [[7, 8], [9, 10], [11, 12]].
  const a = upload(b, [1, 4, 2, 5, 3, 6]);
  const bb = upload(b, [7, 8, 9, 10, 11, 12]);
  const c = poisoned(b, 4);
  b.gemm({ a, b: bb, c, m: 2, n: 2, k: 3, transA: true, transB: false, alpha: 1, beta: 0 });
  assert.deepEqual([...read(b, c)], [58, 64, 139, 154]);
  assert.throws(
    () => b.gemm({ a, b: bb, c, m: 2, n: 2, k: 4, transA: true, transB: false, alpha: 1, beta: 0 }),
    /Cannot run gemm: storage 'a' has 6 elements, expected at least 8/,
  );
});

Deno.test("reference addRowVector, sumRows, gatherRows", () => {
  const b = createReferenceBackend();
  const x = upload(b, [1, 2, 3, 4, 5, 6]);
  const bias = upload(b, [10, 20, 30]);
  const y = poisoned(b, 6);
  b.addRowVector({ x, bias, y, rows: 2, cols: 3 });
  assert.deepEqual([...read(b, y)], [11, 22, 33, 14, 25, 36]);
  const sums = poisoned(b, 3);
  b.sumRows({ x, out: sums, rows: 2, cols: 3 });
  assert.deepEqual([...read(b, sums)], [5, 7, 9]);
  const x3 = upload(b, [1, 2, 3, 4, 5, 6]);
  const index = b.alloc("i32", 3);
  b.upload(index, new Int32Array([2, 0, 1]));
  const g = poisoned(b, 6);
  b.gatherRows({ x: x3, index, y: g, rows: 3, cols: 2 });
  assert.deepEqual([...read(b, g)], [5, 6, 1, 2, 3, 4]);
  b.upload(index, new Int32Array([0, 3, 1]));
  assert.throws(
    () => b.gatherRows({ x: x3, index, y: g, rows: 3, cols: 2 }),
    /Cannot run gatherRows: index\[1\] is 3, expected a row in \[0, 3\)/,
  );
  assert.throws(
    () => b.gatherRows({ x: x3, index: x, y: g, rows: 3, cols: 2 }),
    /storage 'index' has dtype f32, expected i32/,
  );
});

Deno.test("reference softmax and logSoftmax stay finite at +-1e4", () => {
  const b = createReferenceBackend();
  const x = upload(b, [1e4, -1e4, 0, 1e4, -1e4, -1e4, -1e4, -1e4]);
  const y = poisoned(b, 8);
  b.softmax({ x, y, rows: 2, cols: 4 });
  const s = read(b, y);
  assertClose(s, [0.5, 0, 0, 0.5, 0.25, 0.25, 0.25, 0.25], 1e-7, 0, "softmax");
  b.logSoftmax({ x, y, rows: 2, cols: 4 });
  const ln2 = Math.log(2);
  const ln4 = Math.log(4);
  const expected = [-ln2, -2e4 - ln2, -1e4 - ln2, -ln2, -ln4, -ln4, -ln4, -ln4];
  assertClose(read(b, y), expected, 1e-6, 1e-7, "logSoftmax");
});

Deno.test("reference softmax/logSoftmax forward vs direct formulas, backward vs finite differences", () => {
  const b = createReferenceBackend();
  const rows = 3;
  const cols = 5;
  const xs = randomArray(11, rows * cols, -3, 3);
  const weights = randomArray(12, rows * cols);
  const direct: number[] = [];
  for (let r = 0; r < rows; r++) {
    let z = 0;
    for (let j = 0; j < cols; j++) z += Math.exp(xs[r * cols + j]);
    for (let j = 0; j < cols; j++) direct.push(Math.exp(xs[r * cols + j]) / z);
  }
  const run = (kernel: "softmax" | "logSoftmax") => (v: Float32Array) => {
    const x = upload(b, v);
    const y = poisoned(b, v.length);
    b[kernel]({ x, y, rows, cols });
    const out = read(b, y);
    b.free(x);
    b.free(y);
    return out;
  };
  assertClose(run("softmax")(xs), direct, 1e-7, 1e-6, "softmax forward");
  assertClose(run("logSoftmax")(xs), direct.map(Math.log), 1e-6, 1e-6, "logSoftmax forward");
  const dy = upload(b, weights);
  const dx = poisoned(b, rows * cols);
  for (const kernel of ["softmax", "logSoftmax"] as const) {
    const y = upload(b, run(kernel)(xs));
    const backward = kernel === "softmax" ? "softmaxBackward" : "logSoftmaxBackward";
    b[backward]({ y, dy, dx, rows, cols });
    const fd = finiteDifference(run(kernel), xs, weights, 1e-2);
    assertClose(read(b, dx), fd, 2e-4, 2e-3, `${backward} vs finite differences`);
  }
});

Deno.test("reference l2Normalize forward and backward (finite differences, torch at the eps edge)", () => {
  const b = createReferenceBackend();
  const rows = 3;
  const cols = 4;
  const xs = randomArray(21, rows * cols, -2, 2);
  const weights = randomArray(22, rows * cols);
  const eps = 1e-12;
  const run = (v: Float32Array) => {
    const x = upload(b, v);
    const y = poisoned(b, v.length);
    b.l2Normalize({ x, y, rows, cols, eps });
    const out = read(b, y);
    b.free(x);
    b.free(y);
    return out;
  };
  const direct: number[] = [];
  for (let r = 0; r < rows; r++) {
    const row = xs.subarray(r * cols, (r + 1) * cols);
    const norm = Math.hypot(...row);
    for (const v of row) direct.push(v / norm);
  }
  assertClose(run(xs), direct, 1e-7, 1e-6, "l2Normalize forward");
  const x = upload(b, xs);
  const dy = upload(b, weights);
  const dx = poisoned(b, rows * cols);
  b.l2NormalizeBackward({ x, dy, dx, rows, cols, eps });
  const fd = finiteDifference(run, xs, weights, 1e-2);
  assertClose(read(b, dx), fd, 2e-4, 2e-3, "l2NormalizeBackward vs finite differences");

  // torch.nn.functional.normalize gradients (PyTorch 1.13) with dy = [1, 2, 3] per row:
  // norm == eps takes the full formula, norm < eps gives dy / eps.
  const edge = upload(b, [0.5, 0, 0, 0.25, 0, 0]);
  const dyEdge = upload(b, [1, 2, 3, 1, 2, 3]);
  const dxEdge = poisoned(b, 6);
  b.l2NormalizeBackward({ x: edge, dy: dyEdge, dx: dxEdge, rows: 2, cols: 3, eps: 0.5 });
  assert.deepEqual([...read(b, dxEdge)], [0, 4, 6, 2, 4, 6]);
  const tiny = upload(b, [1e-14, 0, -2e-14]);
  const dxTiny = poisoned(b, 3);
  b.l2NormalizeBackward({ x: tiny, dy: dyEdge, dx: dxTiny, rows: 1, cols: 3, eps: 1e-12 });
  assertClose(read(b, dxTiny), [1e12, 2e12, 3e12], 0, 1e-6, "below eps: dy / eps");
  const yTiny = poisoned(b, 3);
  b.l2Normalize({ x: tiny, y: yTiny, rows: 1, cols: 3, eps: 1e-12 });
  assertClose(read(b, yTiny), [1e-2, 0, -2e-2], 0, 1e-6, "below eps: x / eps");
});
