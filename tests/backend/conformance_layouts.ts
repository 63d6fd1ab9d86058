/**
 * Layout chains of the conformance suite: sequences of kernels as a network runs them, so that a
 * backend keeping its own memory formats (oneDNN's blocked nChw16c, padded channel blocks) is
 * checked where formats meet: a blocked output feeding a plain-only kernel (gemm on a reshaped
 * view, a partial copy), elementwise kernels mixing a blocked and a plain operand, multi-tensor
 * SGD on weights convolutions reordered, and memory operations (upload at an offset, fill, copy) in between.
 *
 * @module
 */

import fc from "fast-check";
import assert from "node:assert/strict";
import type { Backend, Conv2dGeometry, Storage } from "../../src/backend/backend.ts";
import { outputSize } from "../../src/backend/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { assertClose } from "./conformance_harness.ts";
import { vals } from "./conformance_spec.ts";

/**
 * Chained kernels accumulate f32 rounding: relative tolerance of chain outputs, against the
 * magnitude of the terms each output is computed from (see `chainScales`).
 */
const CHAIN_RTOL = 1e-3;

interface ChainCase {
  n: number;
  c: number;
  h: number;
  w: number;
  k: number;
  k2: number;
  d: number;
  x: Float32Array;
  w1: Float32Array;
  w2: Float32Array;
  fcW: Float32Array;
  gamma: Float32Array;
  beta: Float32Array;
  p: Float32Array;
  dO: Float32Array;
}

const chainCase: fc.Arbitrary<ChainCase> = fc.record({
  n: fc.integer({ min: 1, max: 3 }),
  c: fc.integer({ min: 1, max: 5 }),
  h: fc.integer({ min: 3, max: 8 }),
  w: fc.integer({ min: 3, max: 8 }),
  k: fc.constantFrom(5, 16, 20, 32),
  k2: fc.constantFrom(8, 16, 24),
  d: fc.integer({ min: 1, max: 5 }),
}).chain((s) => {
  const oh = outputSize(s.h, 1, 2, 0), ow = outputSize(s.w, 1, 2, 0);
  return fc.record({
    ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, fc.constant(v)])),
    x: vals(s.n * s.c * s.h * s.w),
    w1: vals(s.k * s.c * 9, -1, 1),
    w2: vals(s.k2 * s.k, -1, 1),
    fcW: vals(s.k2 * s.d, -1, 1),
    gamma: vals(s.k, 0.5, 2),
    beta: vals(s.k, -1, 1),
    p: vals(s.n * s.k2 * oh * ow),
    dO: vals(s.n * s.d),
  }) as fc.Arbitrary<ChainCase>;
});

