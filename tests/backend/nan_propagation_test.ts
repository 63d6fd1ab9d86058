/**
 * NaN propagates as in PyTorch (and the reference backend) on every backend: `relu(NaN) = NaN`,
 * max pooling lets a NaN win its window, batch norm (alone, with ReLU, with a residual add and ReLU)
 * turns a NaN in x, the residual, gamma or beta into NaN outputs, and the ReLU masks of the backward
 * passes follow the reference. Issue 14, case 6: oneDNN's ReLU (`max(x, 0)`, as eltwise and as the
 * post-op after the residual add) returned 0 for NaN and its max pooling skipped NaN, so the cpu
 * backend trained on with a finite loss where the reference's loss was NaN.
 *
 * Every output is compared with the reference backend's: NaN exactly where the reference has NaN,
 * the same infinities, and finite values within the conformance tolerance. Activations also come
 * from a convolution (so the cpu backend sees them in its blocked layout, as in a network).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, Conv2dGeometry, Storage } from "../../src/backend/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { forEachBackend } from "../backends.ts";
import { readF32, uploadNew } from "./conformance_harness.ts";

/** NaN where `expected` has NaN, equal infinities, finite values within 1e-4 normwise. */
function assertSameNaN(what: string, actual: Float32Array, expected: Float32Array): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let norm = 0;
  for (const e of expected) if (Number.isFinite(e)) norm = Math.max(norm, Math.abs(e));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) || !Number.isFinite(e)) {
      assert.ok(
        Object.is(a, e) || (Number.isNaN(a) && Number.isNaN(e)),
        `${what}[${i}] = ${a}, expected ${e}`,
      );
      continue;
    }
    assert.ok(
      Math.abs(a - e) <= 1e-4 * (Math.abs(e) + norm) + 1e-30,
      `${what}[${i}] = ${a}, expected ${e}`,
    );
  }
}

/** n deterministic values in [-2, 2). */
function data(seed: number, n: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 4 - 2;
  }
  return out;
}

function withNaN(a: Float32Array, at: number[]): Float32Array {
  const out = a.slice();
  for (const i of at) out[i] = NaN;
  return out;
}

const N = 2, C = 32, H = 4, W = 4, HW = H * W, COUNT = N * C * HW;
const GEOM = { n: N, c: C, hw: HW };

/**
 * x in the layout a convolution writes (a 1x1 convolution with identity weights of `values`):
 * a NaN at (n, c, p) makes every channel of pixel (n, p) NaN (0 * NaN), on every backend alike.
 */
function convOutput(be: Backend, values: Float32Array): Storage {
  const g: Conv2dGeometry = {
    n: N,
    c: C,
    h: H,
    w: W,
    k: C,
    r: 1,
    s: 1,
    strideH: 1,
    strideW: 1,
    padH: 0,
    padW: 0,
    outH: H,
    outW: W,
  };
  const eye = new Float32Array(C * C);
  for (let i = 0; i < C; i++) eye[i * C + i] = 1;
  const x = uploadNew(be, values), w = uploadNew(be, eye);
  const y = be.alloc("f32", COUNT);
  be.conv2dForward({ x, w, y, geom: g });
  be.free(x);
  be.free(w);
  return y;
}

type Inputs = Record<string, Float32Array>;
type Make = (be: Backend, name: string, v: Float32Array) => Storage;
const plain: Make = (be, _name, v) => uploadNew(be, v);
const blocked: Make = (be, name, v) =>
  v.length === COUNT && name !== "dy" ? convOutput(be, v) : uploadNew(be, v);

/** Runs `kernel` on both backends with `inputs` (made by `make`) and NaN-poisoned outputs. */
function compare(
  subject: Backend,
  oracle: Backend,
  what: string,
  inputs: Inputs,
  outputs: Record<string, number>,
  kernel: (be: Backend, s: Record<string, Storage>) => void,
  make: Make = plain,
): void {
  const results = [subject, oracle].map((be) => {
    const s: Record<string, Storage> = {};
    for (const [name, v] of Object.entries(inputs)) s[name] = make(be, name, v);
    for (const [name, n] of Object.entries(outputs)) {
      s[name] = uploadNew(be, new Float32Array(n).fill(NaN));
    }
    kernel(be, s);
    const out: Record<string, Float32Array> = {};
    for (const name of Object.keys(outputs)) out[name] = readF32(be, s[name]);
    for (const st of Object.values(s)) be.free(st);
    return out;
  });
  for (const name of Object.keys(outputs)) {
    assertSameNaN(`${subject.name} ${what} '${name}'`, results[0][name], results[1][name]);
  }
}

