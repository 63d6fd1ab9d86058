/**
 * The cpu backend keeps no state between kernel calls that changes a result: what a kernel writes
 * (values and the internal layout of its outputs) is a function of its inputs (values and layouts)
 * only, never of which kernels ran before. Caches (primitives, descriptors, buffers) may warm up;
 * results may not move.
 *
 * The first test pins the case that used to break it: global average pooling's backward took its
 * output layout from a memo written by the last forward of the same shape, so dx came out blocked
 * or plain depending on call order.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Storage } from "../../src/backend/backend.ts";
import type { CpuBackend } from "../../src/backend/cpu/backend.ts";
import { createCpuBackend } from "../../src/backend/cpu/backend.ts";
import { blockedActivation, cpuTest, layoutOf, lcg, upload } from "./cpu_test_util.ts";

const [N, C, H, W] = [2, 32, 4, 4];
const HW = H * W;

/** globalAvgPool forward calls on `xs`, then the backward of a fixed dy: dx's values and layout. */
function gapBackwardAfter(be: CpuBackend, forwards: ("blocked" | "plain")[]) {
  for (const [i, kind] of forwards.entries()) {
    const x = kind === "blocked"
      ? blockedActivation(be, "f32", [N, C, H, W], 10 + i)
      : upload(be, lcg(20 + i, N * C * HW));
    const y = be.alloc("f32", N * C);
    be.globalAvgPool({ x, y, n: N, c: C, hw: HW });
    be.free(x);
    be.free(y);
  }
  const dy = upload(be, lcg(3, N * C));
  const dx = be.alloc("f32", N * C * HW);
  be.globalAvgPoolBackward({ dy, dx, n: N, c: C, hw: HW });
  const layout = layoutOf(dx);
  // The gradient flows on into a batch norm backward on a blocked [n, c, h, w] activation.
  const x = blockedActivation(be, "f32", [N, C, H, W], 30);
  const gamma = upload(be, lcg(4, C)), mean = upload(be, lcg(5, C, 0.1));
  const variance = upload(be, lcg(6, C).map((v) => 1 + v * v));
  const bnDx = be.alloc("f32", N * C * HW);
  const dgamma = be.alloc("f32", C), dbeta = be.alloc("f32", C);
  be.batchNormBackward({
    x,
    dy: dx,
    gamma,
    mean,
    variance,
    dx: bnDx,
    dgamma,
    dbeta,
    geom: { n: N, c: C, hw: HW },
    eps: 1e-5,
  });
  const out = {
    layout,
    dx: be.download(dx),
    bnDx: be.download(bnDx),
    dgamma: be.download(dgamma),
    dbeta: be.download(dbeta),
  };
  for (const s of [dy, dx, x, gamma, mean, variance, bnDx, dgamma, dbeta]) be.free(s);
  return out;
}

cpuTest("cpu: globalAvgPoolBackward's output does not depend on earlier forward calls", () => {
  const orders: ("blocked" | "plain")[][] = [
    [],
    ["blocked"],
    ["plain"],
    ["blocked", "plain"],
    ["plain", "blocked"],
  ];
  const results = orders.map((order) => {
    const be = createCpuBackend({ threads: 2 });
    try {
      return gapBackwardAfter(be, order);
    } finally {
      be.dispose();
    }
  });
  // C = 32 channels: the gradient comes out in the blocked layout every time.
  assert.equal(results[0].layout.blocked, true, "dx should be blocked (nChw16c) for c = 32");
  for (const [i, r] of results.entries()) {
    const what = `after forwards [${orders[i]}]`;
    assert.deepEqual(r.layout, results[0].layout, `dx layout ${what}`);
    for (const k of ["dx", "bnDx", "dgamma", "dbeta"] as const) {
      assert.deepEqual(r[k], results[0][k], `${k} ${what}`);
    }
  }
});

