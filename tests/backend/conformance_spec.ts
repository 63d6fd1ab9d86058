/**
 * The backend conformance spec: one set of properties, run against every available backend
 * (`conformance_test.ts`), comparing each kernel's outputs with the reference backend's on shapes
 * and values drawn by fast-check. Outputs are NaN-poisoned before each call (see
 * `conformance_harness.ts`), so an element a kernel forgets to write fails, and NaN never passes.
 *
 * @module
 */

import fc from "fast-check";
import assert from "node:assert/strict";
import type { Backend, Conv2dGeometry, Pool2dGeometry } from "../../src/backend/backend.ts";
import { outputSize } from "../../src/backend/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { abs, type Bound, type Call, check } from "./conformance_harness.ts";
import { defineLayoutChains } from "./conformance_layouts.ts";
import { defineResNetConformance } from "./conformance_resnet.ts";
import { defineElementwise } from "./conformance_elementwise.ts";
import { defineFused } from "./conformance_fused.ts";
import { defineSyncBatchNorm } from "./conformance_sync_bn.ts";
import { defineOptim } from "./conformance_optim.ts";
import { defineAugment } from "./conformance_augment.ts";
import { defineValidator } from "./conformance_validator.ts";
import {
  bnScales,
  l2NormalizeBackwardScale,
  logSoftmaxBackwardScale,
  softmaxBackwardScale,
} from "./conformance_scales.ts";

/** Runs of each property (fixed examples come on top). */
export const RUNS = 12;

/** f32 values in [lo, hi], no NaN or infinity (fast-check also draws -0 and subnormals). */
export function vals(n: number, lo = -4, hi = 4): fc.Arbitrary<Float32Array> {
  return fc.float32Array({
    minLength: n,
    maxLength: n,
    min: Math.fround(lo),
    max: Math.fround(hi),
    noNaN: true,
    noDefaultInfinity: true,
  });
}

/** Small integers as f32 (ties for max pooling). */
function ints(n: number): fc.Arbitrary<Float32Array> {
  return fc.array(fc.integer({ min: -3, max: 3 }), { minLength: n, maxLength: n }).map((a) =>
    Float32Array.from(a)
  );
}

const channels = fc.oneof(fc.integer({ min: 1, max: 20 }), fc.constantFrom(16, 32));

/** Random convolution geometries (channel counts around oneDNN's block size 16). */
export const convGeometry: fc.Arbitrary<Conv2dGeometry> = fc.record({
  n: fc.integer({ min: 1, max: 3 }),
  c: channels,
  h: fc.integer({ min: 1, max: 9 }),
  w: fc.integer({ min: 1, max: 9 }),
  k: channels,
  r: fc.integer({ min: 1, max: 3 }),
  s: fc.integer({ min: 1, max: 3 }),
  strideH: fc.integer({ min: 1, max: 2 }),
  strideW: fc.integer({ min: 1, max: 2 }),
  padH: fc.integer({ min: 0, max: 1 }),
  padW: fc.integer({ min: 0, max: 1 }),
}).map((g) => ({
  ...g,
  outH: outputSize(g.h, g.r, g.strideH, g.padH),
  outW: outputSize(g.w, g.s, g.strideW, g.padW),
})).filter((g) => g.outH >= 1 && g.outW >= 1);

const poolGeometry: fc.Arbitrary<Pool2dGeometry> = fc.record({
  n: fc.integer({ min: 1, max: 2 }),
  c: channels,
  h: fc.integer({ min: 1, max: 9 }),
  w: fc.integer({ min: 1, max: 9 }),
  kernelH: fc.integer({ min: 1, max: 3 }),
  kernelW: fc.integer({ min: 1, max: 3 }),
  strideH: fc.integer({ min: 1, max: 3 }),
  strideW: fc.integer({ min: 1, max: 3 }),
  padH: fc.integer({ min: 0, max: 1 }),
  padW: fc.integer({ min: 0, max: 1 }),
}).map((g) => ({
  ...g,
  padH: Math.min(g.padH, g.kernelH >> 1),
  padW: Math.min(g.padW, g.kernelW >> 1),
})).map((g) => ({
  ...g,
  outH: outputSize(g.h, g.kernelH, g.strideH, g.padH),
  outW: outputSize(g.w, g.kernelW, g.strideW, g.padW),
})).filter((g) => g.outH >= 1 && g.outW >= 1);

const rowShape = fc.record({
  rows: fc.integer({ min: 1, max: 6 }),
  cols: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.constant(4096)),
});

/** A property body: the backend under test and the reference oracle. */
export type Prop = (subject: Backend, oracle: Backend) => void;

