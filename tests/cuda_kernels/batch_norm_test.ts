/**
 * batch_norm.cu on the emulated device against an f64 oracle of the contract's semantics:
 * training forward (batch mean, biased variance, y) with and without the fused residual add and
 * ReLU, for f32 and bf16 activations and several split counts (results must not depend on the
 * split beyond rounding, and a repeated launch gives the same bits); inference forward; backward
 * with the ReLU mask from y, dresidual, dgamma and dbeta.
 */

import assert from "node:assert/strict";
import { assertBf16Close, assertClose, BLOCK, fromBf16, rand, toBf16 } from "./helpers.ts";
import { type KernelRig, rigUnavailable, withRig } from "./rig.ts";

const skip = rigUnavailable();
const test = (name: string, fn: () => void) =>
  Deno.test({ name: name + (skip ? ` (${skip})` : ""), ignore: skip !== undefined, fn });

interface Geom {
  n: number;
  c: number;
  hw: number;
}

/** Element indices of channel ci. */
function channel(g: Geom, ci: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < g.n; i++) for (let p = 0; p < g.hw; p++) out.push((i * g.c + ci) * g.hw + p);
  return out;
}

/** f64 training forward: mean, biased variance, y = act(bn(x) + residual). */
function forwardOracle(
  g: Geom,
  x: ArrayLike<number>,
  gamma: Float32Array,
  beta: Float32Array,
  eps: number,
  residual: ArrayLike<number> | null,
  relu: boolean,
  stats?: { mean: ArrayLike<number>; variance: ArrayLike<number> },
) {
  const mean = new Float64Array(g.c), variance = new Float64Array(g.c);
  const y = new Float64Array(g.n * g.c * g.hw);
  for (let ci = 0; ci < g.c; ci++) {
    const idx = channel(g, ci);
    const mu = stats ? stats.mean[ci] : idx.reduce((s, i) => s + x[i], 0) / idx.length;
    const v = stats
      ? stats.variance[ci]
      : idx.reduce((s, i) => s + (x[i] - mu) ** 2, 0) / idx.length;
    mean[ci] = mu;
    variance[ci] = v;
    for (const i of idx) {
      let z = (x[i] - mu) * gamma[ci] / Math.sqrt(v + eps) + beta[ci];
      if (residual) z += residual[i];
      y[i] = relu && z < 0 ? 0 : z;
    }
  }
  return { mean, variance, y };
}

/** f64 backward of the fused training batch norm. */
function backwardOracle(
  g: Geom,
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  y: ArrayLike<number> | null,
  gamma: Float32Array,
  mean: ArrayLike<number>,
  variance: ArrayLike<number>,
  eps: number,
) {
  const grad = Float64Array.from(dy, (v, i) => (y && !(y[i] > 0) ? 0 : v));
  const dx = new Float64Array(grad.length), dgamma = new Float64Array(g.c);
  const dbeta = new Float64Array(g.c);
  for (let ci = 0; ci < g.c; ci++) {
    const idx = channel(g, ci), m = idx.length;
    const inv = 1 / Math.sqrt(variance[ci] + eps);
    const xhat = (i: number) => (x[i] - mean[ci]) * inv;
    dbeta[ci] = idx.reduce((s, i) => s + grad[i], 0);
    dgamma[ci] = idx.reduce((s, i) => s + grad[i] * xhat(i), 0);
    for (const i of idx) {
      dx[i] = gamma[ci] * inv / m * (m * grad[i] - dbeta[ci] - xhat(i) * dgamma[ci]);
    }
  }
  return { grad, dx, dgamma, dbeta };
}

type Dt = "f32" | "bf16";
const suffix = (dt: Dt) => (dt === "f32" ? "_f32" : "_bf16") as "_f32" | "_bf16";

/** Uploads activations in `dt` (bf16: rounded) and returns the pointer and the exact values. */
function act(rig: KernelRig, dt: Dt, v: Float32Array): [bigint, Float32Array] {
  if (dt === "f32") return [rig.upload(v), v];
  const b = toBf16(v);
  return [rig.upload(b), fromBf16(b)];
}

function readAct(rig: KernelRig, dt: Dt, p: bigint, n: number): Float32Array | Uint16Array {
  return dt === "f32" ? rig.download(p, new Float32Array(n)) : rig.download(p, new Uint16Array(n));
}

function checkAct(
  dt: Dt,
  got: Float32Array | Uint16Array,
  want: ArrayLike<number>,
  tol: number,
  label: string,
) {
  if (dt === "f32") assertClose(got as Float32Array, want, tol, tol, label);
  else assertBf16Close(got as Uint16Array, want, 1, label);
}

const GEOMS: Geom[] = [{ n: 3, c: 5, hw: 37 }, { n: 2, c: 3, hw: 1 }, { n: 1, c: 2, hw: 300 }];