/** A small training chain (fused BN variants, pooling, convolutions backward, SGD). */
function chain(
  be: CpuBackend,
): Record<string, Float32Array | Uint16Array | Uint8Array | Int32Array> {
  const free: Storage[] = [];
  const keep = <S extends Storage>(s: S) => (free.push(s), s);
  const g = { n: N, c: C, hw: HW }, eps = 1e-5, n = N * C * HW;
  const x = keep(blockedActivation(be, "f32", [N, C, H, W], 40));
  const res = keep(blockedActivation(be, "f32", [N, C, H, W], 41));
  const gamma = keep(upload(be, lcg(42, C))), beta = keep(upload(be, lcg(43, C)));
  const stats = () => [keep(be.alloc("f32", C)), keep(be.alloc("f32", C))];
  const [m1, v1] = stats(), [m2, v2] = stats();
  const y1 = keep(be.alloc("f32", n)), y2 = keep(be.alloc("f32", n));
  be.batchNormForwardTraining({
    x,
    gamma,
    beta,
    y: y1,
    mean: m1,
    variance: v1,
    geom: g,
    eps,
    relu: true,
  });
  be.batchNormForwardTraining({
    x: y1,
    gamma,
    beta,
    y: y2,
    mean: m2,
    variance: v2,
    geom: g,
    eps,
    residual: res,
    relu: true,
  });
  const f = keep(be.alloc("f32", N * C));
  be.globalAvgPool({ x: y2, y: f, n: N, c: C, hw: HW });
  const df = keep(upload(be, lcg(44, N * C)));
  const dy2 = keep(be.alloc("f32", n));
  be.globalAvgPoolBackward({ dy: df, dx: dy2, n: N, c: C, hw: HW });
  const [dx1, dres, dy1] = [
    keep(be.alloc("f32", n)),
    keep(be.alloc("f32", n)),
    keep(be.alloc("f32", n)),
  ];
  const [dg, db, dg1, db1] = [stats(), stats()].flat();
  be.batchNormBackward({
    x: y1,
    dy: dy2,
    gamma,
    mean: m2,
    variance: v2,
    dx: dx1,
    dgamma: dg,
    dbeta: db,
    geom: g,
    eps,
    relu: true,
    y: y2,
    dresidual: dres,
  });
  be.batchNormBackward({
    x,
    dy: dx1,
    gamma,
    mean: m1,
    variance: v1,
    dx: dy1,
    dgamma: dg1,
    dbeta: db1,
    geom: g,
    eps,
    relu: true,
    y: y1,
  });
  const params = [keep(upload(be, lcg(45, C))), keep(upload(be, lcg(46, C)))];
  const bufs = [keep(upload(be, lcg(47, C))), keep(upload(be, lcg(48, C)))];
  be.sgdUpdateMulti({
    params,
    grads: [dg, db],
    momentumBufs: bufs,
    lr: 0.1,
    momentum: 0.9,
    weightDecay: [5e-4, 0],
    nesterov: false,
    lars: { eta: 0.02, eps: 1e-8, clip: false, adapt: [true, false] },
  });
  const named = { y1, y2, m1, v1, m2, v2, f, dy2, dx1, dres, dy1, dg, db, dg1, db1 };
  const out: Record<string, Float32Array | Uint16Array | Uint8Array | Int32Array> = {};
  for (const [k, s] of Object.entries(named)) out[k] = be.download(s);
  out.p0 = be.download(params[0]);
  out.p1 = be.download(params[1]);
  for (const s of free) be.free(s);
  return out;
}

/** Unrelated work with other shapes and options (warms caches, leaves layouts behind). */
function otherWork(be: CpuBackend): void {
  const x = blockedActivation(be, "f32", [1, 16, 8, 8], 50);
  const y = be.alloc("f32", 1024), m = be.alloc("f32", 16), v = be.alloc("f32", 16);
  const ones = upload(be, new Float32Array(16).fill(1));
  const geom = { n: 1, c: 16, hw: 64 };
  be.batchNormForwardTraining({
    x,
    gamma: ones,
    beta: ones,
    y,
    mean: m,
    variance: v,
    geom,
    eps: 1e-3,
  });
  const p = be.alloc("f32", 16);
  be.globalAvgPool({ x: y, y: p, n: 1, c: 16, hw: 64 });
  for (const s of [x, y, m, v, ones, p]) be.free(s);
}

cpuTest("cpu: a training chain gives bit-identical results on a fresh and a used backend", (be) => {
  const fresh = chain(be);
  otherWork(be);
  const again = chain(be);
  const other = createCpuBackend({ threads: 2 });
  let third;
  try {
    otherWork(other);
    otherWork(other);
    third = chain(other);
  } finally {
    other.dispose();
  }
  for (const k of Object.keys(fresh)) {
    assert.deepEqual(again[k], fresh[k], `${k}: second run on the same backend`);
    assert.deepEqual(third[k], fresh[k], `${k}: run on another backend after other work`);
  }
  assert.equal(be.liveAllocations(), 0);
});