/** Registers one test that runs `prop` with a fresh subject and oracle and checks for leaks. */
function define(name: string, make: () => Backend, kernel: string, prop: Prop): void {
  Deno.test(`conformance ${name}: ${kernel}`, () => {
    const subject = make();
    const oracle = createReferenceBackend();
    try {
      prop(subject, oracle);
      assert.equal(subject.liveAllocations(), 0, `${kernel} leaked storages on ${name}`);
    } finally {
      subject.dispose();
      oracle.dispose();
    }
  });
}

/** Runs a fast-check property `runs` times, after the fixed `examples` (regression inputs). */
export function property<T>(
  arb: fc.Arbitrary<T>,
  body: (v: T) => void,
  runs = RUNS,
  examples: readonly T[] = [],
): void {
  fc.assert(fc.property(arb, (v) => body(v)), {
    numRuns: runs,
    examples: examples.map((e): [T] => [e]),
  });
}

/**
 * A one-column row of norm 1.3e-12, just above eps (fast-check seed -861012813, cuda): dx is 0
 * exactly, both backends return +-1.9e-9, rounding of terms of 1.3e7 that the check used to measure
 * against the result's own magnitude.
 */
const L2_TINY_ROW = {
  p: { rows: 2, cols: 1 },
  x: Float32Array.from([0, 1.3154201035717183e-12]),
  dy: Float32Array.from([0, 0.00001728556708258111]),
  prob: new Float32Array(2),
  logp: new Float32Array(2),
  zeroRow: 0,
};

/**
 * A mean that cancels to 8e-8 from terms of magnitude 4 (fast-check seed 869270445, cpu: oneDNN's
 * f32 average pooling loses the -4.8e-11 term): as {@link SUM_ROWS_CANCELLATION}.
 */
const AVG_POOL_CANCELLATION: [{ n: number; c: number; hw: number }, Float32Array, Float32Array] = [
  { n: 1, c: 2, hw: 3 },
  Float32Array.from([0, 0, 0, -4.7666537383861396e-11, 3.999997138977051, -3.9999969005584717]),
  Float32Array.from([0, 0]),
];

/**
 * A column sum that cancels to 2e-6 from terms of magnitude 4 (fast-check seed -383683542, cuda on
 * the emulated device): an f32 sum loses the -3.8e-10 term, within f32's bound relative to the sum
 * of |terms| but not to the result's own magnitude, which the check used to measure against.
 */
const SUM_ROWS_CANCELLATION = {
  p: { rows: 6, cols: 1 },
  x: Float32Array.from([
    -3.8164693627606994e-10,
    0,
    -2.5849397223770026e-26,
    3.999995470046997,
    0,
    -3.9999935626983643,
  ]),
  bias: Float32Array.from([0]),
  index: [0, 0, 0, 0, 0, 0],
};