/** Runs the chain on `be`; returns every value worth comparing, downloaded. */
function runChain(be: Backend, t: ChainCase): Record<string, Float32Array> {
  const live: Storage[] = [];
  const up = (a: Float32Array) => {
    const s = be.alloc("f32", a.length);
    be.upload(s, a);
    live.push(s);
    return s;
  };
  const mk = (n: number) => up(new Float32Array(n).fill(NaN));
  const { n, c, h, w, k, k2, d } = t;
  const g1: Conv2dGeometry = {
    n,
    c,
    h,
    w,
    k,
    r: 3,
    s: 3,
    strideH: 1,
    strideW: 1,
    padH: 1,
    padW: 1,
    outH: h,
    outW: w,
  };
  const oh = outputSize(h, 1, 2, 0), ow = outputSize(w, 1, 2, 0);
  const g2: Conv2dGeometry = {
    n,
    c: k,
    h,
    w,
    k: k2,
    r: 1,
    s: 1,
    strideH: 2,
    strideW: 2,
    padH: 0,
    padW: 0,
    outH: oh,
    outW: ow,
  };
  const [x, w1, w2, fcW, gamma, beta, p, dO] = [t.x, t.w1, t.w2, t.fcW, t.gamma, t.beta, t.p, t.dO]
    .map(up);
  const A = n * k * h * w, B = n * k2 * oh * ow;
  const y1 = mk(A), z1 = mk(A), a1 = mk(A), mean = mk(k), vr = mk(k);
  be.conv2dForward({ x, w: w1, y: y1, geom: g1 });
  be.batchNormForwardTraining({
    x: y1,
    gamma,
    beta,
    y: z1,
    mean,
    variance: vr,
    geom: { n, c: k, hw: h * w },
    eps: 1e-5,
  });
  be.relu({ x: z1, y: a1, n: A });
  const y2 = mk(B), s2 = mk(B), f = mk(n * k2), o = mk(n * d);
  be.conv2dForward({ x: a1, w: w2, y: y2, geom: g2 });
  be.axpby({ x: y2, y: p, out: s2, alpha: 1, beta: 0.5, n: B }); // blocked + plain operand
  be.globalAvgPool({ x: s2, y: f, n, c: k2, hw: oh * ow });
  be.gemm({
    a: f,
    b: fcW,
    c: o,
    m: n,
    n: d,
    k: k2,
    transA: false,
    transB: false,
    alpha: 1,
    beta: 0,
  });
  // gemm straight on a blocked activation viewed as [n, k2 * oh * ow] (needs plain rows).
  const ones = up(new Float32Array(k2 * oh * ow).fill(1)), rowSums = mk(n);
  be.gemm({
    a: s2,
    b: ones,
    c: rowSums,
    m: n,
    n: 1,
    k: k2 * oh * ow,
    transA: false,
    transB: false,
    alpha: 1,
    beta: 0,
  });
  const df = mk(n * k2), ds = mk(B), dA1 = mk(A), dW2 = mk(k2 * k), dZ1 = mk(A);
  be.gemm({
    a: dO,
    b: fcW,
    c: df,
    m: n,
    n: k2,
    k: d,
    transA: false,
    transB: true,
    alpha: 1,
    beta: 0,
  });
  be.globalAvgPoolBackward({ dy: df, dx: ds, n, c: k2, hw: oh * ow });
  be.conv2dBackwardData({ dy: ds, w: w2, dx: dA1, geom: g2 });
  be.conv2dBackwardWeights({ x: a1, dy: ds, dw: dW2, geom: g2 });
  be.reluBackward({ y: a1, dy: dA1, dx: dZ1, n: A });
  const dY1 = mk(A), dG = mk(k), dB = mk(k), dW1 = mk(k * c * 9), buf = mk(k * c * 9);
  be.batchNormBackward({
    x: y1,
    dy: dZ1,
    gamma,
    mean,
    variance: vr,
    dx: dY1,
    dgamma: dG,
    dbeta: dB,
    geom: { n, c: k, hw: h * w },
    eps: 1e-5,
  });
  be.conv2dBackwardWeights({ x, dy: dY1, dw: dW1, geom: g1 });
  const buf2 = mk(k2 * k);
  be.fill(buf, 0);
  be.fill(buf2, 0);
  for (let step = 0; step < 2; step++) {
    be.sgdUpdateMulti({
      params: [w1, w2],
      grads: [dW1, dW2],
      momentumBufs: [buf, buf2],
      lr: 0.1,
      momentum: 0.9,
      weightDecay: [5e-4, 0],
      nesterov: false,
    });
  }
  const y1Again = mk(A); // forward with the updated (reordered) weights
  be.conv2dForward({ x, w: w1, y: y1Again, geom: g1 });
  // Memory operations on blocked storages: whole copy, partial copy, partial upload, in-place axpby.
  const whole = mk(A), part = mk(B + 7), sq = mk(A);
  be.copy({ src: a1, dst: whole, srcOffset: 0, dstOffset: 0, length: A });
  be.mul({ a: whole, b: a1, out: sq, n: A });
  be.upload(part, new Float32Array(7).fill(3), B);
  be.copy({ src: y2, dst: part, srcOffset: 1, dstOffset: 0, length: B - 1 });
  be.upload(part, new Float32Array([-2]), B - 1);
  be.axpby({ x: z1, y: a1, out: z1, alpha: 0.5, beta: -1, n: A });
  // A tail write into a blocked storage keeps the elements before it.
  const tail = mk(A), tailLen = Math.min(B, A - 1);
  be.copy({ src: a1, dst: tail, srcOffset: 0, dstOffset: 0, length: A });
  be.copy({ src: y2, dst: tail, srcOffset: 0, dstOffset: A - tailLen, length: tailLen });
  const named = { y1, z1, a1, mean, vr, y2, s2, f, o, rowSums, ds, dA1, dW2, dZ1, dY1, dG, dB };
  const more = { dW1, w1, buf, w2, buf2, y1Again, whole, part, sq, tail };
  const out = Object.fromEntries(
    Object.entries({ ...named, ...more }).map(([k, s]) => [k, be.download(s) as Float32Array]),
  );
  for (const s of live) be.free(s);
  return out;
}