forEachBackend("nan propagation", (b) => {
  const test = (name: string, fn: (sub: Backend, ref: Backend) => void) =>
    Deno.test(`nan propagation ${b.name}: ${name}`, () => {
      const sub = b.create(), ref = createReferenceBackend();
      try {
        fn(sub, ref);
        assert.equal(sub.liveAllocations(), 0, "leaked storages");
      } finally {
        sub.dispose();
        ref.dispose();
      }
    });

  test("relu and reluBackward (plain and blocked inputs, small and large)", (sub, ref) => {
    for (const n of [7, COUNT, 70_000]) {
      const x = withNaN(data(1, n), [0, 3, n - 1]);
      x[1] = Infinity;
      x[2] = -Infinity;
      for (const make of [plain, blocked]) {
        compare(
          sub,
          ref,
          `relu x${n}`,
          { x },
          { y: n },
          (be, s) => be.relu({ x: s.x, y: s.y, n }),
          make,
        );
        // reluBackward: NaN in y (masked off: y > 0 is false) and in dy (kept only where y > 0).
        const y = withNaN(data(2, n), [1, 5]);
        const dy = withNaN(data(3, n), [2, 4, 6]);
        compare(
          sub,
          ref,
          `reluBackward x${n}`,
          { y, dy },
          { dx: n },
          (be, s) => be.reluBackward({ y: s.y, dy: s.dy, dx: s.dx, n }),
          make,
        );
      }
    }
  });

  test("maxPool2dForward / Backward: NaN wins its window", (sub, ref) => {
    const g = {
      n: N,
      c: C,
      h: H,
      w: W,
      kernelH: 3,
      kernelW: 3,
      strideH: 2,
      strideW: 2,
      padH: 1,
      padW: 1,
      outH: 2,
      outW: 2,
    };
    const x = withNaN(data(4, COUNT), [5, 16 * 7 + 10, COUNT - 1]);
    const dy = data(5, N * C * 4);
    for (const make of [plain, blocked]) {
      compare(
        sub,
        ref,
        "maxPool2dForward",
        { x },
        { y: N * C * 4 },
        (be, s) => be.maxPool2dForward({ x: s.x, y: s.y, geom: g }),
        make,
      );
      compare(
        sub,
        ref,
        "maxPool2dBackward",
        { x, dy },
        { dx: COUNT },
        (be, s) => be.maxPool2dBackward({ x: s.x, dy: s.dy, dx: s.dx, geom: g }),
        make,
      );
    }
  });

  test(
    "batchNormForwardTraining / Inference (+residual, +ReLU) with NaN in x, residual, gamma or beta",
    (sub, ref) => {
      const x0 = data(6, COUNT), r0 = data(7, COUNT);
      const gamma0 = data(8, C), beta0 = data(9, C);
      const mean = data(10, C).map((v) => v / 4), variance = data(11, C).map((v) => 1 + v * v);
      const cases: [string, Inputs][] = [
        ["x", { x: withNaN(x0, [17]), residual: r0, gamma: gamma0, beta: beta0 }],
        ["residual", { x: x0, residual: withNaN(r0, [40, COUNT - 3]), gamma: gamma0, beta: beta0 }],
        ["gamma", { x: x0, residual: r0, gamma: withNaN(gamma0, [3]), beta: beta0 }],
        ["beta", { x: x0, residual: r0, gamma: gamma0, beta: withNaN(beta0, [C - 1]) }],
        ["nothing", { x: x0, residual: r0, gamma: gamma0, beta: beta0 }],
      ];
      for (const [where, inputs] of cases) {
        for (const relu of [false, true]) {
          for (const withResidual of [false, true]) {
            for (const make of [plain, blocked]) {
              const what = `NaN in ${where}, relu ${relu}, residual ${withResidual}`;
              const { residual, ...rest } = inputs;
              const ins = withResidual ? inputs : rest;
              compare(sub, ref, `batchNormForwardTraining (${what})`, ins, {
                y: COUNT,
                mean: C,
                variance: C,
              }, (be, s) =>
                be.batchNormForwardTraining({
                  x: s.x,
                  gamma: s.gamma,
                  beta: s.beta,
                  y: s.y,
                  mean: s.mean,
                  variance: s.variance,
                  geom: GEOM,
                  eps: 1e-5,
                  relu,
                  residual: withResidual ? s.residual : null,
                }), make);
              compare(sub, ref, `batchNormForwardInference (${what})`, { ...ins, mean, variance }, {
                y: COUNT,
              }, (be, s) =>
                be.batchNormForwardInference({
                  x: s.x,
                  gamma: s.gamma,
                  beta: s.beta,
                  mean: s.mean,
                  variance: s.variance,
                  y: s.y,
                  geom: GEOM,
                  eps: 1e-5,
                  relu,
                  residual: withResidual ? s.residual : null,
                }), make);
              void residual;
            }
          }
        }
      }
    },
  );

  test("batchNormBackward: NaN in y (masked off) and dy (masked where y <= 0)", (sub, ref) => {
    const x = data(12, COUNT), gamma = data(13, C);
    const mean = data(14, C).map((v) => v / 4), variance = data(15, C).map((v) => 1 + v * v);
    const y = withNaN(data(16, COUNT), [8, 100]);
    const dy = withNaN(data(17, COUNT), [9, 33, 200]);
    for (const relu of [false, true]) {
      for (const make of [plain, blocked]) {
        compare(sub, ref, `batchNormBackward relu ${relu}`, { x, dy, gamma, mean, variance, y }, {
          dx: COUNT,
          dgamma: C,
          dbeta: C,
          dresidual: COUNT,
        }, (be, s) =>
          be.batchNormBackward({
            x: s.x,
            dy: s.dy,
            gamma: s.gamma,
            mean: s.mean,
            variance: s.variance,
            dx: s.dx,
            dgamma: s.dgamma,
            dbeta: s.dbeta,
            geom: GEOM,
            eps: 1e-5,
            relu,
            y: relu ? s.y : null,
            dresidual: s.dresidual,
          }), make);
      }
    }
  });
});
