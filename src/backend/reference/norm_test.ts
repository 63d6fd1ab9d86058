import assert from "node:assert/strict";
import type { BatchNormGeometry } from "../backend.ts";
import { createReferenceBackend } from "./backend.ts";
import {
  assertClose,
  finiteDifference,
  poisoned,
  randomArray,
  read,
  upload,
} from "./test_helpers.ts";

const geom: BatchNormGeometry = { n: 2, c: 3, hw: 4 };
const size = geom.n * geom.c * geom.hw;
const eps = 1e-5;

/** Per-channel mean, biased variance and normalised output written directly from the definition. */
function directBatchNorm(x: Float32Array, gamma: Float32Array, beta: Float32Array) {
  const { n, c, hw } = geom;
  const mean: number[] = [];
  const variance: number[] = [];
  const y = new Float64Array(x.length);
  for (let ch = 0; ch < c; ch++) {
    const values: number[] = [];
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < hw; p++) values.push(x[(i * c + ch) * hw + p]);
    }
    const mu = values.reduce((a, v) => a + v, 0) / values.length;
    const v = values.reduce((a, u) => a + (u - mu) ** 2, 0) / values.length;
    mean.push(mu);
    variance.push(v);
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < hw; p++) {
        const at = (i * c + ch) * hw + p;
        y[at] = gamma[ch] * (x[at] - mu) / Math.sqrt(v + eps) + beta[ch];
      }
    }
  }
  return { mean, variance, y };
}

Deno.test("reference batchNormForwardTraining matches the direct formula (biased variance)", () => {
  const b = createReferenceBackend();
  const xs = randomArray(31, size, -2, 3);
  const gs = randomArray(32, geom.c, 0.5, 1.5);
  const bs = randomArray(33, geom.c);
  const [x, gamma, beta] = [upload(b, xs), upload(b, gs), upload(b, bs)];
  const [y, mean, variance] = [poisoned(b, size), poisoned(b, geom.c), poisoned(b, geom.c)];
  b.batchNormForwardTraining({ x, gamma, beta, y, mean, variance, geom, eps });
  const expected = directBatchNorm(xs, gs, bs);
  assertClose(read(b, mean), expected.mean, 1e-7, 1e-6, "mean");
  assertClose(read(b, variance), expected.variance, 1e-7, 1e-6, "variance");
  assertClose(read(b, y), expected.y, 1e-6, 1e-5, "y");

  // Inference mode with the batch statistics reproduces the training output.
  const yInf = poisoned(b, size);
  b.batchNormForwardInference({ x, gamma, beta, mean, variance, y: yInf, geom, eps });
  assertClose(read(b, yInf), expected.y, 1e-6, 1e-5, "inference with batch statistics");
});

Deno.test("reference batchNormForwardInference uses the given statistics", () => {
  const b = createReferenceBackend();
  const g1: BatchNormGeometry = { n: 1, c: 2, hw: 2 };
  const x = upload(b, [1, 3, -2, 6]);
  const gamma = upload(b, [2, 0.5]);
  const beta = upload(b, [0.25, -1]);
  const mean = upload(b, [1, 2]);
  const variance = upload(b, [4 - eps, 16 - eps]);
  const y = poisoned(b, 4);
  b.batchNormForwardInference({ x, gamma, beta, mean, variance, y, geom: g1, eps });
  // channel 0: 2 * (x - 1) / 2 + 0.25; channel 1: 0.5 * (x - 2) / 4 - 1.
  assertClose(read(b, y), [0.25, 2.25, -1.5, -0.5], 1e-6, 1e-6, "y");
});

Deno.test("reference batch norm of a constant channel gives beta, finite gradients", () => {
  const b = createReferenceBackend();
  const g1: BatchNormGeometry = { n: 2, c: 1, hw: 2 };
  const x = upload(b, [3, 3, 3, 3]);
  const gamma = upload(b, [2]);
  const beta = upload(b, [0.5]);
  const [y, mean, variance] = [poisoned(b, 4), poisoned(b, 1), poisoned(b, 1)];
  b.batchNormForwardTraining({ x, gamma, beta, y, mean, variance, geom: g1, eps });
  assert.deepEqual([...read(b, y)], [0.5, 0.5, 0.5, 0.5]);
  assert.deepEqual([...read(b, mean), ...read(b, variance)], [3, 0]);
  const dy = upload(b, [1, -2, 3, 0.5]);
  const [dx, dgamma, dbeta] = [poisoned(b, 4), poisoned(b, 1), poisoned(b, 1)];
  b.batchNormBackward({ x, dy, gamma, mean, variance, dx, dgamma, dbeta, geom: g1, eps });
  // xhat = 0 everywhere: dbeta = sum dy, dgamma = 0, dx = gamma/sqrt(eps) * (dy - mean(dy)).
  const k = 2 / Math.sqrt(eps);
  assertClose(
    read(b, dx),
    [1 - 0.625, -2 - 0.625, 3 - 0.625, 0.5 - 0.625].map((v) => k * v),
    0,
    1e-5,
    "dx",
  );
  assert.deepEqual([...read(b, dgamma), ...read(b, dbeta)], [0, 2.5]);
});