function mx(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

/**
 * Per-output magnitude of the terms it is a sum of (bounds like max|x| * max|w| * terms for
 * convolutions and gemm, max|x| for means, 1/sigma for batch norm), so that an output that
 * cancels to nearly zero is judged against the size of what cancelled, not against itself.
 */
function chainScales(t: ChainCase, v: Record<string, Float32Array>): Record<string, number> {
  const { n, c, h, w, k, k2, d } = t;
  const N = n * h * w, oh = outputSize(h, 1, 2, 0), ow = outputSize(w, 1, 2, 0);
  let minVar = Infinity;
  for (const x of v.vr) minVar = Math.min(minVar, x);
  const invSigma = 1 / Math.sqrt(minVar + 1e-5);
  const y1 = mx(t.x) * mx(t.w1) * c * 9;
  const z1 = mx(t.gamma) * 2 * y1 * invSigma + mx(t.beta);
  const y2 = z1 * mx(t.w2) * k;
  const s2 = y2 + 0.5 * mx(t.p);
  const f = s2;
  const df = mx(t.dO) * mx(t.fcW) * d;
  const ds = df / (oh * ow);
  const dA1 = ds * mx(t.w2) * k2;
  const dG = dA1 * N * Math.sqrt(N);
  const dY1 = mx(t.gamma) * invSigma * dA1 * (2 + Math.sqrt(N));
  const dW1 = mx(t.x) * dY1 * N;
  const w1 = mx(t.w1) + 0.3 * dW1;
  return {
    y1,
    mean: y1,
    vr: y1 * y1,
    z1: 1.5 * z1,
    a1: z1,
    y2,
    s2,
    f,
    o: f * mx(t.fcW) * k2,
    rowSums: s2 * k2 * oh * ow,
    df,
    ds,
    dA1,
    dW2: z1 * ds * n * oh * ow,
    dZ1: dA1,
    dY1,
    dG,
    dB: dG,
    dW1,
    w1,
    buf: 2 * dW1,
    w2: mx(t.w2) + 0.3 * z1 * ds * n * oh * ow,
    buf2: 2 * z1 * ds * n * oh * ow,
    y1Again: mx(t.x) * w1 * c * 9,
    whole: z1,
    part: y2 + 3,
    sq: z1 * z1,
    tail: z1 + y2,
  };
}

/**
 * Whether the subject and the oracle took a different ReLU decision where it is within rounding of
 * 0 (one a1 is 0, the other positive but within a1's tolerance `tol`) and a gradient flows there:
 * dZ1 and everything after it are then ill-defined at that element, not wrong.
 */
function reluTie(
  got: Record<string, Float32Array>,
  want: Record<string, Float32Array>,
  tol: number,
) {
  const [ga, wa] = [got.a1, want.a1];
  for (let i = 0; i < wa.length; i++) {
    const flip = (ga[i] > 0) !== (wa[i] > 0);
    const tie = Math.max(Math.abs(ga[i]), Math.abs(wa[i])) <= tol;
    if (flip && tie && (got.dA1[i] !== 0 || want.dA1[i] !== 0)) return true;
  }
  return false;
}

/** A case with a ReLU tie (fast-check seed 953268697 on cuda; see the fixture's note). */
function reluTieCase(): ChainCase {
  const url = new URL("./fixtures/layout_chain_relu_tie.json", import.meta.url);
  const raw = JSON.parse(Deno.readTextFileSync(url)) as Record<string, number | number[]>;
  const out: Record<string, number | Float32Array> = {};
  for (const [k, v] of Object.entries(raw)) {
    if (k !== "note") out[k] = Array.isArray(v) ? Float32Array.from(v) : v;
  }
  return out as unknown as ChainCase;
}

/** Registers the layout-chain test for the backend `make` creates. */
export function defineLayoutChains(name: string, make: () => Backend): void {
  Deno.test(`conformance ${name}: layout chains (conv, BN, relu, pool, gemm, SGD, copies)`, () => {
    const subject = make();
    const oracle = createReferenceBackend();
    try {
      fc.assert(
        fc.property(chainCase, (t) => {
          const got = runChain(subject, t);
          const want = runChain(oracle, t);
          const scales = chainScales(t, want);
          // Such inputs are discarded, not judged (the a1 values themselves are still compared).
          if (reluTie(got, want, CHAIN_RTOL * scales.a1)) {
            assertClose(`${name} chain 'a1'`, got.a1, want.a1, undefined, CHAIN_RTOL, scales.a1);
            fc.pre(false);
          }
          for (const key of Object.keys(want)) {
            const what = `${name} chain '${key}'`;
            assertClose(what, got[key], want[key], undefined, CHAIN_RTOL, scales[key]);
          }
        }),
        { numRuns: 10, examples: [[reluTieCase()]] },
      );
      assert.equal(subject.liveAllocations(), 0);
    } finally {
      subject.dispose();
      oracle.dispose();
    }
  });
}
