/**
 * The SyncBN kernels of the cpu backend (`batchNormStats`, `batchNormMergeStats`,
 * `batchNormBackwardReduce`, `batchNormBackwardApply`), composed from this backend's oneDNN batch
 * norm so that the activations stay in their blocked layout and no element is touched by
 * TypeScript:
 *
 * - stats: the training forward's mean and variance (its output goes to a temporary);
 * - reduce: the backward with the given statistics, whose dbeta and dgamma are exactly sum(g) and
 *   sum(g xhat) (its dx goes to a temporary); the ReLU mask as in the fused backward;
 * - apply: dx = a g + b (x - mean) + d per channel (a = gamma / sigma, b = -a S2 / (M sigma),
 *   d = -a S1 / M, from the gathered sums in f64 on the host) as two inference forwards: t = a g
 *   (mean 0, variance 0.5 with eps 0.5: exactly one), then dx = b sigma (x - mean) / sigma + d + t
 *   (the residual add). bf16 data take the reference loops on plain copies instead (one rounding).
 * - merge: C-element vectors on the host (the reference's f64 loop).
 *
 * @module
 */

import type { BatchNormGeometry, Opts, Storage } from "../backend.ts";
import { bf16ToF32, f64ToBf16 } from "../bf16.ts";
import { applyGrad, maskedGrad, mergeStats } from "../reference/sync_norm.ts";
import { reluBackward } from "./eltwise.ts";
import * as bn from "./norm.ts";
import type { CpuRuntime } from "./runtime.ts";
import { CpuStorage, viewOf } from "./storage.ts";
import { cpu } from "./validate.ts";

/** A plain f32 copy of the first `n` elements of a float storage (bf16 widened exactly). */
function readF32(rt: CpuRuntime, s: Storage, n: number): Float32Array {
  const c = cpu(s);
  return rt.readPlain(c, (buf) => {
    const v = viewOf(buf, c.dtype);
    if (v instanceof Float32Array) return v.slice(0, n);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = bf16ToF32(v[i]);
    return out;
  });
}

/** Writes `n` values computed by `fill` into `s` (plain layout), rounding once to its dtype. */
function writeFloat(
  rt: CpuRuntime,
  s: Storage,
  n: number,
  fill: (out: Float32Array | Float64Array) => void,
): void {
  const c = cpu(s);
  const buf = rt.output(c, rt.mds.plain([n], c.dataType));
  if (c.dtype === "f32") {
    fill(buf.f32.subarray(0, n));
    return;
  }
  const tmp = new Float64Array(n);
  fill(tmp);
  const bits = buf.u16;
  for (let i = 0; i < n; i++) bits[i] = f64ToBf16(tmp[i]);
}

/** Runs `f` with temporaries made by `make` (layout chosen by whoever writes them first). */
function withScratch<T>(
  rt: CpuRuntime,
  f: (temp: (s: Storage, values?: Float32Array) => CpuStorage) => T,
): T {
  const made: CpuStorage[] = [];
  const temp = (like: Storage, values?: Float32Array) => {
    const t = new CpuStorage(rt.backend, like.dtype, values?.length ?? like.length);
    if (values) rt.output(t, null).f32.set(values);
    made.push(t);
    return t;
  };
  try {
    return f(temp);
  } finally {
    for (const t of made) rt.release(t);
  }
}

/** `batchNormStats` (see the contract): the training forward's statistics. */
export function batchNormStats(rt: CpuRuntime, o: Opts<"batchNormStats">): void {
  const g = o.geom;
  withScratch(rt, (temp) => {
    const mean = temp(o.stats, new Float32Array(g.c));
    const variance = temp(o.stats, new Float32Array(g.c));
    bn.batchNormForwardTraining(rt, {
      x: o.x,
      gamma: temp(o.stats, new Float32Array(g.c).fill(1)),
      beta: temp(o.stats, new Float32Array(g.c)),
      y: temp(o.x),
      mean,
      variance,
      geom: g,
      eps: 1e-5,
    });
    const out = rt.output(cpu(o.stats), rt.mds.plain([2 * g.c], cpu(o.stats).dataType)).f32;
    out.set(rt.plain(mean).f32.subarray(0, g.c), 0);
    out.set(rt.plain(variance).f32.subarray(0, g.c), g.c);
  });
}

/** `batchNormMergeStats` (see the contract). */
export function batchNormMergeStats(rt: CpuRuntime, o: Opts<"batchNormMergeStats">): void {
  const parts = readF32(rt, o.parts, o.rows * 2 * o.c);
  const mean = new Float32Array(o.c), variance = new Float32Array(o.c);
  mergeStats(parts, o, mean, variance);
  writeFloat(rt, o.mean, o.c, (out) => out.set(mean));
  writeFloat(rt, o.variance, o.c, (out) => out.set(variance));
}