/** Registers the whole conformance suite for the backend `make` creates. */
export function defineConformance(name: string, make: () => Backend): void {
  const d = (kernel: string, prop: Prop) => define(name, make, kernel, prop);

  d("conv2dForward / BackwardData / BackwardWeights", (sub, ref) => {
    const arb = convGeometry.chain((g) =>
      fc.tuple(
        fc.constant(g),
        vals(g.n * g.c * g.h * g.w),
        vals(g.k * g.c * g.r * g.s),
        vals(g.n * g.k * g.outH * g.outW),
      )
    );
    property(arb, ([geom, x, w, dy]) => {
      const fwd = (be: Backend, s: Bound) => be.conv2dForward({ x: s.x, w: s.w, y: s.y, geom });
      const bd = (be: Backend, s: Bound) =>
        be.conv2dBackwardData({ dy: s.dy, w: s.w, dx: s.dx, geom });
      const bw = (be: Backend, s: Bound) =>
        be.conv2dBackwardWeights({ x: s.x, dy: s.dy, dw: s.dw, geom });
      const yN = dy.length;
      check(sub, ref, "conv2dForward", { inputs: { x, w }, outputs: { y: yN } }, fwd, {
        absCall: { inputs: { x: abs(x), w: abs(w) }, outputs: { y: yN } },
      });
      check(sub, ref, "conv2dBackwardData", { inputs: { dy, w }, outputs: { dx: x.length } }, bd, {
        absCall: { inputs: { dy: abs(dy), w: abs(w) }, outputs: { dx: x.length } },
      });
      check(
        sub,
        ref,
        "conv2dBackwardWeights",
        { inputs: { x, dy }, outputs: { dw: w.length } },
        bw,
        {
          absCall: { inputs: { x: abs(x), dy: abs(dy) }, outputs: { dw: w.length } },
        },
      );
    });
  });

  d("batchNorm forward (training, inference) and backward", (sub, ref) => {
    const geom = fc.record({
      n: fc.integer({ min: 1, max: 4 }),
      c: channels,
      hw: fc.integer({ min: 1, max: 20 }),
    });
    const arb = geom.chain((g) => {
      const n = g.n * g.c * g.hw;
      return fc.record({
        g: fc.constant(g),
        x: vals(n),
        dy: vals(n),
        gamma: vals(g.c, -2, 2),
        beta: vals(g.c, -2, 2),
        mean: vals(g.c, -1, 1),
        variance: vals(g.c, 0.1, 4),
        eps: fc.constantFrom(1e-5, 1e-3),
      });
    });
    property(arb, ({ g, x, dy, gamma, beta, mean, variance, eps }) => {
      const N = x.length;
      check(
        sub,
        ref,
        "batchNormForwardTraining",
        { inputs: { x, gamma, beta }, outputs: { y: N, mean: g.c, variance: g.c } },
        (be, s) => be.batchNormForwardTraining({ ...s, geom: g, eps } as never),
        { scale: bnScales(g, eps, x, dy, gamma, beta, null) },
      );
      check(
        sub,
        ref,
        "batchNormForwardInference",
        { inputs: { x, gamma, beta, mean, variance }, outputs: { y: N } },
        (be, s) => be.batchNormForwardInference({ ...s, geom: g, eps } as never),
        // As in the fused test: y may cancel (gamma xhat against beta); judge it by their size.
        { scale: bnScales(g, eps, x, dy, gamma, beta, { mean, variance }) },
      );
      check(
        sub,
        ref,
        "batchNormBackward",
        {
          inputs: { x, dy, gamma, mean, variance },
          outputs: { dx: N, dgamma: g.c, dbeta: g.c },
        },
        (be, s) => be.batchNormBackward({ ...s, geom: g, eps } as never),
        { scale: bnScales(g, eps, x, dy, gamma, beta, { mean, variance }) },
      );
    });
  });

  d("maxPool2d forward / backward (ties: first maximum)", (sub, ref) => {
    const arb = poolGeometry.chain((g) =>
      fc.tuple(
        fc.constant(g),
        fc.oneof(ints(g.n * g.c * g.h * g.w), vals(g.n * g.c * g.h * g.w)),
        vals(g.n * g.c * g.outH * g.outW),
      )
    );
    property(arb, ([geom, x, dy]) => {
      check(
        sub,
        ref,
        "maxPool2dForward",
        { inputs: { x }, outputs: { y: dy.length } },
        (be, s) => be.maxPool2dForward({ x: s.x, y: s.y, geom }),
      );
      check(
        sub,
        ref,
        "maxPool2dBackward",
        { inputs: { x, dy }, outputs: { dx: x.length } },
        (be, s) => be.maxPool2dBackward({ x: s.x, dy: s.dy, dx: s.dx, geom }),
      );
    });
  });

  d("globalAvgPool forward / backward", (sub, ref) => {
    const shape = fc.record({
      n: fc.integer({ min: 1, max: 4 }),
      c: channels,
      hw: fc.integer({ min: 1, max: 30 }),
    });
    const arb = shape.chain((p) =>
      fc.tuple(fc.constant(p), vals(p.n * p.c * p.hw), vals(p.n * p.c))
    );
    property(
      arb,
      ([p, x, dy]) => {
        // A mean's error is bounded relative to the mean of |terms| (the result may cancel to ~0).
        check(
          sub,
          ref,
          "globalAvgPool",
          { inputs: { x }, outputs: { y: dy.length } },
          (be, s) => be.globalAvgPool({ ...p, x: s.x, y: s.y }),
          { absCall: { inputs: { x: abs(x) }, outputs: { y: dy.length } } },
        );
        check(
          sub,
          ref,
          "globalAvgPoolBackward",
          { inputs: { dy }, outputs: { dx: x.length } },
          (be, s) => be.globalAvgPoolBackward({ ...p, dy: s.dy, dx: s.dx }),
        );
      },
      RUNS,
      [AVG_POOL_CANCELLATION],
    );
  });

  d("gemm (transposes, alpha, beta; beta = 0 ignores NaN in c)", (sub, ref) => {
    const dims = fc.record({
      m: fc.integer({ min: 1, max: 24 }),
      n: fc.integer({ min: 1, max: 24 }),
      k: fc.integer({ min: 0, max: 40 }),
      transA: fc.boolean(),
      transB: fc.boolean(),
      alpha: fc.constantFrom(1, 0.5, 2),
      beta: fc.constantFrom(0, 1, 0.25),
    });
    const arb = dims.chain((p) =>
      fc.tuple(fc.constant(p), vals(p.m * p.k), vals(p.k * p.n), vals(p.m * p.n))
    );
    property(arb, ([p, a, b, c]) => {
      const kernel = (be: Backend, s: Bound) => be.gemm({ ...p, a: s.a, b: s.b, c: s.c });
      const call = (a: Float32Array, b: Float32Array, c: Float32Array): Call =>
        p.beta === 0
          ? { inputs: { a, b }, outputs: { c: c.length } }
          : { inputs: { a, b }, outputs: {}, inOut: { c } };
      check(sub, ref, "gemm", call(a, b, c), kernel, { absCall: call(abs(a), abs(b), abs(c)) });
    }, 25);
  });

  d("row-wise: softmax, logSoftmax, l2Normalize and their backward", (sub, ref) => {
    const arb = rowShape.chain((p) => {
      const n = p.rows * p.cols;
      return fc.record({
        p: fc.constant(p),
        x: vals(n, -10, 10),
        dy: vals(n),
        prob: vals(n, 0, 1),
        logp: vals(n, -6, 0),
        zeroRow: fc.integer({ min: -1, max: p.rows - 1 }),
      });
    });
    property(
      arb,
      ({ p, x, dy, prob, logp, zeroRow }) => {
        const n = x.length;
        const r = { rows: p.rows, cols: p.cols };
        const xz = x.slice();
        if (zeroRow >= 0) xz.fill(0, zeroRow * p.cols, (zeroRow + 1) * p.cols);
        check(
          sub,
          ref,
          "softmax",
          { inputs: { x }, outputs: { y: n } },
          (be, s) => be.softmax({ ...r, x: s.x, y: s.y }),
        );
        check(
          sub,
          ref,
          "logSoftmax",
          { inputs: { x }, outputs: { y: n } },
          (be, s) => be.logSoftmax({ ...r, x: s.x, y: s.y }),
          // Log-probabilities are O(1): measure their error against 1 (the log-sum-exp of one term
          // is 0 exactly in f64, within ~1e-6 of it with a vectorised f32 log).
          { scaleFloor: 1 },
        );
        check(
          sub,
          ref,
          "softmaxBackward",
          { inputs: { y: prob, dy }, outputs: { dx: n } },
          (be, s) => be.softmaxBackward({ ...r, y: s.y, dy: s.dy, dx: s.dx }),
          { scale: { dx: softmaxBackwardScale(prob, dy, p.rows, p.cols) } },
        );
        check(
          sub,
          ref,
          "logSoftmaxBackward",
          { inputs: { y: logp, dy }, outputs: { dx: n } },
          (be, s) => be.logSoftmaxBackward({ ...r, y: s.y, dy: s.dy, dx: s.dx }),
          { scale: { dx: logSoftmaxBackwardScale(logp, dy, p.rows, p.cols) } },
        );
        check(
          sub,
          ref,
          "l2Normalize",
          { inputs: { x: xz }, outputs: { y: n } },
          (be, s) => be.l2Normalize({ ...r, x: s.x, y: s.y, eps: 1e-12 }),
        );
        check(
          sub,
          ref,
          "l2NormalizeBackward",
          { inputs: { x: xz, dy }, outputs: { dx: n } },
          (be, s) => be.l2NormalizeBackward({ ...r, x: s.x, dy: s.dy, dx: s.dx, eps: 1e-12 }),
          { scale: { dx: l2NormalizeBackwardScale(xz, dy, p.rows, p.cols, 1e-12) } },
        );
      },
      RUNS,
      [L2_TINY_ROW],
    );
  });

  d("matrix rows: addRowVector, sumRows, gatherRows", (sub, ref) => {
    const arb = rowShape.chain((p) =>
      fc.record({
        p: fc.constant(p),
        x: vals(p.rows * p.cols),
        bias: vals(p.cols),
        index: fc.array(fc.integer({ min: 0, max: p.rows - 1 }), {
          minLength: p.rows,
          maxLength: p.rows,
        }),
      })
    );
    property(
      arb,
      ({ p, x, bias, index }) => {
        const r = { rows: p.rows, cols: p.cols };
        check(
          sub,
          ref,
          "addRowVector",
          { inputs: { x, bias }, outputs: { y: x.length } },
          (be, s) => be.addRowVector({ ...r, x: s.x, bias: s.bias, y: s.y }),
        );
        // A sum's error is bounded relative to the sum of |terms| (the result may cancel to ~0).
        check(
          sub,
          ref,
          "sumRows",
          { inputs: { x }, outputs: { out: p.cols } },
          (be, s) => be.sumRows({ ...r, x: s.x, out: s.out }),
          { absCall: { inputs: { x: abs(x) }, outputs: { out: p.cols } } },
        );
        check(
          sub,
          ref,
          "gatherRows",
          { inputs: { x, index: Int32Array.from(index) }, outputs: { y: x.length } },
          (be, s) => be.gatherRows({ ...r, x: s.x, index: s.index, y: s.y }),
        );
      },
      RUNS,
      [SUM_ROWS_CANCELLATION],
    );
  });

  defineElementwise(d);
  defineFused(d);
  defineSyncBatchNorm(d);
  defineOptim(d);
  defineAugment(d);
  defineValidator(name, make);
  defineLayoutChains(name, make);
  defineResNetConformance(name, make);
}
