/**
 * The cpu backend's fused batch norm (residual add and ReLU) on activations in oneDNN's blocked
 * layout, as a network feeds it: every variant (training / inference, with and without residual,
 * with and without ReLU; backward with the ReLU mask and the residual gradient) in f32 and bf16
 * equals the reference backend on the same inputs, and keeps the activations blocked: outputs come
 * out in x's layout and no reorder primitive runs (the conformance suite checks values from plain
 * inputs; this checks the layouts a network actually produces).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, Storage } from "../../src/backend/backend.ts";
import type { CpuBackend } from "../../src/backend/cpu/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { f32ArrayToBf16 } from "../../src/backend/bf16.ts";
import {
  assertNear,
  blockedActivation,
  cpuTest,
  layoutOf,
  lcg,
  readF32,
  upload,
} from "./cpu_test_util.ts";

const [N, C, H, W] = [2, 32, 5, 5];
const SIZE = N * C * H * W;
const GEOM = { n: N, c: C, hw: H * W };
const EPS = 1e-5;
const RTOL = { f32: 1e-4, bf16: 1e-2 };

type Float = "f32" | "bf16";

/** Reorder primitives created so far (a layout conversion creates one on first use). */
function reorders(be: CpuBackend): number {
  return be.rt.implementations().filter((p) => p.what === "reorder").length;
}

/** Uploads a host array as a new storage of `be`. */
function put(be: Backend, host: ReturnType<Backend["download"]>): Storage {
  const dtype = host instanceof Uint16Array ? "bf16" : host instanceof Float32Array ? "f32" : null;
  assert.ok(dtype, "float host arrays only");
  const s = be.alloc(dtype, host.length);
  be.upload(s, host);
  return s;
}

interface Inputs {
  x: Storage;
  residual: Storage;
  dy: Storage;
  gamma: Storage;
  beta: Storage;
  mean: Storage;
  variance: Storage;
}

/** The same inputs on the reference backend (values as the cpu holds them). */
function mirror(cpu: CpuBackend, ref: Backend, i: Inputs): Inputs {
  const out = {} as Record<keyof Inputs, Storage>;
  for (const [k, s] of Object.entries(i)) out[k as keyof Inputs] = put(ref, cpu.download(s));
  return out;
}

/** Runs forward (+ backward in training) with the given fusion on `be`; outputs by name. */
function run(
  be: Backend,
  i: Inputs,
  t: Float,
  o: { training: boolean; residual: boolean; relu: boolean; dresidual: boolean },
): Record<string, Storage> {
  const y = be.alloc(t, SIZE);
  const residual = o.residual ? i.residual : null;
  const out: Record<string, Storage> = { y };
  const common = { x: i.x, gamma: i.gamma, beta: i.beta, y, geom: GEOM, eps: EPS };
  if (!o.training) {
    const s = { mean: i.mean, variance: i.variance };
    be.batchNormForwardInference({ ...common, ...s, residual, relu: o.relu });
    return out;
  }
  const mean = be.alloc("f32", C), variance = be.alloc("f32", C);
  be.batchNormForwardTraining({ ...common, mean, variance, residual, relu: o.relu });
  const dx = be.alloc(t, SIZE), dgamma = be.alloc("f32", C), dbeta = be.alloc("f32", C);
  const dresidual = o.dresidual ? be.alloc(t, SIZE) : null;
  be.batchNormBackward({
    x: i.x,
    dy: i.dy,
    gamma: i.gamma,
    mean,
    variance,
    dx,
    dgamma,
    dbeta,
    geom: GEOM,
    eps: EPS,
    relu: o.relu,
    y: o.relu ? y : null,
    dresidual,
  });
  Object.assign(out, { mean, variance, dx, dgamma, dbeta });
  if (dresidual) out.dresidual = dresidual;
  return out;
}

for (const t of ["f32", "bf16"] as const) {
  cpuTest(
    `cpu: fused batch norm on blocked ${t} activations equals the reference, stays blocked`,
    (be) => {
      const ref = createReferenceBackend();
      const inputs: Inputs = {
        x: blockedActivation(be, t, [N, C, H, W], 1),
        residual: blockedActivation(be, t, [N, C, H, W], 2),
        dy: blockedActivation(be, t, [N, C, H, W], 3),
        gamma: upload(be, lcg(4, C)),
        beta: upload(be, lcg(5, C)),
        mean: upload(be, lcg(6, C, 0.5)),
        variance: upload(be, lcg(7, C).map((v) => 0.5 + v * v)),
      };
      const xLayout = layoutOf(inputs.x);
      assert.equal(xLayout.blocked, true, "a convolution output should be blocked");
      const refInputs = mirror(be, ref, inputs);
      for (const training of [true, false]) {
        for (const residual of [false, true]) {
          for (const relu of [false, true]) {
            for (const dresidual of training ? [false, true] : [false]) {
              const o = { training, residual, relu, dresidual };
              const what = `${t} ${JSON.stringify(o)}`;
              const before = reorders(be);
              const got = run(be, inputs, t, o);
              assert.equal(reorders(be), before, `${what}: a reorder ran`);
              for (const k of ["y", "dx", "dresidual"]) {
                if (got[k]) assert.deepEqual(layoutOf(got[k]), xLayout, `${what}: '${k}' layout`);
              }
              const want = run(ref, refInputs, t, o);
              for (const [k, s] of Object.entries(want)) {
                assertNear(`${what} '${k}'`, readF32(be, got[k]), readF32(ref, s), RTOL[t]);
                be.free(got[k]);
                ref.free(s);
              }
            }
          }
        }
      }
      for (const s of Object.values(inputs)) be.free(s);
      assert.equal(be.liveAllocations(), 0);
    },
  );
}

cpuTest("cpu: bf16 batch norm + residual rounds once (a cancelling residual)", (be) => {
  // One non-zero value in channel 11: batch norm makes it ≈2.1665, the residual is ≈-2.1719 in
  // bf16, so the sum ≈0.0024 is far below a bf16 unit of the batch-norm output (2^-6): rounding
  // that output to bf16 before the add (two roundings) gave 0 here (found by the conformance
  // property with seed -1739829746).
  const [n, c, hw] = [3, 16, 8], size = n * c * hw;
  const x = new Float32Array(size), r = new Float32Array(size), gamma = new Float32Array(c);
  x[351] = 3.8984375;
  r[351] = -2.164062738418579;
  gamma[11] = 0.45337924361228943;
  const ref = createReferenceBackend();
  const results = [be, ref].map((b) => {
    const put = (a: Float32Array | Uint16Array) => {
      const s = b.alloc(a instanceof Uint16Array ? "bf16" : "f32", a.length);
      b.upload(s, a);
      return s;
    };
    const y = b.alloc("bf16", size), mean = b.alloc("f32", c), variance = b.alloc("f32", c);
    b.batchNormForwardTraining({
      x: put(f32ArrayToBf16(x)),
      gamma: put(gamma),
      beta: put(new Float32Array(c)),
      y,
      mean,
      variance,
      geom: { n, c, hw },
      eps: 1e-5,
      residual: put(f32ArrayToBf16(r)),
      relu: false,
    });
    return readF32(b, y);
  });
  assert.ok(results[1][351] > 0.002, `the reference gives ${results[1][351]}`);
  assert.deepEqual(results[0], results[1]);
});
