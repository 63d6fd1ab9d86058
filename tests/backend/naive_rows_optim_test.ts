/**
 * The reference backend against naive f64 oracles (continued from `naive_test.ts`): the row-wise
 * softmax family and L2 normalisation against their explicit Jacobians (`naive_norm.ts`), SGD /
 * LARS / EMA against the PyTorch and solo-learn algorithms and `cast` against round-to-nearest-even
 * by distances (`naive_optim.ts`).
 *
 * @module
 */

import fc from "fast-check";
import { f32ArrayToBf16 } from "../../src/backend/bf16.ts";
import type { Backend } from "../../src/backend/backend.ts";
import { type Bound, runOn, uploadNew } from "./conformance_harness.ts";
import { vals } from "./conformance_spec.ts";
import { assertNear, maxAbs } from "./naive_assert.ts";
import { l2NormalizeBackwardScale } from "./conformance_scales.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import {
  naiveL2Normalize,
  naiveL2NormalizeBackward,
  naiveLogSoftmax,
  naiveLogSoftmaxBackward,
  naiveSoftmax,
  naiveSoftmaxBackward,
} from "./naive_norm.ts";
import { naiveBf16Bits, naiveEma, naiveSgd, type SgdTensor } from "./naive_optim.ts";

/** Sum over each row of |a| |b| (the size of a row's dot-product terms), broadcast per element. */
function rowTerms(a: Float32Array, b: Float32Array, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let t = 0;
    for (let j = 0; j < cols; j++) t += Math.abs(a[r * cols + j] * b[r * cols + j]);
    out.fill(t + maxAbs(b.subarray(r * cols, (r + 1) * cols)), r * cols, (r + 1) * cols);
  }
  return out;
}

/**
 * A row of norm 3.5e-12 (fast-check seed 211764802): dx[1] is 0 exactly, the f64 Jacobian's
 * -1.9e-37 is rounding of terms of 9e-22, which the old scale (for a norm of 1e-3) did not allow.
 */
const L2_TINY_NORM = {
  p: { rows: 1, cols: 3 },
  x: Float32Array.from([0, 3.5220142774461394e-12, 0]),
  dy: Float32Array.from([0, 3.1631006470872456e-33, 0]),
  prob: new Float32Array(3),
  logp: new Float32Array(3),
  zeroRow: -1,
  eps: 1e-12 as const,
};

/** A one-column row of norm 1.0013e-12, just above eps (seed 825965273): dx is 0 exactly. */
const L2_NORM_NEAR_EPS = {
  p: { rows: 4, cols: 1 },
  x: Float32Array.from([0, 0, 0, -1.0012781619453404e-12]),
  dy: Float32Array.from([0, 0, 0, -8.479819550274702e-17]),
  prob: new Float32Array(4),
  logp: new Float32Array(4),
  zeroRow: 0,
  eps: 1e-12 as const,
};

const ref = createReferenceBackend();

Deno.test("naive oracle: softmax, logSoftmax, l2Normalize and their backward (Jacobians)", () => {
  const arb = fc.record({
    rows: fc.integer({ min: 1, max: 4 }),
    cols: fc.integer({ min: 1, max: 24 }),
  }).chain((p) => {
    const n = p.rows * p.cols;
    return fc.record({
      p: fc.constant(p),
      x: vals(n, -8, 8),
      dy: vals(n),
      prob: vals(n, 0, 1),
      logp: vals(n, -6, 0),
      zeroRow: fc.integer({ min: -1, max: p.rows - 1 }),
      eps: fc.constantFrom(1e-12, 0.5),
    });
  });
  fc.assert(
    fc.property(arb, ({ p, x, dy, prob, logp, zeroRow, eps }) => {
      const { rows, cols } = p;
      const n = rows * cols;
      const one = (inputs: Record<string, Float32Array>, k: (be: Backend, s: Bound) => void) =>
        runOn(ref, { inputs, outputs: { out: n } }, k).out;
      assertNear(
        "softmax",
        one({ x }, (be, s) => be.softmax({ ...p, x: s.x, y: s.out })),
        naiveSoftmax(x, rows, cols),
        0,
      );
      // log-softmax values are O(1) differences: judge their error against 1.
      assertNear(
        "logSoftmax",
        one({ x }, (be, s) => be.logSoftmax({ ...p, x: s.x, y: s.out })),
        naiveLogSoftmax(x, rows, cols),
        1,
      );
      assertNear(
        "softmaxBackward",
        one({ y: prob, dy }, (be, s) => be.softmaxBackward({ ...p, y: s.y, dy: s.dy, dx: s.out })),
        naiveSoftmaxBackward(prob, dy, rows, cols),
        rowTerms(prob, dy, rows, cols),
      );
      const expY = logp.map(Math.exp);
      assertNear(
        "logSoftmaxBackward",
        one(
          { y: logp, dy },
          (be, s) => be.logSoftmaxBackward({ ...p, y: s.y, dy: s.dy, dx: s.out }),
        ),
        naiveLogSoftmaxBackward(logp, dy, rows, cols),
        rowTerms(expY, dy, rows, cols).map((v, i) => v + Math.abs(dy[i])),
      );
      const xz = x.slice();
      if (zeroRow >= 0) xz.fill(0, zeroRow * cols, (zeroRow + 1) * cols);
      assertNear(
        "l2Normalize",
        one({ x: xz }, (be, s) => be.l2Normalize({ ...p, x: s.x, y: s.out, eps })),
        naiveL2Normalize(xz, rows, cols, eps),
        0,
      );
      const grad = naiveL2NormalizeBackward(xz, dy, rows, cols, eps);
      assertNear(
        "l2NormalizeBackward",
        one(
          { x: xz, dy },
          (be, s) => be.l2NormalizeBackward({ ...p, x: s.x, dy: s.dy, dx: s.out, eps }),
        ),
        grad,
        l2NormalizeBackwardScale(xz, dy, rows, cols, eps),
      );
    }),
    { numRuns: 40, examples: [[L2_TINY_NORM], [L2_NORM_NEAR_EPS]] },
  );
});