/** `batchNormBackwardReduce` (see the contract): dbeta and dgamma of the fused backward. */
export function batchNormBackwardReduce(rt: CpuRuntime, o: Opts<"batchNormBackwardReduce">): void {
  const c = o.geom.c;
  withScratch(rt, (temp) => {
    const dgamma = temp(o.sums, new Float32Array(c));
    const dbeta = temp(o.sums, new Float32Array(c));
    bn.batchNormBackward(rt, {
      x: o.x,
      dy: o.dy,
      gamma: temp(o.sums, new Float32Array(c).fill(1)),
      mean: o.mean,
      variance: o.variance,
      dx: temp(o.x),
      dgamma,
      dbeta,
      geom: o.geom,
      eps: o.eps,
      relu: o.relu,
      y: o.y,
    });
    const out = rt.output(cpu(o.sums), rt.mds.plain([2 * c], cpu(o.sums).dataType)).f32;
    out.set(rt.plain(dbeta).f32.subarray(0, c), 0);
    out.set(rt.plain(dgamma).f32.subarray(0, c), c);
  });
}

/** The per-channel a, b, d of dx = a g + b (x - mean) + d, and sigma, in f64. */
function applyCoefficients(rt: CpuRuntime, o: Opts<"batchNormBackwardApply">) {
  const c = o.geom.c;
  const sums = readF32(rt, o.sums, o.rows * 2 * c);
  const gamma = readF32(rt, o.gamma, c);
  const variance = readF32(rt, o.variance, c);
  const [a, b, d, sigma] = [0, 1, 2, 3].map(() => new Float64Array(c));
  for (let ci = 0; ci < c; ci++) {
    let s1 = 0, s2 = 0;
    for (let j = 0; j < o.take; j++) {
      const row = (o.first + j * o.stride) * 2 * c;
      s1 += sums[row + ci];
      s2 += sums[row + c + ci];
    }
    sigma[ci] = Math.sqrt(variance[ci] + o.eps);
    a[ci] = gamma[ci] / sigma[ci];
    b[ci] = -a[ci] * s2 / (o.count * sigma[ci]);
    d[ci] = -a[ci] * s1 / o.count;
  }
  return { a, b, d, sigma };
}

/** `batchNormBackwardApply` (see the contract). */
export function batchNormBackwardApply(rt: CpuRuntime, o: Opts<"batchNormBackwardApply">): void {
  const geom: BatchNormGeometry = o.geom;
  const n = geom.n * geom.c * geom.hw;
  if (cpu(o.x).dtype !== "f32") return applyOnCopies(rt, o, n);
  const { a, b, d, sigma } = applyCoefficients(rt, o);
  const c = geom.c;
  withScratch(rt, (temp) => {
    let g = cpu(o.dy);
    if (o.relu === true) {
      g = temp(o.dy);
      reluBackward(rt, cpu(o.y!), cpu(o.dy), g, n);
    }
    const vec = (v: ArrayLike<number>) => temp(o.gamma, Float32Array.from(v));
    const t = temp(o.x);
    // t = a g: (g - 0) / sqrt(0.5 + 0.5) is g exactly.
    bn.batchNormForwardInference(rt, {
      x: g,
      gamma: vec(a),
      beta: vec(new Float64Array(c)),
      mean: vec(new Float64Array(c)),
      variance: vec(new Float64Array(c).fill(0.5)),
      y: t,
      geom,
      eps: 0.5,
    });
    // dx = (b sigma) (x - mean) / sigma + d + t
    bn.batchNormForwardInference(rt, {
      x: o.x,
      gamma: vec(b.map((v, i) => v * sigma[i])),
      beta: vec(d),
      mean: o.mean,
      variance: o.variance,
      y: o.dx,
      geom,
      eps: o.eps,
      residual: t,
    });
    if (o.dresidual) rt.copyElements(g, cpu(o.dresidual), n);
  });
}

/** bf16 data: the reference loops on plain copies (rounded once on store). */
function applyOnCopies(rt: CpuRuntime, o: Opts<"batchNormBackwardApply">, n: number): void {
  const g = o.geom;
  const dy = readF32(rt, o.dy, n);
  const grad = maskedGrad(dy, o.relu === true ? readF32(rt, o.y!, n) : null);
  const x = readF32(rt, o.x, n);
  const gamma = readF32(rt, o.gamma, g.c);
  const mean = readF32(rt, o.mean, g.c), variance = readF32(rt, o.variance, g.c);
  const sums = readF32(rt, o.sums, o.rows * 2 * g.c);
  writeFloat(rt, o.dx, n, (dx) => applyGrad(x, grad, gamma, mean, variance, sums, o, g, dx));
  if (o.dresidual) writeFloat(rt, o.dresidual, n, (dr) => dr.set(grad));
}
