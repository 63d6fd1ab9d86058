/**
 * `CpuStorage.nanFree` (`src/backend/cpu/nan.ts`) is a fact about a storage's current values, never
 * a memory of earlier calls: kernels whose output cannot hold NaN set it (so the fused batch norm
 * skips scanning its residual), a kernel that only reads the storage (a convolution, even when it
 * reorders the storage to another layout) keeps it, and every way of writing the storage clears it.
 * A stale flag would let oneDNN's ReLU turn a NaN residual into 0: the last test shows the
 * consequence is caught (NaN written after the flag was set comes out as NaN).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Storage } from "../../src/backend/backend.ts";
import type { CpuBackend } from "../../src/backend/cpu/backend.ts";
import type { CpuStorage } from "../../src/backend/cpu/storage.ts";
import { blockedActivation, cpuTest, lcg, readF32, upload } from "./cpu_test_util.ts";

const [N, C, H, W] = [2, 32, 4, 4];
const COUNT = N * C * H * W;
const GEOM = { n: N, c: C, hw: H * W };

function flag(s: Storage): boolean {
  return (s as CpuStorage).nanFree;
}

/** y = relu(bn(x) + residual) (training), a fresh output. */
function fusedBn(be: CpuBackend, x: Storage, residual: Storage | null): Storage {
  const y = be.alloc("f32", COUNT);
  const gamma = upload(be, lcg(1, C)), beta = upload(be, lcg(2, C));
  const mean = be.alloc("f32", C), variance = be.alloc("f32", C);
  be.batchNormForwardTraining({
    x,
    gamma,
    beta,
    y,
    mean,
    variance,
    geom: GEOM,
    eps: 1e-5,
    relu: true,
    residual,
  });
  for (const s of [gamma, beta, mean, variance]) be.free(s);
  return y;
}

/** A NaN-free activation the backend knows to be NaN-free (a fused batch norm's output). */
function flagged(be: CpuBackend, seed: number): Storage {
  const x = blockedActivation(be, "f32", [N, C, H, W], seed);
  const y = fusedBn(be, x, null);
  be.free(x);
  assert.ok(flag(y), "a fused batch norm + ReLU output is known NaN-free");
  return y;
}

const CONV = {
  n: N,
  c: C,
  h: H,
  w: W,
  k: C,
  r: 3,
  s: 3,
  strideH: 1,
  strideW: 1,
  padH: 1,
  padW: 1,
  outH: H,
  outW: W,
};

cpuTest("cpu nanFree: set by kernels that cannot produce NaN, kept by readers", (be) => {
  const y = flagged(be, 3);
  const w = upload(be, lcg(4, C * C * 9, 0.1)), out = be.alloc("f32", COUNT);
  be.conv2dForward({ x: y, w, y: out, geom: CONV });
  assert.ok(flag(y), "a convolution only reads its input");
  assert.ok(!flag(out), "a convolution's output is not known NaN-free");
  // As a residual: the fused kernel trusts the flag and its output is NaN-free again.
  const z = fusedBn(be, out, y);
  assert.ok(flag(z));
  const r = be.alloc("f32", COUNT);
  be.relu({ x: z, y: r, n: COUNT });
  assert.ok(flag(r), "relu of a NaN-free input");
  for (const s of [y, w, out, z, r]) be.free(s);
});

cpuTest("cpu nanFree: every write clears it", (be) => {
  const nan = new Float32Array(COUNT).fill(NaN);
  const other = upload(be, nan), w = upload(be, lcg(5, C * C * 9));
  const writes: [string, (s: Storage) => void][] = [
    ["upload", (s) => be.upload(s, nan)],
    ["upload at an offset", (s) => be.upload(s, new Float32Array([NaN]), 7)],
    ["fill", (s) => be.fill(s, NaN)],
    ["copy", (s) => be.copy({ src: other, dst: s, srcOffset: 0, dstOffset: 0, length: COUNT })],
    [
      "copy at an offset",
      (s) => be.copy({ src: other, dst: s, srcOffset: 1, dstOffset: 2, length: 5 }),
    ],
    ["axpby in place", (s) => be.axpby({ x: other, y: s, out: s, alpha: 1, beta: 1, n: COUNT })],
    ["mul", (s) => be.mul({ a: other, b: other, out: s, n: COUNT })],
    [
      "conv output",
      (s) => be.conv2dForward({ x: other, w, y: s, geom: CONV }),
    ],
    ["sgd (as a parameter)", (s) => {
      const g = upload(be, nan), m = upload(be, new Float32Array(COUNT));
      be.sgdUpdateMulti({
        params: [s],
        grads: [g],
        momentumBufs: [m],
        lr: 0.1,
        momentum: 0.9,
        nesterov: false,
        weightDecay: [0],
      });
    }],
    [
      "ema (out)",
      (s) => be.emaUpdateMulti({ teacher: [s], student: [other], out: [s], momentum: 0.5 }),
    ],
  ];
  for (const [what, write] of writes) {
    const s = flagged(be, 9);
    write(s);
    assert.ok(!flag(s), `${what} left the storage marked NaN-free`);
    assert.ok(readF32(be, s).some(Number.isNaN), `${what} did not write a NaN (test setup)`);
    be.free(s);
  }
  be.free(other);
  be.free(w);
});

cpuTest(
  "cpu nanFree: a NaN written after the flag was set reaches the output of the fused kernel",
  (be) => {
    const res = flagged(be, 12);
    be.upload(res, new Float32Array([NaN]), 40);
    const x = blockedActivation(be, "f32", [N, C, H, W], 13);
    const y = fusedBn(be, x, res);
    const v = readF32(be, y);
    assert.ok(Number.isNaN(v[40]), `y[40] = ${v[40]}`);
    assert.equal(v.filter(Number.isNaN).length, 1);
    for (const s of [res, x, y]) be.free(s);
  },
);