Deno.test("reference batchNormBackward matches finite differences of the forward", () => {
  const b = createReferenceBackend();
  const xs = randomArray(41, size, -2, 2);
  const gs = randomArray(42, geom.c, 0.5, 1.5);
  const bs = randomArray(43, geom.c);
  const weights = randomArray(44, size);
  const forward = (xv: Float32Array, gv: Float32Array, bv: Float32Array) => {
    const [x, gamma, beta] = [upload(b, xv), upload(b, gv), upload(b, bv)];
    const [y, mean, variance] = [poisoned(b, size), poisoned(b, geom.c), poisoned(b, geom.c)];
    b.batchNormForwardTraining({ x, gamma, beta, y, mean, variance, geom, eps });
    const out = read(b, y);
    for (const s of [x, gamma, beta, y, mean, variance]) b.free(s);
    return out;
  };
  const [x, gamma, beta, dy] = [upload(b, xs), upload(b, gs), upload(b, bs), upload(b, weights)];
  const [y, mean, variance] = [poisoned(b, size), poisoned(b, geom.c), poisoned(b, geom.c)];
  b.batchNormForwardTraining({ x, gamma, beta, y, mean, variance, geom, eps });
  const [dx, dgamma, dbeta] = [poisoned(b, size), poisoned(b, geom.c), poisoned(b, geom.c)];
  b.batchNormBackward({ x, dy, gamma, mean, variance, dx, dgamma, dbeta, geom, eps });
  const h = 1e-2;
  const fdX = finiteDifference((v) => forward(v, gs, bs), xs, weights, h);
  const fdGamma = finiteDifference((v) => forward(xs, v, bs), gs, weights, h);
  const fdBeta = finiteDifference((v) => forward(xs, gs, v), bs, weights, h);
  assertClose(read(b, dx), fdX, 1e-3, 1e-2, "dx");
  assertClose(read(b, dgamma), fdGamma, 1e-3, 1e-3, "dgamma");
  assertClose(read(b, dbeta), fdBeta, 1e-3, 1e-3, "dbeta");
  // dx of batch norm sums to zero per channel (the mean is subtracted).
  const dxs = read(b, dx);
  for (let ch = 0; ch < geom.c; ch++) {
    let total = 0;
    for (let i = 0; i < geom.n; i++) {
      for (let p = 0; p < geom.hw; p++) total += dxs[(i * geom.c + ch) * geom.hw + p];
    }
    assert.ok(Math.abs(total) < 1e-5, `channel ${ch}: sum of dx is ${total}`);
  }
  assert.equal(b.liveAllocations(), 10);
});

Deno.test("reference batch norm rejects short statistics and aliasing outputs", () => {
  const b = createReferenceBackend();
  const x = upload(b, randomArray(1, size));
  const gamma = upload(b, [1, 1]);
  const beta = upload(b, [0, 0, 0]);
  const [y, mean, variance] = [poisoned(b, size), poisoned(b, 3), poisoned(b, 3)];
  assert.throws(
    () => b.batchNormForwardTraining({ x, gamma, beta, y, mean, variance, geom, eps }),
    /Cannot run batchNormForwardTraining: storage 'gamma' has 2 elements, expected at least 3/,
  );
  assert.throws(
    () => b.batchNormForwardTraining({ x, gamma: beta, beta, y, mean, variance: mean, geom, eps }),
    /'variance' is the same storage as 'mean'/,
  );
  assert.throws(
    () => b.batchNormForwardInference({ x, gamma: beta, beta, mean, variance, y, geom, eps: -1 }),
    /'eps' is -1, expected eps >= 0/,
  );
});