Deno.test("naive oracle: sgdUpdateMulti (SGD, Nesterov, LARS) and emaUpdateMulti", () => {
  const tensor = fc.integer({ min: 1, max: 40 }).chain((n) =>
    fc.record({
      p: fc.oneof({ weight: 4, arbitrary: vals(n, -2, 2) }, fc.constant(new Float32Array(n))),
      g: fc.oneof({ weight: 4, arbitrary: vals(n, -2, 2) }, fc.constant(new Float32Array(n))),
      buf: vals(n, -1, 1),
      student: vals(n),
      wd: fc.constantFrom(0, 5e-4, 0.1),
      adapt: fc.boolean(),
    })
  );
  const arb = fc.record({
    tensors: fc.array(tensor, { minLength: 1, maxLength: 4 }),
    lr: fc.double({ min: 0.01, max: 0.5, noNaN: true }),
    momentum: fc.constantFrom(0, 0.9, 0.5),
    nesterov: fc.boolean(),
    lars: fc.option(
      fc.record({
        eta: fc.constantFrom(1e-3, 0.02, 1),
        eps: fc.constantFrom(1e-8, 0.1),
        clip: fc.boolean(),
      }),
      { nil: null },
    ),
    ema: fc.double({ min: 0, max: 1, noNaN: true }),
  });
  fc.assert(
    fc.property(arb, (c) => {
      const ts: SgdTensor[] = c.tensors.map((t) => ({ p: t.p, g: t.g, buf: t.buf, wd: t.wd }));
      const adapt = c.tensors.map((t) => t.adapt);
      const want = naiveSgd(ts, adapt, c);
      const up = (a: Float32Array) => uploadNew(ref, a);
      const params = c.tensors.map((t) => up(t.p));
      const grads = c.tensors.map((t) => up(t.g));
      const momentumBufs = c.tensors.map((t) => up(t.buf));
      ref.sgdUpdateMulti({
        params,
        grads,
        momentumBufs,
        lr: c.lr,
        momentum: c.momentum,
        weightDecay: c.tensors.map((t) => t.wd),
        nesterov: c.nesterov,
        lars: c.lars && { ...c.lars, adapt },
      });
      want.forEach((w, i) => {
        const size = maxAbs(c.tensors[i].p) + maxAbs(w.buf) + maxAbs(c.tensors[i].g);
        assertNear(
          `sgdUpdateMulti param[${i}]`,
          ref.download(params[i]) as Float32Array,
          w.p,
          size,
        );
        assertNear(
          `sgdUpdateMulti buf[${i}]`,
          ref.download(momentumBufs[i]) as Float32Array,
          w.buf,
          size,
        );
      });
      const students = c.tensors.map((t) => up(t.student));
      ref.emaUpdateMulti({ teacher: params, student: students, out: params, momentum: c.ema });
      want.forEach((w, i) => {
        const teacher = Float32Array.from(w.p);
        assertNear(
          `emaUpdateMulti[${i}]`,
          ref.download(params[i]) as Float32Array,
          naiveEma(teacher, c.tensors[i].student, c.ema),
          maxAbs(teacher) + maxAbs(c.tensors[i].student),
        );
      });
      for (const s of [...params, ...grads, ...momentumBufs, ...students]) ref.free(s);
    }),
    { numRuns: 60 },
  );
});

Deno.test("naive oracle: cast f32 -> bf16 rounds to nearest even (ties, NaN, overflow)", () => {
  const bitsArb = fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }),
    // Exact ties, one above and one below, around every exponent.
    fc.tuple(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0x8000, 0x7fff, 0x8001)).map((
      [hi, lo],
    ) => ((hi << 16) | lo) >>> 0),
  );
  fc.assert(
    fc.property(fc.array(bitsArb, { minLength: 1, maxLength: 200 }), (bits) => {
      const x = new Float32Array(Uint32Array.from(bits).buffer);
      const got = runOn(ref, { inputs: { x }, outputs: { y: { n: x.length, dtype: "bf16" } } }, (
        be,
        s,
      ) => be.cast({ x: s.x, y: s.y, n: x.length }));
      const gotBits = f32ArrayToBf16(got.y); // exact: the values are bf16 already
      x.forEach((v, i) => {
        const want = naiveBf16Bits(v);
        const ok = Number.isNaN(v) ? Number.isNaN(got.y[i]) : gotBits[i] === want;
        if (!ok) {
          throw new Error(
            `cast of ${v} (0x${bits[i].toString(16)}): bf16 0x${gotBits[i].toString(16)}, ` +
              `naive 0x${want.toString(16)}`,
          );
        }
      });
    }),
    { numRuns: 50 },
  );
});