for (const dt of ["f32", "bf16"] as const) {
  test(`batch norm ${dt}: training forward (+ residual, + ReLU) and backward, any split`, () => {
    withRig((rig) => {
      for (const [gi, g] of GEOMS.entries()) {
        const size = g.n * g.c * g.hw, m = g.n * g.hw, eps = 1e-5;
        const [px, x] = act(rig, dt, rand(10 + gi, size, -1, 3));
        const [pr, res] = act(rig, dt, rand(20 + gi, size));
        const [pdy, dy] = act(rig, dt, rand(30 + gi, size));
        const gamma = rand(40 + gi, g.c, 0.5, 1.5), beta = rand(50 + gi, g.c);
        const pg = rig.upload(gamma), pb = rig.upload(beta);
        const mean = rig.alloc(4 * g.c), variance = rig.alloc(4 * g.c);
        const y = rig.alloc(4 * size), dx = rig.alloc(4 * size), dres = rig.alloc(4 * size);
        const dgamma = rig.alloc(4 * g.c), dbeta = rig.alloc(4 * g.c);
        for (const [fused, splits] of [[false, 1], [true, 3], [true, 64]] as const) {
          const part = rig.alloc(4 * g.c * splits * 2);
          const label = `${dt} ${JSON.stringify(g)} splits ${splits} fused ${fused}`;
          rig.launch(`batch_norm_stats_partial${suffix(dt)}`, [splits, g.c], BLOCK, [
            px,
            part,
            g.n,
            g.c,
            g.hw,
          ]);
          rig.launch("batch_norm_stats_finish", 1, 32, [
            part,
            mean,
            variance,
            g.n,
            g.c,
            g.hw,
            splits,
          ]);
          const blocks = Math.min(Math.ceil(m / BLOCK), 2);
          rig.launch(`batch_norm_apply${suffix(dt)}`, [blocks, g.c], BLOCK, [
            px,
            fused ? pr : 0,
            y,
            pg,
            pb,
            mean,
            variance,
            eps,
            fused ? 1 : 0,
            g.n,
            g.c,
            g.hw,
          ]);
          const want = forwardOracle(g, x, gamma, beta, eps, fused ? res : null, fused);
          const gotMean = rig.download(mean, new Float32Array(g.c));
          const gotVar = rig.download(variance, new Float32Array(g.c));
          assertClose(gotMean, want.mean, 1e-6, 1e-5, `${label} mean`);
          assertClose(gotVar, want.variance, 1e-6, 1e-5, `${label} variance`);
          const gotY = readAct(rig, dt, y, size);
          checkAct(dt, gotY, want.y, 1e-5, `${label} y`);

          // Backward with the forward's output as the ReLU mask, dresidual when fused.
          const yv = dt === "f32" ? gotY as Float32Array : fromBf16(gotY as Uint16Array);
          rig.launch(`batch_norm_backward_partial${suffix(dt)}`, [splits, g.c], BLOCK, [
            px,
            pdy,
            fused ? y : 0,
            mean,
            variance,
            eps,
            part,
            g.n,
            g.c,
            g.hw,
          ]);
          rig.launch("batch_norm_backward_finish", 2, 32, [part, dgamma, dbeta, g.c, splits]);
          rig.launch(`batch_norm_backward_apply${suffix(dt)}`, [blocks, g.c], 64, [
            px,
            pdy,
            fused ? y : 0,
            pg,
            mean,
            variance,
            dgamma,
            dbeta,
            eps,
            dx,
            fused ? dres : 0,
            g.n,
            g.c,
            g.hw,
          ]);
          const back = backwardOracle(g, x, dy, fused ? yv : null, gamma, gotMean, gotVar, eps);
          const scale = back.grad.reduce((s, v) => s + Math.abs(v), 0) / Math.sqrt(m);
          assertClose(
            rig.download(dbeta, new Float32Array(g.c)),
            back.dbeta,
            1e-5 * scale,
            1e-5,
            `${label} dbeta`,
          );
          assertClose(
            rig.download(dgamma, new Float32Array(g.c)),
            back.dgamma,
            1e-5 * scale,
            1e-5,
            `${label} dgamma`,
          );
          checkAct(dt, readAct(rig, dt, dx, size), back.dx, 1e-4, `${label} dx`);
          if (fused) checkAct(dt, readAct(rig, dt, dres, size), back.grad, 0, `${label} dres`);
        }
      }
    });
  });
}

test("batch norm inference forward with given statistics; results repeat bit for bit", () => {
  const g = { n: 4, c: 6, hw: 20 }, size = 480, eps = 1e-3;
  const x = rand(60, size, -2, 2), res = rand(61, size);
  const gamma = rand(62, g.c, -1, 1), beta = rand(63, g.c);
  const mean = rand(64, g.c), variance = rand(65, g.c, 0.1, 2);
  withRig((rig) => {
    const px = rig.upload(x), pr = rig.upload(res), y = rig.alloc(4 * size);
    const params = [gamma, beta, mean, variance].map((a) => rig.upload(a));
    const run = () => {
      rig.launch("batch_norm_apply_f32", [3, g.c], BLOCK, [
        px,
        pr,
        y,
        ...params,
        eps,
        1,
        g.n,
        g.c,
        g.hw,
      ]);
      return rig.download(y, new Float32Array(size));
    };
    const first = run();
    const want = forwardOracle(g, x, gamma, beta, eps, res, true, { mean, variance });
    assertClose(first, want.y, 1e-6, 1e-5, "inference y");
    assert.deepEqual(run(), first);
    const part = rig.alloc(4 * g.c * 10), m1 = rig.alloc(4 * g.c), v1 = rig.alloc(4 * g.c);
    const stats = () => {
      rig.launch("batch_norm_stats_partial_f32", [5, g.c], BLOCK, [px, part, g.n, g.c, g.hw]);
      rig.launch("batch_norm_stats_finish", 1, 32, [part, m1, v1, g.n, g.c, g.hw, 5]);
      return [...rig.download(v1, new Float32Array(g.c))];
    };
    assert.deepEqual(stats(), stats(), "the same split gives the same bits");
  });
});
